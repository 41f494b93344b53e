/**
 * Compute Engine VMs (`compute-engine` backend): a CPU VM (n2-standard-32 for the metric cache),
 * a single-host TPU VM (ct6e-standard-4t) or a GPU VM (a2/a3/g2 types with their GPUs, or an N1
 * type with `gpus` attached), through the Compute Engine API v1 with `@google-cloud/compute`
 * (REST transport).
 *
 * GPU VMs (pipeline/gpu-machines.ts): N1 GPUs go in `guestAccelerators`
 * (zones/<zone>/acceleratorTypes/<type>); every GPU VM, spot or not, gets
 * `onHostMaintenance: TERMINATE` (GPUs cannot live-migrate; the API refuses MIGRATE) with
 * automaticRestart off as every VM, the metadata `install-nvidia-driver: True` (Deep Learning VM
 * images install the driver at first boot when it is missing), a pd-balanced boot disk and, on A3,
 * a gVNIC network interface (from memory of the machine-series pages, not found again here: A3 and
 * G2 take no pd-standard, the default disk type, and A3 only gVNIC; the fake enforces both). The lease's
 * `cloud` carries `gpus` and `gpuType` (ComputeEngineCloud) for the cost record. A GPU stockout is
 * the create operation's ZONE_RESOURCE_POOL_EXHAUSTED(_WITH_DETAILS), classified as any stockout.
 *
 * acquire: a VM named computeName(run, stage, attempt) in the request's placement zone (default
 * the first of compute.zones), labelled (run, run-hash, stage, attempt, owner=recogdrive; the
 * exact run id and stage are in its metadata since labels cannot hold them). insert → 409
 * alreadyExists adopts the VM. The operation name goes into the heartbeat details
 * ({ instance, operation }); a retried activity resumes that operation instead of inserting
 * again. The VM is polled (a heartbeat every poll) until RUNNING; its one worker is the VM's
 * external address (else internal) with the SSH host keys from its guest attributes (and, for
 * emulators only, with sshPortFromGuestAttributes, its SSH port from the guest attribute
 * recogdrive/ssh-port).
 *
 * release: delete in every zone of compute.zones (a VM is only ever in one), waiting for the
 * operation; not found counts as released: false. Transient delete failures are retried here
 * (`deleteAttempts`), then left to Temporal's activity retry.
 *
 * health: RUNNING is ok; anything else is lost — preemption when Compute Engine recorded a
 * `compute.instances.preempted` operation for the VM, maintenance otherwise (terminated for host
 * maintenance or a host error, stopped, repairing, deleted).
 *
 * listLeases / deleteLease: the janitor's view of every VM labelled owner=recogdrive in `scope`.
 *
 * Errors are ApplicationFailures of the types of pipeline/compute-failures.ts (stockout, quota,
 * invalid-config, bad-input, preemption, maintenance: non-retryable; internal: retryable), plus
 * the retryable TpuNotReady when a VM does not come up in time. Bad input fails before any API call.
 */
import { DEFAULT_VM_SERVICE_ACCOUNT, type VmServiceAccount } from './vm-service-account.ts';
import { InstancesClient, ZoneOperationsClient, type protos } from '@google-cloud/compute';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { GoogleAuth, PassThroughClient } from 'google-auth-library';
import { COMPUTE_FAILURES, describeComputeError, type ComputeErrorInput, type ComputeFailureClass } from '../../pipeline/compute-failures.ts';
import { LEASE_OWNER, type LeaseRecord } from '../../pipeline/janitor.ts';
import { checkPlacement, invalidConfig as invalid, machineLabels, machineMetadata, ownedByRun, PROJECT_ID, ZONE_NAME } from './cloud-request.ts';
import { GPU_DRIVER_METADATA, gpuMachineTypeProblem, gpuRequestProblem, gpusOf, type Gpus } from '../../pipeline/gpu-machines.ts';
import { computeName, shortHash } from '../../pipeline/naming.ts';
import { STAGE_SLUGS, isStageName } from '../../pipeline/stages.ts';
import type { ComputeLease, ComputeRequest, LeaseHealth, ReleaseResult } from '../types.ts';
import type { ComputeProvider } from './provider.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;
export type ComputeClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;

/** A compute-engine lease's `cloud`: the common placement plus the VM's GPUs (0 and no type for TPU and CPU VMs). */
export type ComputeEngineCloud = NonNullable<ComputeLease['cloud']> & {
  /** GPUs of the VM: its machine type's (a2/a3/g2) or those attached (N1). */
  gpus: number;
  /** e.g. nvidia-tesla-a100, when gpus > 0. */
  gpuType?: string;
};

