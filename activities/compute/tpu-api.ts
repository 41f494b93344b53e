/**
 * Cloud TPU nodes created through the Cloud TPU API v2 (`tpu-api` backend).
 *
 * Where: project = request.project ?? options.project; zone = request.placement.zone (one of
 * compute.zones) or the first zone; spot = request.placement.spot ?? compute.spot (the workflow's
 * failover chooses the placement; nothing is failed over here). Bad input fails with
 * TpuInvalidConfig before any API call.
 *
 * acquire: a node named computeName(run, stage, attempt), labelled (run, run-hash, stage,
 * attempt, owner=recogdrive; the exact run id and stage are in the node's metadata since labels
 * cannot hold them).
 * - direct: CreateNode; ALREADY_EXISTS adopts the node. The operation name goes into the
 *   heartbeat details ({ node, operation }); a retried activity resumes it instead of creating.
 * - queued: a queued resource of the same name (tpu-queued.ts), waited on until ACTIVE; heartbeat
 *   { node, queuedResource, operation? }, and a retry that finds it there does not create again.
 * Then the node is polled (a heartbeat every poll) until READY with every worker's endpoint;
 * each worker's SSH host keys come from guest attributes (namespace `hostkeys`). The lease
 * carries `cloud` = { project, zone, spot, machine, chips }.
 *
 * release: in every zone of compute.zones (robust after a failover), the queued resource with
 * force (queued) and the node; NOT_FOUND counts as not released. Transient delete failures are
 * retried here (`deleteAttempts`), then left to Temporal's activity retry.
 *
 * health: the node (and queued resource) in the placement zone → ok / lost (tpu-health.ts).
 * listLeases / deleteLease: the janitor's view over `scope` (tpu-janitor.ts).
 *
 * Errors are ApplicationFailures with a type the workflow's policy can act on: TpuStockout,
 * TpuQuotaExceeded, TpuInvalidConfig, TpuPermissionDenied, TpuPreempted, TpuMaintenance,
 * TpuNodeLost (non-retryable), TpuInternal, TpuNotReady (retryable).
 */
import { DEFAULT_VM_SERVICE_ACCOUNT, type VmServiceAccount } from './vm-service-account.ts';
import * as grpc from '@grpc/grpc-js';
import { v2 } from '@google-cloud/tpu';
import { V6E_ACCELERATORS } from '../../pipeline/input.ts';
import type { LeaseRecord } from '../../pipeline/janitor.ts';
import { computeName } from '../../pipeline/naming.ts';
import type { ComputeLease, ComputeRequest, LeaseHealth, ReleaseResult, WorkerEndpoint } from '../types.ts';
import type { ComputeProvider } from './provider.ts';
import {
  activityResumeDetails,
  classifyTpuError,
  codeOf,
  defaultNote,
  deleteResource,
  failure,
  invalid,
  locationName,
  messageOf,
  nodeName,
  nodeState,
  queuedResourceName,
  sleep,
  v6eChips,
  v6eWorkerCount,
  type DeleteSettings,
  type TpuClient,
  type TpuClientOptions,
} from './tpu-common.ts';
import { judgeHealth } from './tpu-health.ts';
import { deleteTpuLease, listTpuLeases, type TpuScope } from './tpu-janitor.ts';
import { createQueued, waitUntilActive } from './tpu-queued.ts';
import { checkPlacement, machineLabels, machineMetadata, ownedByRun } from './cloud-request.ts';

export { classifyTpuError, nodeState, v6eWorkerCount, type TpuClient, type TpuClientOptions } from './tpu-common.ts';
export type { TpuScope } from './tpu-janitor.ts';

