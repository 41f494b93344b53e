/**
 * Cloud TPU nodes created directly through the Cloud TPU API v2 (`tpu-api` backend).
 *
 * acquire: a node named computeName(run, stage, attempt) in the FIRST zone of the request,
 * labelled (run, run-hash, stage, attempt, owner=recogdrive; the exact run id and stage are in
 * the node's metadata since labels cannot hold them). CreateNode → ALREADY_EXISTS adopts the
 * node. The operation name goes into the heartbeat details ({ node, operation }); a retried
 * activity resumes that operation instead of creating again. The node is polled (with a
 * heartbeat every poll) until READY with every worker's endpoint; each worker's SSH host keys
 * come from guest attributes (namespace `hostkeys`).
 *
 * release: DeleteNode in every zone of the request (a node is only ever in one), waiting for the
 * operation; NOT_FOUND counts as released. Transient delete failures are retried here
 * (`deleteAttempts`), then left to Temporal's activity retry.
 *
 * Errors are ApplicationFailures with a type the workflow's policy can act on (zone failover,
 * preemption handling are NOT done here): TpuStockout, TpuQuotaExceeded, TpuInvalidConfig,
 * TpuPermissionDenied, TpuPreempted, TpuNodeLost (non-retryable), TpuInternal, TpuNotReady
 * (retryable). Bad input fails before any API call.
 */
import * as grpc from '@grpc/grpc-js';
import { v2 } from '@google-cloud/tpu';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { V6E_ACCELERATORS } from '../../pipeline/input.ts';
import { LEASE_OWNER } from '../../pipeline/janitor.ts';
import { computeName, runSlug, shortHash } from '../../pipeline/naming.ts';
import { STAGE_SLUGS } from '../../pipeline/stages.ts';
import type { ComputeLease, ComputeRequest, ReleaseResult, WorkerEndpoint } from '../types.ts';
import type { ComputeProvider } from './provider.ts';

export type TpuClient = InstanceType<typeof v2.TpuClient>;
export type TpuClientOptions = NonNullable<ConstructorParameters<typeof v2.TpuClient>[0]>;

export interface TpuApiProviderOptions {
  /** Google Cloud project id (the run input's gcp.project). Checked on every call, before any API call. */
  project: string;
  /** A ready client (tests share one); otherwise one is built from clientOptions (ADC by default). */
  client?: TpuClient;
  clientOptions?: TpuClientOptions;
  /** SSH user on the workers. Default 'recogdrive'. */
  sshUser?: string;
  sshPort?: number;
  /** "ssh-ed25519 AAAA…": put into the node's metadata `ssh-keys` for sshUser. */
  sshPublicKey?: string;
  /** Between polls of the operation / node. Default 15 s. */
  pollIntervalMs?: number;
  /** Give up waiting for READY after this long (retryable TpuNotReady: a retry adopts the node). Default 45 min. */
  readyTimeoutMs?: number;
  /** Request external IPs (networkConfig.enableExternalIps). Default true. */
  externalIps?: boolean;
  /** Which address to hand out: the external one when the node has it (default), or always the internal one. */
  address?: 'external-if-present' | 'internal';
  /** DeleteNode tries per release before the error goes to Temporal's retry. Default 4. */
  deleteAttempts?: number;
  /** First back-off between delete tries (doubles). Default 2 s. */
  deleteRetryDelayMs?: number;
  /** Longest wait for a delete operation. Default 10 min. */
  deleteTimeoutMs?: number;
  /** Notes that are not errors (missing host keys). Default: the activity logger, else console.warn. */
  note?: (message: string) => void;
}

/** What acquire heartbeats, and reads back when the activity is retried. */
export interface TpuAcquireProgress {
  node: string;
  operation?: string;
}

const PROJECT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;