export interface ComputeEngineProviderOptions {
  /** Project when a request carries none (request.project, the run's gcp.project, wins). */
  project?: string;
  /**
   * What listLeases lists: per project its zones, or every zone (one aggregated list) when
   * `zones` is omitted or empty. Default: `[{ project }]` when `project` is set, else nothing.
   */
  scope?: Array<{ project: string; zones?: string[] }>;
  /** Ready clients (tests share them); otherwise built from clientOptions (ADC by default). */
  instancesClient?: InstancesClient;
  zoneOperationsClient?: ZoneOperationsClient;
  clientOptions?: ComputeClientOptions;
  /** SSH user on the VM. Default 'recogdrive'. */
  sshUser?: string;
  /** "ssh-ed25519 AAAA…": put into the VM's metadata `ssh-keys` for sshUser. */
  sshPublicKey?: string;
  /** Default 22. */
  sshPort?: number;
  /** Emulators: where the VM's SSH really listens (a fake maps VMs onto local sshd ports). */
  sshEndpointFor?: (vm: { project: string; zone: string; name: string; address: string }) => { host: string; port: number };
  /**
   * Emulators only: take the VM's SSH port from its guest attribute `recogdrive/ssh-port` (an
   * emulator that maps VMs onto local sshd ports publishes it there; a real VM has no such
   * attribute), else sshPort. Ignored when sshEndpointFor is given. Default false.
   */
  sshPortFromGuestAttributes?: boolean;
  /** Which address to hand out: the external one when the VM has it (default), or always the internal one. */
  address?: 'external-if-present' | 'internal';
  /** Give the VM an ephemeral external IP (ONE_TO_ONE_NAT). Default true. */
  externalIp?: boolean;
  /** Default 'global/networks/default'. */
  network?: string;
  /** e.g. regions/us-east5/subnetworks/training; default: the network's (auto mode). */
  subnetwork?: string;
  /** Service account the VM runs as (its bring-up pulls the image and reads and writes the buckets with it). Default: 'default' with cloud-platform. */
  serviceAccount?: VmServiceAccount;
  /** Between polls of the operation / VM. Default 10 s. */
  pollIntervalMs?: number;
  /** Give up waiting for RUNNING after this long (retryable TpuNotReady: a retry adopts the VM). Default 30 min. */
  readyTimeoutMs?: number;
  /** Delete tries per zone and release before the error goes to Temporal's retry. Default 4. */
  deleteAttempts?: number;
  /** First back-off between delete tries (doubles). Default 2 s. */
  deleteRetryDelayMs?: number;
  /** Longest wait for a delete operation. Default 10 min. */
  deleteTimeoutMs?: number;
  /** Notes that are not errors (missing host keys). Default: the activity logger, else console.warn. */
  note?: (message: string) => void;
}

/** What acquire heartbeats, and reads back when the activity is retried. */
export interface ComputeEngineAcquireProgress {
  /** projects/P/zones/Z/instances/N */
  instance: string;
  operation?: string;
}

const INSTANCE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MACHINE_TYPE = /^[a-z][a-z0-9]*(-[a-z0-9]+)+$/;
const BOOT_IMAGE = /^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/global\/images\/(family\/)?[a-z][a-z0-9-]{0,62}$/;
/** Machine families Compute Engine offers (general purpose, compute/memory optimized, accelerator). */
const CPU_FAMILIES = new Set(['e2', 'f1', 'g1', 'n1', 'n2', 'n2d', 'n4', 'n4d', 'c2', 'c2d', 'c3', 'c3d', 'c4', 'c4a', 'c4d', 't2a', 't2d', 'm1', 'm2', 'm3', 'm4', 'x4', 'a2', 'a3', 'a4', 'g2', 'h3', 'z3']);
/** Single-host TPU VMs as Compute Engine machine types: <prefix>-<chips>t. */
const TPU_MACHINES: Readonly<Record<string, readonly number[]>> = { 'ct6e-standard': [1, 4, 8], 'ct5lp-hightpu': [1, 4, 8], 'ct5p-hightpu': [4] };
/** Statuses of a VM on its way up. */
const COMING_UP = new Set(['PROVISIONING', 'STAGING', 'PENDING', 'STATUS_UNSPECIFIED', '']);
const PREEMPTED_OPERATION = 'compute.instances.preempted';
const NOT_READY = /\bis not ready\b|\bresourceNotReady\b/;
/** Emulators (sshPortFromGuestAttributes): the guest attribute holding the port the VM's SSH really listens on. */
export const SSH_PORT_ATTRIBUTE = { namespace: 'recogdrive', key: 'ssh-port' } as const;

/** Why a machine type cannot be used, or undefined when it is a known Compute Engine machine type. */
export function machineTypeProblem(machineType: unknown): string | undefined {
  if (typeof machineType !== 'string' || !MACHINE_TYPE.test(machineType)) return `"${String(machineType)}" is not a machine type like n2-standard-32`;
  const tpu = /^(ct[a-z0-9]+-[a-z]+)-(\d+)t$/.exec(machineType);
  if (tpu !== null) {
    const sizes = TPU_MACHINES[tpu[1]!];
    if (sizes?.includes(Number(tpu[2])) === true) return undefined;
    return `unknown TPU machine type "${machineType}"; one of ${Object.entries(TPU_MACHINES).flatMap(([p, s]) => s.map((n) => `${p}-${n}t`)).join(', ')}`;
  }
  const family = machineType.split('-')[0]!;
  if (!CPU_FAMILIES.has(family)) return `unknown machine type "${machineType}" (no Compute Engine family "${family}"); a type like n2-standard-32 or ct6e-standard-4t`;
  return gpuMachineTypeProblem(machineType);
}

