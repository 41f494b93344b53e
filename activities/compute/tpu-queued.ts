/**
 * Queued provisioning for the tpu-api backend (compute.provisioning 'queued'): one queued
 * resource per attempt, named like its node, that waits in Google's queue for capacity.
 *
 * Create: CreateQueuedResource with a requestId derived from the resource name (a repeated
 * request is recognised by the API), tpu.nodeSpec [{ parent, nodeId, node }], the `spot` tier for
 * spot placements (no tier = on-demand; `guaranteed` only adds a minimum duration we do not
 * need), and a queueing policy that fails the request when no capacity came within
 * `validForMs` — that FAILED state is what lets the workflow's zone failover move on.
 * ALREADY_EXISTS adopts the resource of an earlier try.
 *
 * Wait: the create operation (its error is where quota/config problems show) and the resource's
 * state until ACTIVE; ACCEPTED, WAITING_FOR_RESOURCES, PROVISIONING (and CREATING) are waits.
 * FAILED, SUSPENDED/SUSPENDING and DELETING are classified with pipeline/compute-failures.ts; a
 * FAILED resource is deleted first, so another try in this zone can queue again.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { classifyQueuedResourceState } from '../../pipeline/compute-failures.ts';
import { classFailure, classifyTpuError, codeOf, messageOf, type TpuClient } from './tpu-common.ts';

/** google.cloud.tpu.v2.QueuedResourceState.State (unary answers carry names, LRO results numbers). */
const QR_STATES: Record<number, string> = {
  0: 'STATE_UNSPECIFIED', 1: 'CREATING', 2: 'ACCEPTED', 3: 'PROVISIONING', 4: 'FAILED', 5: 'DELETING', 6: 'ACTIVE', 7: 'SUSPENDING', 8: 'SUSPENDED', 9: 'WAITING_FOR_RESOURCES',
};
const QR_INITIATORS: Record<number, string> = { 0: 'STATE_INITIATOR_UNSPECIFIED', 1: 'USER', 2: 'SERVICE' };

function enumName(value: unknown, names: Record<number, string>, fallback: string): string {
  if (typeof value === 'number') return names[value] ?? String(value);
  return typeof value === 'string' && value !== '' ? value : fallback;
}

/** What a queued resource's state says, normalised. */
export interface QueuedState {
  state: string;
  initiator: string;
  error?: { code?: number; message: string };
}

export function queuedState(resource: { state?: { state?: unknown; stateInitiator?: unknown; failedData?: { error?: { code?: unknown; message?: unknown } | null } | null } | null }): QueuedState {
  const s = resource.state ?? {};
  const error = s.failedData?.error;
  return {
    state: enumName(s.state, QR_STATES, 'STATE_UNSPECIFIED'),
    initiator: enumName(s.stateInitiator, QR_INITIATORS, 'STATE_INITIATOR_UNSPECIFIED'),
    ...(error !== undefined && error !== null && (error.message || error.code)
      ? { error: { ...(typeof error.code === 'number' ? { code: error.code } : {}), message: typeof error.message === 'string' ? error.message : '' } }
      : {}),
  };
}

/** A UUID (version-5 shaped) from the resource name: the same attempt sends the same requestId. */
export function queuedRequestId(name: string): string {
  const h = createHash('sha1').update(`recogdrive:${name}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface QueuedCreate {
  parent: string;
  /** Queued resource id = node id. */
  id: string;
  node: Record<string, unknown>;
  spot: boolean;
  /** queueingPolicy.validUntilDuration; undefined: wait without limit. */
  validForMs?: number;
}

/**
 * CreateQueuedResource; returns the operation name, or undefined when the resource already exists
 * (adopted). Other errors are classified.
 */
export async function createQueued(client: TpuClient, create: QueuedCreate, zone: string): Promise<string | undefined> {
  const name = `${create.parent}/queuedResources/${create.id}`;
  const queuedResource: Record<string, unknown> = {
    tpu: { nodeSpec: [{ parent: create.parent, nodeId: create.id, node: create.node }] },
    ...(create.spot ? { spot: {} } : {}),
    ...(create.validForMs !== undefined ? { queueingPolicy: { validUntilDuration: { seconds: Math.ceil(create.validForMs / 1000) } } } : {}),
  };
  try {
    const [op] = await client.createQueuedResource({ parent: create.parent, queuedResourceId: create.id, requestId: queuedRequestId(name), queuedResource });
    return op.name ?? undefined;
  } catch (error) {
    if (codeOf(error) === grpc.status.ALREADY_EXISTS) return undefined;
    throw classifyTpuError(error, { node: name, zone, during: 'creating the queued resource' });
  }
}

export interface QueuedWait {
  client: TpuClient;
  /** The queued resource's full name. */
  name: string;
  zone: string;
  /** The create operation, when this try (or the one it resumes) started it. */
  operation?: string;
  /** Called on every poll that finds the resource still waiting. */
  beat: (state: string) => void;
  /** Sleeps one poll interval, or throws when the acquire's deadline has passed. */
  waitOrTimeout: (phase: string) => Promise<void>;
  /** Deletes a FAILED resource (best effort) before its failure is thrown. */
  dropFailed: () => Promise<void>;
}

/** Returns once the queued resource is ACTIVE; throws typed failures otherwise. */
export async function waitUntilActive(w: QueuedWait): Promise<void> {
  const where = (during: string): { node: string; zone: string; during: string } => ({ node: w.name, zone: w.zone, during });
  let operation = w.operation;
  for (;;) {
    if (operation !== undefined) {
      let progress;
      try {
        progress = await w.client.checkCreateQueuedResourceProgress(operation);
      } catch (error) {
        // an expired operation: the resource itself tells the rest.
        if (codeOf(error) !== grpc.status.NOT_FOUND) throw classifyTpuError(error, where('polling the create operation of'));
      }
      if (progress?.done && progress.error) throw classifyTpuError(progress.error, where('creating'));
      if (progress === undefined || progress.done) operation = undefined;
    }

    let resource;
    try {
      [resource] = await w.client.getQueuedResource({ name: w.name });
    } catch (error) {
      if (codeOf(error) !== grpc.status.NOT_FOUND) throw classifyTpuError(error, where('reading'));
      // not visible yet while its create operation runs; gone after that = deleted under us.
      if (operation === undefined) {
        throw classFailure('maintenance', w.zone, `queued resource ${w.name} disappeared while waiting for capacity (deleted); the attempt needs a new one`, { queuedResource: w.name });
      }
      w.beat('not yet visible');
      await w.waitOrTimeout('queued resource not yet visible');
      continue;
    }

    const qs = queuedState(resource);
    if (qs.state === 'ACTIVE') return;
    const failureClass = classifyQueuedResourceState(qs.state, qs.initiator, qs.error === undefined ? undefined : { message: qs.error.message, ...(qs.error.code !== undefined ? { code: qs.error.code } : {}) });
    if (failureClass !== undefined) {
      const details = { queuedResource: w.name, state: qs.state, initiator: qs.initiator, ...(qs.error !== undefined ? { error: qs.error } : {}) };
      if (qs.state === 'FAILED') {
        await w.dropFailed();
        const why = qs.error !== undefined ? messageOf(qs.error) : 'no capacity before its valid-until time';
        throw classFailure(failureClass, w.zone, `queued resource ${w.name} FAILED (${why}); it was deleted`, details);
      }
      throw classFailure(failureClass, w.zone, `queued resource ${w.name} is ${qs.state} (initiated by ${qs.initiator}) before the stage started`, details);
    }
    w.beat(qs.state);
    await w.waitOrTimeout(`queued resource ${qs.state}`);
  }
}