/** Node.State numbers (the Node inside an LRO result is decoded with numeric enums). */
const NODE_STATES: Record<number, string> = {
  0: 'STATE_UNSPECIFIED', 1: 'CREATING', 2: 'READY', 3: 'RESTARTING', 4: 'REIMAGING', 5: 'DELETING', 6: 'REPAIRING',
  8: 'STOPPED', 9: 'STOPPING', 10: 'STARTING', 11: 'PREEMPTED', 12: 'TERMINATED', 13: 'HIDING', 14: 'HIDDEN', 15: 'UNHIDING', 16: 'UNKNOWN',
};
const WAIT_STATES = new Set(['STATE_UNSPECIFIED', 'CREATING', 'RESTARTING', 'REPAIRING', 'STARTING', 'REIMAGING']);

export function nodeState(state: unknown): string {
  if (typeof state === 'number') return NODE_STATES[state] ?? `STATE_${state}`;
  return typeof state === 'string' && state !== '' ? state : 'STATE_UNSPECIFIED';
}

/** Worker VMs of a v6e slice: v6e-1/4/8 are one host; larger slices have 4 chips per host. */
export function v6eWorkerCount(accelerator: string): number {
  const chips = Number(/^v6e-(\d+)$/.exec(accelerator)?.[1] ?? NaN);
  return chips <= 8 ? 1 : chips / 4;
}

/** A Cloud label value: [a-z0-9_-], at most 63 characters. */
function labelValue(text: string): string {
  return runSlug(text, 63);
}

/** gRPC status code of a gax error or an operation's error ({ code, message }). */
function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function messageOf(error: unknown): string {
  const e = error as { details?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.details === 'string' && e.details !== '') return e.details;
  return typeof e?.message === 'string' ? e.message : String(error);
}

function failure(type: string, message: string, nonRetryable: boolean, details: Record<string, unknown>, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable, details: [details], ...(cause instanceof Error ? { cause } : {}) });
}

/**
 * Maps a Cloud TPU error (synchronous or an operation's) to a typed failure. Stockout and quota
 * share code 8: the message tells them apart (tpu-gcp.md §2).
 */
export function classifyTpuError(error: unknown, where: { node: string; zone: string; during: string }): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const code = codeOf(error);
  const message = messageOf(error);
  const details = { ...where, code, message };
  const text = `${where.during} ${where.node}: ${message}`;
  switch (code) {
    case grpc.status.RESOURCE_EXHAUSTED:
      return /quota/i.test(message) ? failure('TpuQuotaExceeded', text, true, details, error) : failure('TpuStockout', text, true, details, error);
    case grpc.status.FAILED_PRECONDITION:
      if (/reserved capacity/i.test(message)) return failure('TpuStockout', text, true, details, error);
      if (/unable to queue/i.test(message)) return failure('TpuInternal', text, false, details, error);
      return failure('TpuInvalidConfig', text, true, details, error);
    case grpc.status.INVALID_ARGUMENT:
      if (/PREEMPTED/.test(message)) return failure('TpuPreempted', text, true, details, error);
      return failure('TpuInvalidConfig', text, true, details, error);
    case grpc.status.NOT_FOUND:
      // on create: the location or the project is not there (or not visible to us).
      return failure('TpuInvalidConfig', text, true, details, error);
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.UNAUTHENTICATED:
      return failure('TpuPermissionDenied', text, true, details, error);
    default:
      // INTERNAL (also the opaque spot stockout), UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, UNKNOWN, a dropped channel.
      return failure('TpuInternal', text, false, details, error);
  }
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'TpuInvalidConfig', message, nonRetryable: true });
}

interface Target {
  project: string;
  zones: string[];
  nodeId: string;
  accelerator: string;
  runtimeVersion: string;
  spot: boolean;
}

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

export class TpuApiComputeProvider implements ComputeProvider {
  readonly client: TpuClient;
  private readonly options: TpuApiProviderOptions;
  private readonly sshUser: string;
  private readonly pollIntervalMs: number;