/** TPU chips of a machine type: N for ct6e-standard-Nt (and the other TPU families), 0 for a CPU VM. */
export function chipsOf(machineType: string): number {
  const match = /^ct[a-z0-9]+-[a-z]+-(\d+)t$/.exec(machineType);
  return match === null ? 0 : Number(match[1]);
}

// ---- errors ------------------------------------------------------------------------------

function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function httpStatusOf(error: unknown): number | undefined {
  const status = (error as { httpStatusCode?: unknown } | null | undefined)?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function messageOf(error: unknown): string {
  const e = error as { details?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.message === 'string' && e.message !== '') return e.message;
  if (typeof e?.details === 'string' && e.details !== '') return e.details;
  return String(error);
}

/** gRPC NOT_FOUND, as the REST client maps HTTP 404. */
const isNotFound = (error: unknown): boolean => codeOf(error) === 5 || httpStatusOf(error) === 404;
/** HTTP 409 (the client maps it to ABORTED; GCE's body says "already exists", reason alreadyExists). */
const isAlreadyExists = (error: unknown): boolean => httpStatusOf(error) === 409 || codeOf(error) === 6 || (codeOf(error) === 10 && /already exists/i.test(messageOf(error)));

function fail(failureClass: ComputeFailureClass, message: string, details: Record<string, unknown>, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    type: COMPUTE_FAILURES[failureClass].type,
    message,
    // Only opaque trouble is worth retrying in place; the other classes go to the workflow's failover policy.
    nonRetryable: failureClass !== 'internal',
    details: [details],
    ...(cause instanceof Error ? { cause } : {}),
  });
}

interface Where {
  instance: string;
  zone: string;
  during: string;
}

/** Maps a refused API call (HTTP error → gRPC code + message) to a typed failure. */
export function classifyComputeEngineError(error: unknown, where: Where): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const code = codeOf(error);
  const httpStatus = httpStatusOf(error);
  const message = messageOf(error);
  const input: ComputeErrorInput = code === undefined ? { message } : { code, message };
  // "is not ready": another operation on the VM is still running (HTTP 400, reason
  // resourceNotReady) — transient, although a 400 naming a zone path would read as a config error.
  const failureClass = NOT_READY.test(message) ? 'internal' : describeComputeError(input).failureClass;
  return fail(failureClass, `${where.during} ${where.instance}: ${message}`, { ...where, code, httpStatus, message }, error);
}

/** A failed operation's errors as classifier input: GCE's error codes are the reason, the messages (and localized detail) the text. */
export function operationErrorInput(op: Operation): ComputeErrorInput {
  const errors = op.error?.errors ?? [];
  const reason = errors.map((e) => e.code ?? '').filter((c) => c !== '').join(' ');
  const localized = errors.flatMap((e) => e.errorDetails ?? []).map((d) => d.localizedMessage?.message ?? '');
  const message = [...errors.map((e) => e.message ?? ''), ...localized].filter((m) => m !== '').join(' ') || op.httpErrorMessage || 'the operation failed without a message';
  return { message, ...(reason !== '' ? { reason } : {}), ...(typeof op.httpErrorStatusCode === 'number' ? { code: op.httpErrorStatusCode } : {}) };
}

function classifyOperationError(op: Operation, where: Where): ApplicationFailure {
  const input = operationErrorInput(op);
  const { failureClass } = describeComputeError(input);
  const text = input.reason === undefined ? input.message : `${input.reason}: ${input.message}`;
  return fail(failureClass, `${where.during} ${where.instance}: ${text}`, { ...where, operation: op.name, reason: input.reason, httpStatus: input.code, message: input.message });
}

// ---- helpers -----------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The current activity's heartbeat details from its previous try; undefined outside an activity. */
function activityResumeDetails(): unknown {
  try {
    return Context.current().info.heartbeatDetails;
  } catch {
    return undefined;
  }
}

function defaultNote(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    console.warn(message);
  }
}

function metadataOf(vm: Instance): Record<string, string> {
  return Object.fromEntries((vm.metadata?.items ?? []).filter((i) => typeof i.key === 'string').map((i) => [i.key!, i.value ?? '']));
}

/** Why a VM of our derived name is not this run's (owner label, run metadata); undefined when it is. */
function ownershipProblem(vm: Instance, runId: string): string | undefined {
  const metadata = metadataOf(vm);
  if (ownedByRun(vm.labels, metadata, runId)) return undefined;
  const owner = vm.labels?.owner;
  const run = metadata['recogdrive-run'];
  return `is not this attempt's VM (owner label ${owner === undefined ? 'missing' : `"${owner}"`}${run !== undefined ? `, run "${run}"` : ''})`;
}

/** The GPUs Compute Engine reports on the VM (guestAccelerators; it lists an A2/A3/G2 type's own GPUs there too). */
function attachedGpusOf(vm: Instance): Gpus | undefined {
  const first = (vm.guestAccelerators ?? []).find((a) => (a.acceleratorCount ?? 0) > 0 && a.acceleratorType);
  return first === undefined ? undefined : { type: (first.acceleratorType ?? '').split('/').pop() ?? '', count: first.acceleratorCount ?? 0 };
}