export interface TpuApiProviderOptions {
  /** Default Google Cloud project, when a request carries none (request.project wins). */
  project?: string;
  /** A ready client (tests share one); otherwise one is built from clientOptions (ADC by default). */
  client?: TpuClient;
  clientOptions?: TpuClientOptions;
  /** SSH user on the workers. Default 'recogdrive'. */
  sshUser?: string;
  /** SSH port of every worker. Default 22. */
  sshPort?: number;
  /**
   * Take each worker's SSH port from its network endpoint's `port` (emulators that map workers
   * onto local sshd). The real API puts the TPU runtime port 8470 there: default false.
   */
  sshPortFromEndpoint?: boolean;
  /** "ssh-ed25519 AAAA…": put into the node's metadata `ssh-keys` for sshUser. */
  sshPublicKey?: string;
  /** Between polls of the operation / queued resource / node. Default 15 s. */
  pollIntervalMs?: number;
  /** Give up waiting (queue included) after this long per try (retryable TpuNotReady: a retry adopts). Default 45 min. */
  readyTimeoutMs?: number;
  /** Queued provisioning: the queued resource FAILS when no capacity came within this long (→ failover). Default 1 h. */
  queueValidForMs?: number;
  /** Service account the TPU VM runs as (its bring-up pulls the image and reads and writes the buckets with it). Default: 'default' with cloud-platform. */
  serviceAccount?: VmServiceAccount;
  /** Request external IPs (networkConfig.enableExternalIps). Default true. */
  externalIps?: boolean;
  /** Which address to hand out: the external one when the node has it (default), or always the internal one. */
  address?: 'external-if-present' | 'internal';
  /** Delete calls per resource per release before the error goes to Temporal's retry. Default 4. */
  deleteAttempts?: number;
  /** First back-off between delete tries (doubles). Default 2 s. */
  deleteRetryDelayMs?: number;
  /** Longest wait for a delete operation. Default 10 min. */
  deleteTimeoutMs?: number;
  /** Janitor: the projects × zones listLeases looks in (and deleteLease may touch). None: nothing is listed. */
  scope?: TpuScope[];
  /** Janitor: page size of the List calls. Default 100. */
  listPageSize?: number;
  /** Notes that are not errors (missing host keys). Default: the activity logger, else console.warn. */
  note?: (message: string) => void;
}

/** The TPU API's ServiceAccount: an empty email means the project's default compute account ("default" is no email there). */
function tpuServiceAccount(account: VmServiceAccount): { email?: string; scope: string[] } {
  return { ...(account.email === 'default' ? {} : { email: account.email }), scope: account.scopes };
}

/** What acquire heartbeats, and reads back when the activity is retried. */
export interface TpuAcquireProgress {
  node: string;
  /** Queued provisioning: the queued resource's name (it exists: do not create it again). */
  queuedResource?: string;
  operation?: string;
}

interface Target {
  project: string;
  /** The placement zone. */
  zone: string;
  /** Every zone of the request (release looks in all). */
  zones: string[];
  nodeId: string;
  accelerator: string;
  runtimeVersion: string;
  spot: boolean;
  queued: boolean;
}

export class TpuApiComputeProvider implements ComputeProvider {
  readonly client: TpuClient;
  private readonly options: TpuApiProviderOptions;
  private readonly sshUser: string;
  private readonly pollIntervalMs: number;
  private readonly readyTimeoutMs: number;
  private readonly deletes: DeleteSettings;

  constructor(options: TpuApiProviderOptions) {
    this.options = options;
    this.client = options.client ?? new v2.TpuClient(options.clientOptions ?? {});
    this.sshUser = options.sshUser ?? 'recogdrive';
    this.pollIntervalMs = options.pollIntervalMs ?? 15_000;
    this.readyTimeoutMs = options.readyTimeoutMs ?? 45 * 60_000;
    this.deletes = {
      client: this.client,
      attempts: options.deleteAttempts ?? 4,
      retryDelayMs: options.deleteRetryDelayMs ?? 2000,
      timeoutMs: options.deleteTimeoutMs ?? 10 * 60_000,
      pollIntervalMs: this.pollIntervalMs,
    };
  }