  constructor(options: TpuApiProviderOptions) {
    this.options = options;
    this.client = options.client ?? new v2.TpuClient(options.clientOptions ?? {});
    this.sshUser = options.sshUser ?? 'recogdrive';
    this.pollIntervalMs = options.pollIntervalMs ?? 15_000;
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
    const zone = target.zones[0]!;
    const parent = `projects/${target.project}/locations/${zone}`;
    const name = `${parent}/nodes/${target.nodeId}`;
    const where = (during: string): { node: string; zone: string; during: string } => ({ node: name, zone, during });

    const previous = resumeFrom as Partial<TpuAcquireProgress> | undefined;
    let operation = previous?.node === name && typeof previous.operation === 'string' ? previous.operation : undefined;
    if (operation === undefined) {
      try {
        const [op] = await this.client.createNode({ parent, nodeId: target.nodeId, node: this.nodeSpec(request, target) });
        operation = op.name ?? undefined;
      } catch (error) {
        if (codeOf(error) !== grpc.status.ALREADY_EXISTS) throw classifyTpuError(error, where('creating'));
        // an earlier try (or a lost response) created it: adopt and poll.
      }
    }
    heartbeat({ node: name, ...(operation !== undefined ? { operation } : {}) } satisfies TpuAcquireProgress);

    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 45 * 60_000);
    const waitOrTimeout = async (phase: string): Promise<void> => {
      if (Date.now() >= deadline) {
        throw failure('TpuNotReady', `${name} not ready after ${this.options.readyTimeoutMs ?? 45 * 60_000} ms (${phase}); a retry adopts it`, false, { node: name, zone, phase });
      }
      await sleep(this.pollIntervalMs);
    };