const isSpot = (vm: Instance): boolean => vm.scheduling?.provisioningModel === 'SPOT' || vm.scheduling?.preemptible === true;
const lastSegment = (url: string | null | undefined): string => (url ?? '').split('/').pop() ?? '';

interface Target {
  project: string;
  zones: string[];
  zone: string;
  name: string;
  machineType: string;
  spot: boolean;
  bootImage: string;
  bootDiskGb: number;
  /** The VM's GPUs (its type's or attached), undefined for TPU and CPU VMs. */
  gpus?: Gpus;
  /** N1 only: the GPUs to put in guestAccelerators. */
  attachedGpus?: Gpus;
}

interface Loss {
  failureClass: 'preemption' | 'maintenance';
  detail: string;
}

export class ComputeEngineComputeProvider implements ComputeProvider {
  readonly instances: InstancesClient;
  readonly operations: ZoneOperationsClient;
  private readonly options: ComputeEngineProviderOptions;
  private readonly ownsClients: { instances: boolean; operations: boolean };
  private readonly sshUser: string;
  private readonly pollIntervalMs: number;

  constructor(options: ComputeEngineProviderOptions = {}) {
    this.options = options;
    this.instances = options.instancesClient ?? new InstancesClient(options.clientOptions ?? {});
    this.operations = options.zoneOperationsClient ?? new ZoneOperationsClient(options.clientOptions ?? {});
    this.ownsClients = { instances: options.instancesClient === undefined, operations: options.zoneOperationsClient === undefined };
    this.sshUser = options.sshUser ?? 'recogdrive';
    this.pollIntervalMs = options.pollIntervalMs ?? 10_000;
  }

  /**
   * Options for a local fake (plain HTTP, no credentials): the REST transport with an auth client
   * that adds no token, so nothing looks for Application Default Credentials or a metadata server.
   */
  static fakeClientOptions(port: number, host = '127.0.0.1'): ComputeClientOptions {
    return { apiEndpoint: host, port, protocol: 'http', fallback: true, auth: new GoogleAuth({ authClient: new PassThroughClient() }) };
  }

  /** Closes the clients this provider made (not those it was given). */
  async close(): Promise<void> {
    if (this.ownsClients.instances) await this.instances.close();
    if (this.ownsClients.operations) await this.operations.close();
  }

  /**
   * `resumeFrom`: the heartbeat details of the previous try (ComputeEngineAcquireProgress).
   * Defaults to the current activity's `info.heartbeatDetails`, so the provider resumes without extra wiring.
   */
  async acquire(request: ComputeRequest, heartbeat: (details?: unknown) => void, resumeFrom: unknown = activityResumeDetails()): Promise<ComputeLease> {
    const target = this.validate(request);
    const { project, zone, name } = target;
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    const where = (during: string): Where => ({ instance: path, zone, during });
    const progress = (operation: string | undefined): ComputeEngineAcquireProgress => ({ instance: path, ...(operation !== undefined ? { operation } : {}) });

    const previous = resumeFrom as Partial<ComputeEngineAcquireProgress> | undefined;
    let operation = previous?.instance === path && typeof previous.operation === 'string' ? previous.operation : undefined;
    if (operation === undefined) {
      try {
        const [lro] = await this.instances.insert({ project, zone, instanceResource: this.instanceSpec(request, target) });
        // The compute client wraps GCE's own Operation as latestResponse (typed as a longrunning one).
        operation = (lro.latestResponse as unknown as Operation).name ?? undefined;
      } catch (error) {
        if (!isAlreadyExists(error)) throw classifyComputeEngineError(error, where('creating'));
        // an earlier try (or a lost response) created it: adopt and poll.
      }
    }
    heartbeat(progress(operation));

    const readyTimeoutMs = this.options.readyTimeoutMs ?? 30 * 60_000;
    const deadline = Date.now() + readyTimeoutMs;
    const waitOrTimeout = async (phase: string): Promise<void> => {
      if (Date.now() >= deadline) {
        throw ApplicationFailure.create({
          type: 'TpuNotReady',
          message: `${path} not RUNNING after ${readyTimeoutMs} ms (${phase}); a retry adopts it`,
          nonRetryable: false,
          details: [{ instance: path, zone, phase }],
        });
      }
      await sleep(this.pollIntervalMs);
    };

    // 1. The insert operation, when we have one: its error is the only place a stockout or quota shows.
    while (operation !== undefined) {
      let op: Operation;
      try {
        [op] = await this.operations.get({ project, zone, operation });
      } catch (error) {
        if (isNotFound(error)) break; // operation expired: the VM tells the rest
        throw classifyComputeEngineError(error, where('polling the create operation of'));
      }
      if (op.status === 'DONE') {
        if ((op.error?.errors?.length ?? 0) > 0) throw classifyOperationError(op, where('creating'));
        break;
      }
      heartbeat(progress(operation));
      await waitOrTimeout(`create operation ${op.status ?? 'PENDING'}`);
    }

    // 2. The VM, until RUNNING with an address.
    for (;;) {
      let vm: Instance;
      try {
        [vm] = await this.instances.get({ project, zone, instance: name });
      } catch (error) {
        if (isNotFound(error)) {
          throw fail('maintenance', `${path} disappeared while waiting for it to be RUNNING (deleted, or its creation failed); the attempt needs a new VM`, { instance: path, zone });
        }
        throw classifyComputeEngineError(error, where('reading'));
      }
      this.checkOwnership(vm, request, path);
      const status = vm.status ?? '';
      if (status === 'RUNNING') {
        const address = this.addressOf(vm);
        if (address !== undefined) return this.lease(vm, target, address);
      } else if (!COMING_UP.has(status)) {
        const loss = await this.lossOf(project, zone, name, vm, target.spot);
        throw fail(loss.failureClass, `${path} is ${status} before the stage started: ${loss.detail}; it must be deleted and recreated`, { instance: path, zone, status });
      }
      heartbeat(progress(operation));
      await waitOrTimeout(`status ${status || 'unknown'}`);
    }
  }