  /** Options for a local fake (insecure channel, no credentials). */
  static fakeClientOptions(port: number, host = '127.0.0.1'): TpuClientOptions {
    return { apiEndpoint: host, port, sslCreds: grpc.credentials.createInsecure() };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /**
   * `resumeFrom`: the heartbeat details of the previous try (TpuAcquireProgress). Defaults to the
   * current activity's `info.heartbeatDetails`, so the provider resumes without extra wiring.
   */
  async acquire(request: ComputeRequest, heartbeat: (details?: unknown) => void, resumeFrom: unknown = activityResumeDetails()): Promise<ComputeLease> {
    const target = this.validate(request);
    const { zone } = target;
    const parent = locationName(target.project, zone);
    const name = nodeName(target.project, zone, target.nodeId);
    const deadline = Date.now() + this.readyTimeoutMs;
    const waitOrTimeout = async (phase: string): Promise<void> => {
      if (Date.now() >= deadline) {
        throw failure('TpuNotReady', `${name} not ready after ${this.readyTimeoutMs} ms (${phase}); a retry adopts it`, false, { node: name, zone, phase });
      }
      await sleep(this.pollIntervalMs);
    };
    const previous = resumeFrom as Partial<TpuAcquireProgress> | undefined;
    let progress: TpuAcquireProgress;

    if (target.queued) {
      const qrName = queuedResourceName(target.project, zone, target.nodeId);
      // a previous try that heartbeated the resource created it: go on waiting, no second create.
      const resumed = previous?.node === name && previous.queuedResource === qrName;
      const operation = resumed
        ? typeof previous.operation === 'string' ? previous.operation : undefined
        : await createQueued(this.client, { parent, id: target.nodeId, node: this.nodeSpec(request, target), spot: target.spot, validForMs: this.options.queueValidForMs ?? 60 * 60_000 }, zone);
      progress = { node: name, queuedResource: qrName, ...(operation !== undefined ? { operation } : {}) };
      heartbeat(progress);
      await waitUntilActive({
        client: this.client,
        name: qrName,
        zone,
        ...(operation !== undefined ? { operation } : {}),
        beat: () => heartbeat(progress),
        waitOrTimeout,
        dropFailed: async () => {
          await deleteResource(this.deletes, 'queued-resource', qrName, zone).catch((error: unknown) => {
            (this.options.note ?? defaultNote)(`could not delete the failed queued resource ${qrName} (${messageOf(error)}); release deletes it`);
          });
        },
      });
    } else {
      let operation = previous?.node === name && typeof previous.operation === 'string' ? previous.operation : undefined;
      if (operation === undefined) {
        try {
          const [op] = await this.client.createNode({ parent, nodeId: target.nodeId, node: this.nodeSpec(request, target) });
          operation = op.name ?? undefined;
        } catch (error) {
          // ALREADY_EXISTS: an earlier try (or a lost response) created it: adopt and poll — if it is this run's.
          if (codeOf(error) !== grpc.status.ALREADY_EXISTS) throw classifyTpuError(error, { node: name, zone, during: 'creating' });
          const [existing] = await this.client.getNode({ name }).catch((e: unknown) => {
            throw classifyTpuError(e, { node: name, zone, during: 'reading' });
          });
          if (!ownedByRun(existing.labels, existing.metadata, request.runId)) {
            throw failure('TpuBadInput', `a TPU node named ${name} already exists and is not this run's (its owner label or run metadata differ): it is left alone; delete it or run under another id`, true, { node: name, zone });
          }
        }
      }
      progress = { node: name, ...(operation !== undefined ? { operation } : {}) };
      heartbeat(progress);
      await this.waitForCreateOperation(progress, zone, heartbeat, waitOrTimeout);
    }

    const workers = await this.waitForReadyNode(target, name, () => heartbeat(progress), waitOrTimeout);
    return {
      name: target.nodeId,
      backend: 'tpu-api',
      workers,
      cloud: { project: target.project, zone, spot: target.spot, machine: target.accelerator, chips: v6eChips(target.accelerator) },
    };
  }

  async release(request: ComputeRequest): Promise<ReleaseResult> {
    const target = this.validate(request);
    let released = false;
    for (const zone of target.zones) {
      const qrName = queuedResourceName(target.project, zone, target.nodeId);
      if (target.queued && (await this.isOurs('queued-resource', qrName, zone, request.runId)) && (await deleteResource(this.deletes, 'queued-resource', qrName, zone))) released = true;
      // also for queued: a node the queued resource no longer holds (or a direct one) is deleted too.
      const name = nodeName(target.project, zone, target.nodeId);
      if ((await this.isOurs('node', name, zone, request.runId)) && (await deleteResource(this.deletes, 'node', name, zone))) released = true;
    }
    return { name: target.nodeId, released };
  }

  /**
   * Whether a node / queued resource of our derived name is this run's (owner label and run
   * metadata), so release never deletes someone else's machine that happens to have the name.
   * Not found → false (nothing to delete).
   */
  private async isOurs(kind: 'node' | 'queued-resource', name: string, zone: string, runId: string): Promise<boolean> {
    let resource: { labels?: Record<string, string> | null; metadata?: Record<string, string> | null };
    try {
      resource = kind === 'node' ? (await this.client.getNode({ name }))[0] : ((await this.client.getQueuedResource({ name }))[0].tpu?.nodeSpec?.[0]?.node ?? {});
    } catch (error) {
      if (codeOf(error) === grpc.status.NOT_FOUND) return false;
      throw classifyTpuError(error, { node: name, zone, during: 'reading before deleting' });
    }
    if (ownedByRun(resource.labels, resource.metadata, runId)) return true;
    (this.options.note ?? defaultNote)(`${name} is not run ${runId}'s (owner label or run metadata differ): not deleted`);
    return false;
  }

  async health(request: ComputeRequest): Promise<LeaseHealth> {
    const target = this.validate(request);
    const name = nodeName(target.project, target.zone, target.nodeId);
    const qrName = queuedResourceName(target.project, target.zone, target.nodeId);
    const read = async <T>(call: () => Promise<[T, ...unknown[]]>, what: string): Promise<T | 'missing'> => {
      try {
        return (await call())[0];
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) return 'missing';
        // transient trouble is thrown as it is classified (TpuInternal is retryable): the caller retries.
        throw classifyTpuError(error, { node: what, zone: target.zone, during: 'checking the health of' });
      }
    };
    const node = await read(() => this.client.getNode({ name }), name);
    const queued = target.queued ? await read(() => this.client.getQueuedResource({ name: qrName }), qrName) : undefined;
    return judgeHealth({ node: name, ...(target.queued ? { queuedResource: qrName } : {}) }, node, queued, target.spot);
  }

