/**
 * A running stage's TPU as the Cloud TPU API shows it → LeaseHealth. Pure: the provider reads the
 * node (and for queued provisioning its queued resource) and hands them here.
 *
 * Order: the queued resource SUSPENDED/SUSPENDING by the SERVICE is a preemption whatever the
 * node says (the node may already be gone); then the node (gone = deleted under the run; states
 * through classifyNodeState, where a spot node TERMINATED is a preemption); then anything else
 * wrong with the queued resource (deleted, suspended by a user, failed) is maintenance.
 */
import { classifyNodeState, classifyQueuedResourceState } from '../../pipeline/compute-failures.ts';
import type { LeaseHealth } from '../types.ts';
import { nodeState } from './tpu-common.ts';
import { queuedState } from './tpu-queued.ts';

type NodeView = { state?: unknown; health?: unknown } | 'missing';
type QueuedView = Parameters<typeof queuedState>[0] | 'missing';

function healthName(health: unknown): string | undefined {
  if (typeof health === 'number') return ({ 1: 'HEALTHY', 3: 'TIMEOUT', 4: 'UNHEALTHY_TENSORFLOW', 5: 'UNHEALTHY_MAINTENANCE' } as Record<number, string>)[health];
  return typeof health === 'string' && health !== '' && health !== 'HEALTH_UNSPECIFIED' ? health : undefined;
}

export function judgeHealth(
  names: { node: string; queuedResource?: string },
  node: NodeView,
  queued: QueuedView | undefined,
  spot: boolean,
): LeaseHealth {
  const qs = queued === undefined || queued === 'missing' ? undefined : queuedState(queued);
  const qrClass = qs === undefined ? undefined : classifyQueuedResourceState(qs.state, qs.initiator, qs.error === undefined ? undefined : { message: qs.error.message });
  if (qs !== undefined && qrClass === 'preemption') {
    return { state: 'lost', failureClass: 'preemption', detail: `Queued resource ${names.queuedResource} is ${qs.state}, initiated by the service: the spot TPU was taken back.` };
  }

  if (node === 'missing') return { state: 'lost', failureClass: 'maintenance', detail: `TPU node ${names.node} is gone: it was deleted under the run.` };
  const state = nodeState(node.state);
  const health = healthName(node.health);
  const nodeClass = classifyNodeState(state, health, { spot });
  if (nodeClass !== undefined) {
    const what = `TPU node ${names.node} is ${state}${health !== undefined && health !== 'HEALTHY' ? ` with health ${health}` : ''}`;
    return nodeClass === 'preemption'
      ? { state: 'lost', failureClass: 'preemption', detail: `${what}: the spot TPU was taken back.` }
      : { state: 'lost', failureClass: 'maintenance', detail: `${what}: the machine the stage ran on is gone or being rebuilt.` };
  }

  if (queued === 'missing') return { state: 'lost', failureClass: 'maintenance', detail: `Queued resource ${names.queuedResource} is gone: it was deleted under the run.` };
  if (qs !== undefined && qrClass !== undefined) {
    return { state: 'lost', failureClass: 'maintenance', detail: `Queued resource ${names.queuedResource} is ${qs.state} (initiated by ${qs.initiator}): its TPU is being taken away.` };
  }
  return { state: 'ok' };
}