  async release(request: ComputeRequest): Promise<ReleaseResult> {
    const target = this.validate(request);
    let released = false;
    for (const zone of target.zones) {
      if ((await this.isOurs(target.project, zone, target.name, request)) && (await this.deleteInstance(target.project, zone, target.name))) released = true;
    }
    return { name: target.name, released };
  }

  /** Whether a VM of the derived name is there and this run's: release never deletes someone else's VM that happens to have the name. */
  private async isOurs(project: string, zone: string, name: string, request: ComputeRequest): Promise<boolean> {
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    let vm: Instance;
    try {
      [vm] = await this.instances.get({ project, zone, instance: name });
    } catch (error) {
      if (isNotFound(error)) return false;
      throw classifyComputeEngineError(error, { instance: path, zone, during: 'reading before deleting' });
    }
    const problem = ownershipProblem(vm, request.runId);
    if (problem === undefined) return true;
    (this.options.note ?? defaultNote)(`${path} ${problem}: not deleted`);
    return false;
  }

  async health(request: ComputeRequest): Promise<LeaseHealth> {
    const { project, zone, name, spot } = this.validate(request);
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    let vm: Instance | undefined;
    try {
      [vm] = await this.instances.get({ project, zone, instance: name });
    } catch (error) {
      if (!isNotFound(error)) throw classifyComputeEngineError(error, { instance: path, zone, during: 'reading' });
    }
    if (vm?.status === 'RUNNING') return { state: 'ok' };
    const loss = await this.lossOf(project, zone, name, vm, spot);
    return { state: 'lost', failureClass: loss.failureClass, detail: `${path} ${loss.detail}` };
  }