    // 1. The create operation, when we have one: its error is the only place a stockout shows.
    while (operation !== undefined) {
      let progress;
      try {
        progress = await this.client.checkCreateNodeProgress(operation);
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) break; // operation expired: the node tells the rest
        throw classifyTpuError(error, where('polling the create operation of'));
      }
      if (progress.done) {
        if (progress.error) throw classifyTpuError(progress.error, where('creating'));
        break;
      }
      heartbeat({ node: name, operation } satisfies TpuAcquireProgress);
      await waitOrTimeout('create operation running');
    }

    // 2. The node, until READY with every worker's endpoint.
    const expected = v6eWorkerCount(target.accelerator);
    for (;;) {
      let node;
      try {
        [node] = await this.client.getNode({ name });
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) {
          throw failure('TpuNodeLost', `${name} disappeared while waiting for it to be READY (deleted or failed); the attempt needs a new node`, true, { node: name, zone });
        }
        throw classifyTpuError(error, where('reading'));
      }
      const state = nodeState(node.state);
      const endpoints = node.networkEndpoints ?? [];
      if (state === 'READY' && endpoints.length >= expected) {
        const hostKeys = await this.hostKeys(name, endpoints.length);
        const workers: WorkerEndpoint[] = endpoints.map((endpoint, i) => ({
          kind: 'ssh',
          host: this.addressOf(endpoint),
          port: this.options.sshPort ?? 22,
          user: this.sshUser,
          hostKeys: hostKeys[i] ?? [],
        }));
        return { name: target.nodeId, backend: 'tpu-api', workers };
      }
      if (state === 'PREEMPTED' || state === 'TERMINATED') {
        throw failure('TpuPreempted', `${name} is ${state} before the stage started${node.health ? ` (health ${String(node.health)})` : ''}; it must be deleted and recreated`, true, { node: name, zone, state });
      }
      if (!WAIT_STATES.has(state) && state !== 'READY') {
        throw failure('TpuNodeLost', `${name} is ${state}, not becoming READY`, true, { node: name, zone, state });
      }
      heartbeat({ node: name, ...(operation !== undefined ? { operation } : {}) } satisfies TpuAcquireProgress);
      await waitOrTimeout(`state ${state}, ${endpoints.length}/${expected} endpoints`);
    }
  }

  async release(request: ComputeRequest): Promise<ReleaseResult> {
    const target = this.validate(request);
    let released = false;
    for (const zone of target.zones) {
      const name = `projects/${target.project}/locations/${zone}/nodes/${target.nodeId}`;
      if (await this.deleteNode(name, zone)) released = true;
    }
    return { name: target.nodeId, released };
  }

  // ---- internals ---------------------------------------------------------------------

  /** Every check that can be made without the API; throws TpuInvalidConfig (non-retryable). */
  private validate(request: ComputeRequest): Target {
    const compute = request.compute;
    if (compute.backend !== 'tpu-api') throw invalid(`the tpu-api provider was asked for backend ${compute.backend}`);
    if (!PROJECT.test(this.options.project)) throw invalid(`"${this.options.project}" is not a Google Cloud project id (gcp.project)`);
    if (!(V6E_ACCELERATORS as readonly string[]).includes(compute.accelerator)) {
      throw invalid(`unknown accelerator "${String(compute.accelerator)}"; one of ${V6E_ACCELERATORS.join(', ')}`);
    }
    if (!Array.isArray(compute.zones) || compute.zones.length === 0) throw invalid('no zone given for the TPU (compute.zones is empty)');
    const badZone = compute.zones.find((z) => !ZONE.test(z));
    if (badZone !== undefined) throw invalid(`"${badZone}" is not a zone name like us-east5-b`);
    if (!Number.isInteger(request.attempt) || request.attempt < 1) throw invalid(`attempt must be a positive integer, got ${request.attempt}`);
    const runtimeVersion = compute.runtimeVersion;
    if (typeof runtimeVersion !== 'string' || runtimeVersion === '') throw invalid('runtimeVersion is empty');
    return {
      project: this.options.project,
      zones: compute.zones,
      nodeId: computeName(request.runId, request.stage, request.attempt),
      accelerator: compute.accelerator,
      runtimeVersion,
      spot: compute.spot === true,
    };
  }

  private nodeSpec(request: ComputeRequest, target: Target): Record<string, unknown> {
    const metadata: Record<string, string> = { 'recogdrive-run': request.runId, 'recogdrive-stage': request.stage };
    if (this.options.sshPublicKey !== undefined) metadata['ssh-keys'] = `${this.sshUser}:${this.options.sshPublicKey.trim()} ${this.sshUser}`;
    return {
      description: `recogdrive ${request.runId} ${request.stage} attempt ${request.attempt}`,
      acceleratorType: target.accelerator,
      runtimeVersion: target.runtimeVersion,
      labels: {
        run: labelValue(request.runId),
        'run-hash': shortHash(request.runId),
        stage: STAGE_SLUGS[request.stage],
        attempt: String(request.attempt),
        owner: LEASE_OWNER,
      },
      metadata,
      schedulingConfig: target.spot ? { spot: true } : {},
      networkConfig: { enableExternalIps: this.options.externalIps ?? true },
    };
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

  /** True when this call deleted the node; false when it was not there. */
  private async deleteNode(name: string, zone: string): Promise<boolean> {
    const attempts = this.options.deleteAttempts ?? 4;
    let delay = this.options.deleteRetryDelayMs ?? 2000;
    let started = false;
    let lastError: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const [op] = await this.client.deleteNode({ name });
        started = true;
        await this.waitForDelete(op.name ?? '', name);
        return true;
      } catch (error) {
        if (codeOf(error) === grpc.status.NOT_FOUND) return started;
        const classified = classifyTpuError(error, { node: name, zone, during: 'deleting' });
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

  private async waitForDelete(operation: string, name: string): Promise<void> {
    const deadline = Date.now() + (this.options.deleteTimeoutMs ?? 10 * 60_000);
    for (;;) {
      const progress = await this.client.checkDeleteNodeProgress(operation);
      if (progress.done) {
        if (progress.error) throw progress.error;
        return;
      }
      if (Date.now() >= deadline) throw failure('TpuInternal', `delete of ${name} still running after the deadline`, false, { node: name, operation });
      await sleep(Math.min(this.pollIntervalMs, 5000));
    }
  }
}