  async listLeases(): Promise<LeaseRecord[]> {
    if (this.options.scope === undefined || this.options.scope.length === 0) {
      (this.options.note ?? defaultNote)('tpu-api: no janitor scope configured (projects × zones): no TPU leases listed');
      return [];
    }
    return listTpuLeases(this.client, this.options.scope, this.options.listPageSize ?? 100);
  }

  async deleteLease(record: LeaseRecord): Promise<boolean> {
    return deleteTpuLease(this.deletes, this.options.scope ?? [], record);
  }

  // ---- internals ---------------------------------------------------------------------

  /** Every check that can be made without the API; throws TpuInvalidConfig (non-retryable). */
  private validate(request: ComputeRequest): Target {
    const compute = request.compute;
    if (compute.backend !== 'tpu-api') throw invalid(`the tpu-api provider was asked for backend ${compute.backend}`);
    const { project, zone } = checkPlacement({ ...request, compute }, this.options.project, 'TPU');
    if (!(V6E_ACCELERATORS as readonly string[]).includes(compute.accelerator)) {
      throw invalid(`unknown accelerator "${String(compute.accelerator)}"; one of ${V6E_ACCELERATORS.join(', ')}`);
    }
    const runtimeVersion = compute.runtimeVersion;
    if (typeof runtimeVersion !== 'string' || runtimeVersion === '') throw invalid('runtimeVersion is empty');
    return {
      project,
      zone,
      zones: compute.zones,
      nodeId: computeName(request.runId, request.stage, request.attempt),
      accelerator: compute.accelerator,
      runtimeVersion,
      spot: (request.placement?.spot ?? compute.spot) === true,
      queued: compute.provisioning === 'queued',
    };
  }

  private nodeSpec(request: ComputeRequest, target: Target): Record<string, unknown> {
    const metadata = machineMetadata(request, { user: this.sshUser, publicKey: this.options.sshPublicKey });
    return {
      description: `recogdrive ${request.runId} ${request.stage} attempt ${request.attempt}`,
      acceleratorType: target.accelerator,
      runtimeVersion: target.runtimeVersion,
      labels: machineLabels(request),
      metadata,
      // queued: the tier is the queued resource's (`spot: {}`), not the node's scheduling config.
      schedulingConfig: target.spot && !target.queued ? { spot: true } : {},
      networkConfig: { enableExternalIps: this.options.externalIps ?? true },
      serviceAccount: tpuServiceAccount(this.options.serviceAccount ?? DEFAULT_VM_SERVICE_ACCOUNT),
    };
  }