  async listLeases(): Promise<LeaseRecord[]> {
    const filter = `labels.owner=${LEASE_OWNER}`;
    const records: LeaseRecord[] = [];
    for (const { project, zones } of this.scope()) {
      if (!PROJECT_ID.test(project)) throw invalid(`"${project}" in the compute-engine scope is not a Google Cloud project id`);
      const badZone = (zones ?? []).find((z) => !ZONE_NAME.test(z));
      if (badZone !== undefined) throw invalid(`"${badZone}" in the compute-engine scope is not a zone name like us-east5-b`);
      const where = { instance: `projects/${project}`, zone: (zones ?? []).join(',') || '-', during: 'listing the VMs of' };
      try {
        if (zones !== undefined && zones.length > 0) {
          for (const zone of zones) {
            for await (const vm of this.instances.listAsync({ project, zone, filter, maxResults: 500 }, { autoPaginate: false })) {
              if (vm.labels?.owner === LEASE_OWNER) records.push(this.leaseRecord(project, zone, vm));
            }
          }
        } else {
          for await (const [scope, list] of this.instances.aggregatedListAsync({ project, filter, maxResults: 500 }, { autoPaginate: false })) {
            const zone = scope.replace(/^zones\//, '');
            for (const vm of list.instances ?? []) {
              if (vm.labels?.owner === LEASE_OWNER) records.push(this.leaseRecord(project, zone, vm));
            }
          }
        }
      } catch (error) {
        throw classifyComputeEngineError(error, where);
      }
    }
    return records;
  }

  /**
   * Deletes the VM the record names, if it is still the one listed (same instance id; a newer
   * VM that took the name is not it). True when deleted; false when it was not found.
   */
  async deleteLease(record: LeaseRecord): Promise<boolean> {
    if (record.backend !== 'compute-engine') throw invalid(`the compute-engine provider was asked to delete a ${record.backend} lease (${record.name})`);
    const project = record.labels.project ?? this.options.project ?? '';
    const zone = record.zone ?? '';
    if (!PROJECT_ID.test(project)) throw invalid(`lease ${record.name} names no Google Cloud project (labels.project)`);
    if (!ZONE_NAME.test(zone)) throw invalid(`lease ${record.name} names no zone`);
    if (!INSTANCE_NAME.test(record.name)) throw invalid(`"${record.name}" is not a Compute Engine instance name`);
    const scope = this.scope();
    if (scope.length > 0 && !scope.some((s) => s.project === project)) throw invalid(`project ${project} of lease ${record.name} is not in this provider's scope`);

    const path = `projects/${project}/zones/${zone}/instances/${record.name}`;
    let vm: Instance;
    try {
      [vm] = await this.instances.get({ project, zone, instance: record.name });
    } catch (error) {
      if (isNotFound(error)) return false;
      throw classifyComputeEngineError(error, { instance: path, zone, during: 'reading' });
    }
    const listedId = record.labels['instance-id'];
    const same = listedId !== undefined && listedId !== '' ? String(vm.id) === listedId : Date.parse(vm.creationTimestamp ?? '') === Date.parse(record.createdAt);
    if (!same) return false;
    if (vm.labels?.owner !== LEASE_OWNER) throw invalid(`${path} is no longer labelled owner=${LEASE_OWNER}; not deleting it`);
    return this.deleteInstance(project, zone, record.name);
  }

  // ---- internals ---------------------------------------------------------------------

  private scope(): Array<{ project: string; zones?: string[] }> {
    return this.options.scope ?? (this.options.project !== undefined ? [{ project: this.options.project }] : []);
  }

  /** Every check that can be made without the API; throws TpuInvalidConfig (non-retryable). */
  private validate(request: ComputeRequest): Target {
    const compute = request.compute;
    if (compute.backend !== 'compute-engine') throw invalid(`the compute-engine provider was asked for backend ${compute.backend}`);
    const { project, zone } = checkPlacement({ ...request, compute }, this.options.project, 'VM');
    const problem = machineTypeProblem(compute.machineType);
    if (problem !== undefined) throw invalid(problem);
    if (typeof compute.bootImage !== 'string' || !BOOT_IMAGE.test(compute.bootImage)) {
      throw invalid(`"${String(compute.bootImage)}" is not an image like projects/cos-cloud/global/images/family/cos-stable`);
    }
    if (!Number.isInteger(compute.bootDiskGb) || compute.bootDiskGb < 10 || compute.bootDiskGb > 65536) throw invalid(`bootDiskGb must be 10..65536, got ${compute.bootDiskGb}`);
    const gpuProblem = gpuRequestProblem(compute.machineType, compute.gpus);
    if (gpuProblem !== undefined) throw invalid(`${gpuProblem.field}: ${gpuProblem.message}`);
    const gpus = gpusOf(compute.machineType, compute.gpus);
    return {
      project,
      zones: compute.zones,
      zone,
      name: computeName(request.runId, request.stage, request.attempt),
      machineType: compute.machineType,
      spot: request.placement?.spot ?? compute.spot === true,
      bootImage: compute.bootImage,
      bootDiskGb: compute.bootDiskGb,
      ...(gpus === undefined ? {} : { gpus }),
      ...(compute.gpus === undefined ? {} : { attachedGpus: { type: compute.gpus.type, count: compute.gpus.count } }),
    };
  }

  private instanceSpec(request: ComputeRequest, target: Target): Instance {
    const metadata: Record<string, string> = {
      ...machineMetadata(request, { user: this.sshUser, publicKey: this.options.sshPublicKey }),
      // The guest agent publishes the SSH host keys there (guest attributes are off by default).
      'enable-guest-attributes': 'TRUE',
      ...(target.gpus === undefined ? {} : GPU_DRIVER_METADATA),
    };
    const tpu = chipsOf(target.machineType) > 0;
    const gpu = target.gpus !== undefined;
    // automaticRestart off for every VM: a VM restarted after a host error has lost the stage's
    // container, so it had better show as TERMINATED (health: maintenance → a new VM) than come
    // back RUNNING with nothing on it. Spot: instanceTerminationAction STOP rather than DELETE,
    // so a preempted VM stays visible as TERMINATED (health tells preemption from deletion, the
    // operation history names it); it costs only its disk until release or the janitor deletes it.
    // TPU and GPU VMs cannot live-migrate, and spot VMs must terminate on host maintenance.
    const scheduling = target.spot
      ? { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false, onHostMaintenance: 'TERMINATE' }
      : { provisioningModel: 'STANDARD', automaticRestart: false, onHostMaintenance: tpu || gpu ? 'TERMINATE' : 'MIGRATE' };
    return {
      name: target.name,
      description: `recogdrive ${request.runId} ${request.stage} attempt ${request.attempt}`,
      machineType: `zones/${target.zone}/machineTypes/${target.machineType}`,
      labels: machineLabels(request),
      metadata: { items: Object.entries(metadata).map(([key, value]) => ({ key, value })) },
      disks: [
        {
          boot: true,
          autoDelete: true,
          initializeParams: {
            sourceImage: target.bootImage,
            diskSizeGb: target.bootDiskGb,
            // GPU VMs: pd-balanced, which every GPU series takes (A3 and G2 take no pd-standard, the default).
            ...(gpu ? { diskType: `zones/${target.zone}/diskTypes/pd-balanced` } : {}),
          },
        },
      ],
      ...(target.attachedGpus === undefined
        ? {}
        : { guestAccelerators: [{ acceleratorType: `zones/${target.zone}/acceleratorTypes/${target.attachedGpus.type}`, acceleratorCount: target.attachedGpus.count }] }),
      networkInterfaces: [
        {
          network: this.options.network ?? 'global/networks/default',
          // A3 VMs take only a gVNIC interface.
          ...(target.machineType.startsWith('a3-') ? { nicType: 'GVNIC' } : {}),
          ...(this.options.subnetwork !== undefined ? { subnetwork: this.options.subnetwork } : {}),
          accessConfigs: (this.options.externalIp ?? true) ? [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] : [],
        },
      ],
      serviceAccounts: [{ ...(this.options.serviceAccount ?? DEFAULT_VM_SERVICE_ACCOUNT) }],
      scheduling,
    };
  }

  /** An existing VM of this name that is not this attempt's is never adopted. */
  private checkOwnership(vm: Instance, request: ComputeRequest, path: string): void {
    const problem = ownershipProblem(vm, request.runId);
    if (problem !== undefined) throw fail('bad-input', `${path} exists but ${problem}; delete or rename it`, { instance: path });
  }

  private addressOf(vm: Instance): string | undefined {
    const nic = vm.networkInterfaces?.[0];
    const external = nic?.accessConfigs?.find((a) => typeof a.natIP === 'string' && a.natIP !== '')?.natIP;
    if (this.options.address !== 'internal' && external) return external;
    return nic?.networkIP || undefined;
  }

  private async lease(vm: Instance, target: Target, address: string): Promise<ComputeLease> {
    const { project, zone, name } = target;
    const endpoint = this.options.sshEndpointFor?.({ project, zone, name, address }) ?? { host: address, port: await this.sshPortOf(project, zone, name) };
    const machine = lastSegment(vm.machineType) || target.machineType;
    // What the VM is (an adopted VM may differ from the request), for health checks and the cost record.
    const gpus = gpusOf(machine, attachedGpusOf(vm));
    const cloud: ComputeEngineCloud = { project, zone, spot: isSpot(vm), machine, chips: chipsOf(machine), gpus: gpus?.count ?? 0, ...(gpus === undefined ? {} : { gpuType: gpus.type }) };
    return {
      name,
      backend: 'compute-engine',
      workers: [{ kind: 'ssh', host: endpoint.host, port: endpoint.port, user: this.sshUser, hostKeys: await this.hostKeys(project, zone, name) }],
      cloud,
    };
  }

  /** sshPort (default 22), or with sshPortFromGuestAttributes the emulator's `recogdrive/ssh-port` guest attribute when it is a port. */
  private async sshPortOf(project: string, zone: string, name: string): Promise<number> {
    const fallback = this.options.sshPort ?? 22;
    if (this.options.sshPortFromGuestAttributes !== true) return fallback;
    const note = this.options.note ?? defaultNote;
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    let value: string | undefined;
    try {
      const [attributes] = await this.instances.getGuestAttributes({ project, zone, instance: name, queryPath: `${SSH_PORT_ATTRIBUTE.namespace}/${SSH_PORT_ATTRIBUTE.key}` });
      value = (attributes.queryValue?.items ?? []).find((item) => item.namespace === SSH_PORT_ATTRIBUTE.namespace && item.key === SSH_PORT_ATTRIBUTE.key)?.value ?? undefined;
    } catch (error) {
      if (!isNotFound(error)) note(`guest attribute ${SSH_PORT_ATTRIBUTE.namespace}/${SSH_PORT_ATTRIBUTE.key} of ${path} could not be read (${messageOf(error)}): SSH port ${fallback}`);
      return fallback;
    }
    if (value === undefined) return fallback;
    const port = Number(value.trim());
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      note(`guest attribute ${SSH_PORT_ATTRIBUTE.namespace}/${SSH_PORT_ATTRIBUTE.key} of ${path} is "${value}", not a port: SSH port ${fallback}`);
      return fallback;
    }
    return port;
  }

