/**
 * What the parts of the tpu-api backend share (tpu-api.ts, tpu-queued.ts, tpu-janitor.ts): the
 * client type, Cloud TPU errors → typed ApplicationFailures, enum and timestamp normalisation,
 * and deletes that retry by themselves.
 */
import * as grpc from '@grpc/grpc-js';
import type { v2 } from '@google-cloud/tpu';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { computeFailure, type ComputeFailureClass } from '../../pipeline/compute-failures.ts';

export type TpuClient = InstanceType<typeof v2.TpuClient>;
export type TpuClientOptions = NonNullable<ConstructorParameters<typeof v2.TpuClient>[0]>;

export { PROJECT_ID, ZONE_NAME, invalidConfig as invalid } from './cloud-request.ts';

/** Node.State numbers (the Node inside an LRO result is decoded with numeric enums). */
const NODE_STATES: Record<number, string> = {
  0: 'STATE_UNSPECIFIED', 1: 'CREATING', 2: 'READY', 3: 'RESTARTING', 4: 'REIMAGING', 5: 'DELETING', 6: 'REPAIRING',
  8: 'STOPPED', 9: 'STOPPING', 10: 'STARTING', 11: 'PREEMPTED', 12: 'TERMINATED', 13: 'HIDING', 14: 'HIDDEN', 15: 'UNHIDING', 16: 'UNKNOWN',
};

export function nodeState(state: unknown): string {
  if (typeof state === 'number') return NODE_STATES[state] ?? `STATE_${state}`;
  return typeof state === 'string' && state !== '' ? state : 'STATE_UNSPECIFIED';
}

/** TPU chips of a v6e accelerator type (v6e-16 → 16). */
export function v6eChips(accelerator: string): number {
  return Number(/^v6e-(\d+)$/.exec(accelerator)?.[1] ?? NaN);
}

/** Worker VMs of a v6e slice: v6e-1/4/8 are one host; larger slices have 4 chips per host. */
export function v6eWorkerCount(accelerator: string): number {
  const chips = v6eChips(accelerator);
  return chips <= 8 ? 1 : chips / 4;
}

/** gRPC status code of a gax error or an operation's error ({ code, message }). */
export function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function messageOf(error: unknown): string {
  const e = error as { details?: unknown; message?: unknown } | null | undefined;
  if (typeof e?.details === 'string' && e.details !== '') return e.details;
  return typeof e?.message === 'string' ? e.message : String(error);
}

export function failure(type: string, message: string, nonRetryable: boolean, details: Record<string, unknown>, cause?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable, details: [details], ...(cause instanceof Error ? { cause } : {}) });
}

/** A non-retryable failure of a class from pipeline/compute-failures.ts (type and hint from there). */
export function classFailure(failureClass: ComputeFailureClass, zone: string, detail: string, details: Record<string, unknown>): ApplicationFailure {
  const { type, message } = computeFailure(failureClass, zone, detail);
  return failure(type, message, true, { ...details, failureClass });
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

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The current activity's heartbeat details from its previous try; undefined outside an activity. */
export function activityResumeDetails(): unknown {
  try {
    return Context.current().info.heartbeatDetails;
  } catch {
    return undefined;
  }
}

export function defaultNote(message: string): void {
  try {
    Context.current().log.warn(message);
  } catch {
    console.warn(message);
  }
}

/** A google.protobuf.Timestamp as gax decodes it (seconds: number, string or Long) → ISO string; '' when absent. */
export function isoTime(value: unknown): string {
  const t = value as { seconds?: unknown; nanos?: unknown } | null | undefined;
  if (t === null || t === undefined || t.seconds === undefined || t.seconds === null) return '';
  const seconds = Number(String(t.seconds));
  if (!Number.isFinite(seconds)) return '';
  return new Date(seconds * 1000 + Math.floor(Number(t.nanos ?? 0) / 1_000_000)).toISOString();
}

/** Resource names of the Cloud TPU API. */
export const locationName = (project: string, zone: string): string => `projects/${project}/locations/${zone}`;
export const nodeName = (project: string, zone: string, id: string): string => `${locationName(project, zone)}/nodes/${id}`;
export const queuedResourceName = (project: string, zone: string, id: string): string => `${locationName(project, zone)}/queuedResources/${id}`;

const RESOURCE = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z])\/(nodes|queuedResources)\/([a-z]([-a-z0-9]{0,61}[a-z0-9])?)$/;

export function parseResourceName(name: string): { project: string; zone: string; kind: 'node' | 'queued-resource'; id: string } | undefined {
  const match = RESOURCE.exec(name);
  if (match === null) return undefined;
  return { project: match[1]!, zone: match[2]!, kind: match[3] === 'nodes' ? 'node' : 'queued-resource', id: match[4]! };
}

export interface DeleteSettings {
  client: TpuClient;
  /** Delete calls per resource before the error goes to Temporal's retry. */
  attempts: number;
  /** First back-off between delete calls (doubles). */
  retryDelayMs: number;
  /** Longest wait for a delete operation. */
  timeoutMs: number;
  /** Between polls of a delete operation. */
  pollIntervalMs: number;
}

/**
 * Deletes a node or a queued resource (with force: its node goes too) and waits for the
 * operation. True when this call deleted it; false when it was not there. Transient failures are
 * retried here (`attempts`), then thrown as retryable TpuInternal.
 */
export async function deleteResource(settings: DeleteSettings, kind: 'node' | 'queued-resource', name: string, zone: string): Promise<boolean> {
  const { client } = settings;
  let delay = settings.retryDelayMs;
  let started = false;
  let lastError: unknown;
  for (let attempt = 1; attempt <= settings.attempts; attempt++) {
    try {
      const [op] = kind === 'node' ? await client.deleteNode({ name }) : await client.deleteQueuedResource({ name, force: true });
      started = true;
      await waitForDelete(settings, kind, op.name ?? '', name);
      return true;
    } catch (error) {
      // NOT_FOUND after our own call started: that call deleted it.
      if (codeOf(error) === grpc.status.NOT_FOUND) return started;
      const classified = classifyTpuError(error, { node: name, zone, during: 'deleting' });
      if (classified.nonRetryable) throw classified;
      lastError = classified;
    }
    if (attempt < settings.attempts) {
      await sleep(delay);
      delay *= 2;
    }
  }
  throw lastError;
}

async function waitForDelete(settings: DeleteSettings, kind: 'node' | 'queued-resource', operation: string, name: string): Promise<void> {
  const deadline = Date.now() + settings.timeoutMs;
  for (;;) {
    const progress = kind === 'node' ? await settings.client.checkDeleteNodeProgress(operation) : await settings.client.checkDeleteQueuedResourceProgress(operation);
    if (progress.done) {
      if (progress.error) throw progress.error;
      return;
    }
    if (Date.now() >= deadline) throw failure('TpuInternal', `delete of ${name} still running after the deadline`, false, { node: name, operation });
    await sleep(Math.min(settings.pollIntervalMs, 5000));
  }
}