  /** Direct create: its operation, when we have one, is the only place a stockout shows. */
  private async waitForCreateOperation(
    progress: TpuAcquireProgress,
    zone: string,
    heartbeat: (details?: unknown) => void,
    waitOrTimeout: (phase: string) => Promise<void>,
  ): Promise<void> {
    const operation = progress.operation;
    const where = (during: string) => ({ node: progress.node, zone, during });
    while (operation !== undefined) {
      let state;
      try {
        state = await this.client.checkCreateNodeProgress(operation);
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) return; // operation expired: the node tells the rest
        throw classifyTpuError(error, where('polling the create operation of'));
      }
      if (state.done) {
        if (state.error) throw classifyTpuError(state.error, where('creating'));
        return;
      }
      heartbeat(progress);
      await waitOrTimeout('create operation running');
    }
  }

  /** Polls the node until READY with every worker's endpoint; returns the workers. */
  private async waitForReadyNode(target: Target, name: string, beat: () => void, waitOrTimeout: (phase: string) => Promise<void>): Promise<WorkerEndpoint[]> {
    const { zone } = target;
    const expected = v6eWorkerCount(target.accelerator);
    for (;;) {
      let node;
      try {
        [node] = await this.client.getNode({ name });
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) {
          throw failure('TpuNodeLost', `${name} disappeared while waiting for it to be READY (deleted or failed); the attempt needs a new node`, true, { node: name, zone });
        }
        throw classifyTpuError(error, { node: name, zone, during: 'reading' });
      }
      const state = nodeState(node.state);
      const endpoints = node.networkEndpoints ?? [];
      if (state === 'READY' && endpoints.length >= expected) {
        const hostKeys = await this.hostKeys(name, endpoints.length);
        return endpoints.map((endpoint, i) => ({
          kind: 'ssh',
          host: this.addressOf(endpoint),
          port: this.options.sshPortFromEndpoint === true && endpoint.port ? endpoint.port : (this.options.sshPort ?? 22),
          user: this.sshUser,
          hostKeys: hostKeys[i] ?? [],
        }));
      }
      if (state === 'PREEMPTED' || state === 'TERMINATED') {
        throw failure('TpuPreempted', `${name} is ${state} before the stage started${node.health ? ` (health ${String(node.health)})` : ''}; it must be deleted and recreated`, true, { node: name, zone, state });
      }
      if (!['STATE_UNSPECIFIED', 'CREATING', 'RESTARTING', 'REPAIRING', 'STARTING', 'REIMAGING', 'READY'].includes(state)) {
        throw failure('TpuNodeLost', `${name} is ${state}, not becoming READY`, true, { node: name, zone, state });
      }
      beat();
      await waitOrTimeout(`state ${state}, ${endpoints.length}/${expected} endpoints`);
    }
  }

  private addressOf(endpoint: { ipAddress?: string | null; accessConfig?: { externalIp?: string | null } | null }): string {
    const external = endpoint.accessConfig?.externalIp;
    if (this.options.address !== 'internal' && external) return external;
    if (!endpoint.ipAddress) throw failure('TpuInternal', 'a network endpoint of the node has no address', false, {});
    return endpoint.ipAddress;
  }

  /** Host keys per worker from guest attributes ("type base64"); empty lists (with a note) when not published. */
  private async hostKeys(name: string, workers: number): Promise<string[][]> {
    const note = this.options.note ?? defaultNote;
    return Promise.all(
      Array.from({ length: workers }, async (_v, i) => {
        try {
          const [response] = await this.client.getGuestAttributes({ name, queryPath: 'hostkeys/', workerIds: [String(i)] });
          const items = (response.guestAttributes ?? []).flatMap((g) => g.queryValue?.items ?? []);
          const keys = items
            .filter((item) => item.namespace === 'hostkeys' && item.key && item.value)
            .map((item) => (item.value!.startsWith(`${item.key!} `) ? item.value!.trim() : `${item.key!} ${item.value!.trim()}`));
          if (keys.length === 0) note(`no SSH host keys in the guest attributes of worker ${i} of ${name}: hostKeys is empty, so the SSH executor will refuse this host unless its key is pinned another way`);
          return keys;
        } catch (error) {
          note(`guest attributes of worker ${i} of ${name} could not be read (${messageOf(error)}): hostKeys is empty`);
          return [];
        }
      }),
    );
  }
}