  /** SSH host keys from guest attributes ("type base64"); empty (with a note) when not published. */
  private async hostKeys(project: string, zone: string, name: string): Promise<string[]> {
    const note = this.options.note ?? defaultNote;
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    try {
      const [attributes] = await this.instances.getGuestAttributes({ project, zone, instance: name, queryPath: 'hostkeys/' });
      const keys = (attributes.queryValue?.items ?? [])
        .filter((item) => item.namespace === 'hostkeys' && item.key && item.value)
        // The guest agent writes the base64 key under its type; accept "type base64" too.
        .map((item) => (item.value!.trim().startsWith(`${item.key!} `) ? item.value!.trim() : `${item.key!} ${item.value!.trim()}`));
      if (keys.length === 0) note(`no SSH host keys in the guest attributes of ${path}: hostKeys is empty, so the SSH executor will refuse this host unless its key is pinned another way`);
      return keys;
    } catch (error) {
      note(`guest attributes of ${path} could not be read (${isNotFound(error) ? 'not published yet' : messageOf(error)}): hostKeys is empty`);
      return [];
    }
  }

  /** Why the VM is not RUNNING: preemption when GCE recorded one for it, maintenance otherwise. */
  private async lossOf(project: string, zone: string, name: string, vm: Instance | undefined, spotRequested: boolean): Promise<Loss> {
    if (vm === undefined ? spotRequested : isSpot(vm)) {
      const preempted = await this.preemptionOf(project, zone, name, vm?.id == null ? undefined : String(vm.id));
      if (preempted !== undefined) {
        const when = preempted.insertTime ? ` at ${preempted.insertTime}` : '';
        return { failureClass: 'preemption', detail: `was preempted${when} (${PREEMPTED_OPERATION}${preempted.statusMessage ? `: ${preempted.statusMessage}` : ''})${vm === undefined ? ' and deleted' : `; it is ${vm.status ?? 'not running'}`}` };
      }
    }
    if (vm === undefined) return { failureClass: 'maintenance', detail: 'no longer exists (deleted outside the run, or by Compute Engine)' };
    const status = vm.status ?? 'in an unknown state';
    const why = status === 'REPAIRING' ? 'under repair after a host problem' : COMING_UP.has(status) ? 'restarting: what ran on it is gone' : 'stopped, or terminated for host maintenance or a host error';
    return { failureClass: 'maintenance', detail: `is ${status}${vm.statusMessage ? ` (${vm.statusMessage})` : ''}: ${why}` };
  }

