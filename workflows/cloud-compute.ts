/**
 * Workflow side of cloud compute (tpu-api, compute-engine): which zone and capacity type the
 * next try provisions in, and what a compute failure means for the stage. The decisions are
 * pipeline/zone-failover.ts's; this turns activity failures into its inputs. Deterministic.
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { CloudPlacement, ComputeLease } from '../activities/types.ts';
import { COMPUTE_FAILURES, computeFailureClassOfType, describeComputeError, type ClassifiedComputeError } from '../pipeline/compute-failures.ts';
import { gpuUsageOf, type ComputeUsage } from '../pipeline/cost.ts';
import { isCloudBackend, type CloudBackend, type ComputeSpec } from '../pipeline/input.ts';
import type { FailoverPolicy, FailoverState } from '../pipeline/zone-failover.ts';

export type CloudComputeSpec = Extract<ComputeSpec, { backend: CloudBackend }>;

export function isCloudCompute(compute: ComputeSpec): compute is CloudComputeSpec {
  return isCloudBackend(compute.backend);
}

export function failoverPolicyOf(compute: CloudComputeSpec): FailoverPolicy {
  const f = compute.failover;
  return {
    maxAttemptsPerZone: f.maxAttemptsPerZone,
    maxCapacityRounds: f.maxCapacityRounds,
    backoff: { initialMs: f.backoff, factor: 2, maxMs: Math.max(f.backoff, f.backoffMax) },
    maxNodeLosses: f.maxNodeLosses,
    ...(f.spotFallbackAfterPreemptions === undefined ? {} : { spotFallbackAfterPreemptions: f.spotFallbackAfterPreemptions }),
  };
}

export function placementOf(state: FailoverState): CloudPlacement {
  return { zone: state.zone, spot: state.spot };
}

/** The typed failure inside an activity failure (or the failure itself). */
export function applicationFailureOf(error: unknown): ApplicationFailure | undefined {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure) return error.cause;
  return undefined;
}

/** A compute failure as the failover policy reads it; undefined for other failures. Quota wording tells its scope. */
export function classifyFailure(error: unknown): ClassifiedComputeError | undefined {
  const failure = applicationFailureOf(error);
  const failureClass = computeFailureClassOfType(failure?.type ?? undefined);
  if (failure === undefined || failureClass === undefined) return undefined;
  if (failureClass !== 'quota') return { failureClass };
  const { quotaScope, quotaLimitZero } = describeComputeError({ code: 'RESOURCE_EXHAUSTED', message: failure.message });
  return { failureClass, ...(quotaScope === undefined ? {} : { quotaScope }), ...(quotaLimitZero === undefined ? {} : { quotaLimitZero }) };
}

/** The machine was taken away (preemption, maintenance): a new one is provisioned, the stage's retry budget untouched. */
export function isNodeLoss(classified: ClassifiedComputeError | undefined): boolean {
  return classified !== undefined && COMPUTE_FAILURES[classified.failureClass].reprovision;
}

/** The cost record's entry for a lease, opened when it was handed to the stage. */
export function usageOf(lease: ComputeLease, attempt: number, acquiredAt: number): ComputeUsage {
  return {
    name: lease.name,
    backend: lease.backend,
    attempt,
    chips: lease.cloud?.chips ?? 0,
    spot: lease.cloud?.spot ?? false,
    ...gpuUsageOf(lease.cloud),
    acquiredAt,
    ...(lease.cloud === undefined ? {} : { zone: lease.cloud.zone, machine: lease.cloud.machine }),
  };
}

/** How an attempt's time on its machine ended. */
export function usageOutcome(error: unknown, cancelled: boolean): NonNullable<ComputeUsage['outcome']> {
  if (error === undefined) return 'succeeded';
  if (cancelled) return 'cancelled';
  const classified = classifyFailure(error);
  if (classified?.failureClass === 'preemption') return 'preempted';
  if (classified?.failureClass === 'maintenance') return 'maintenance';
  return 'failed';
}