  /** GCE's record of a preemption: a `compute.instances.preempted` operation targeting the VM (by id when known, else by name). */
  private async preemptionOf(project: string, zone: string, name: string, id: string | undefined): Promise<Operation | undefined> {
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    try {
      for await (const op of this.operations.listAsync({ project, zone, filter: `operationType="${PREEMPTED_OPERATION}"`, maxResults: 500 }, { autoPaginate: false })) {
        const matches = id !== undefined && op.targetId != null ? String(op.targetId) === id : lastSegment(op.targetLink) === name;
        if (op.operationType === PREEMPTED_OPERATION && matches) return op;
      }
    } catch (error) {
      throw classifyComputeEngineError(error, { instance: path, zone, during: 'reading the preemption history of' });
    }
    return undefined;
  }

  private leaseRecord(project: string, zone: string, vm: Instance): LeaseRecord {
    const labels: Record<string, string> = { ...(vm.labels ?? {}) };
    const metadata = metadataOf(vm);
    // Labels hold slugs; the exact run id is in the metadata, trusted only when it hashes to the
    // run-hash label. Without it the run is left out, so the janitor keeps the VM (never deletes a
    // VM whose run it cannot tell).
    const run = metadata['recogdrive-run'];
    if (run !== undefined && labels['run-hash'] === shortHash(run)) labels.run = run;
    else delete labels.run;
    const stage = metadata['recogdrive-stage'];
    if (stage !== undefined && isStageName(stage) && labels.stage === STAGE_SLUGS[stage]) labels.stage = stage;
    else delete labels.stage;
    labels.project = project;
    labels['instance-id'] = vm.id == null ? '' : String(vm.id);
    const created = Date.parse(vm.creationTimestamp ?? '');
    return {
      name: vm.name ?? '',
      backend: 'compute-engine',
      labels,
      createdAt: Number.isNaN(created) ? (vm.creationTimestamp ?? '') : new Date(created).toISOString(),
      zone,
    };
  }

  /** True when this call deleted the VM; false when it was not there. */
  private async deleteInstance(project: string, zone: string, name: string): Promise<boolean> {
    const path = `projects/${project}/zones/${zone}/instances/${name}`;
    const attempts = this.options.deleteAttempts ?? 4;
    let delay = this.options.deleteRetryDelayMs ?? 2000;
    let started = false;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const [lro] = await this.instances.delete({ project, zone, instance: name });
        started = true;
        return await this.waitForDelete(project, zone, (lro.latestResponse as unknown as Operation).name ?? '', path);
      } catch (error) {
        if (isNotFound(error)) return started;
        const classified = classifyComputeEngineError(error, { instance: path, zone, during: 'deleting' });
        if (classified.nonRetryable) throw classified;
        lastError = classified;
      }
      if (attempt < attempts) {
        await sleep(delay);
        delay *= 2;
      }
    }
    throw lastError;
  }

  /** True when the operation deleted it; false when it was already gone (RESOURCE_NOT_FOUND). */
  private async waitForDelete(project: string, zone: string, operation: string, path: string): Promise<boolean> {
    const deadline = Date.now() + (this.options.deleteTimeoutMs ?? 10 * 60_000);
    for (;;) {
      // wait returns when the operation is DONE or after up to 2 minutes, whichever comes first.
      const [op] = await this.operations.wait({ project, zone, operation });
      if (op.status === 'DONE') {
        if ((op.error?.errors?.length ?? 0) === 0) return true;
        if (op.error!.errors!.some((e) => e.code === 'RESOURCE_NOT_FOUND')) return false;
        throw classifyOperationError(op, { instance: path, zone, during: 'deleting' });
      }
      if (Date.now() >= deadline) throw fail('internal', `delete of ${path} still running after the deadline`, { instance: path, operation });
      await sleep(Math.min(this.pollIntervalMs, 5000));
    }
  }
}
