/** The workflow's reading of compute failures, the cost record, and how status shows them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { tpuHoursOf, upsertUsage, type ComputeUsage } from '../../pipeline/cost.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { classifyFailure, failoverPolicyOf, isNodeLoss, usageOf, usageOutcome } from '../../workflows/cloud-compute.ts';
import { formatStatus } from '../../workers/format.ts';

const activityFailure = (type: string, message: string) =>
  new ActivityFailure('activity failed', 'acquireCompute', '1', RetryState.NON_RETRYABLE_FAILURE, 'worker', ApplicationFailure.create({ type, message, nonRetryable: true }));

test('compute failures inside activity failures are classified for the failover; quota wording gives its scope and a limit of 0', () => {
  assert.deepEqual(classifyFailure(activityFailure('TpuStockout', 'no more capacity')), { failureClass: 'stockout' });
  assert.deepEqual(classifyFailure(activityFailure('TpuQuotaExceeded', "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region us-east5.")), {
    failureClass: 'quota',
    quotaScope: 'region',
    quotaLimitZero: true,
  });
  assert.equal(classifyFailure(activityFailure('StageCodeError', 'exit 1')), undefined, 'not a compute failure');
  assert.equal(classifyFailure(new Error('plain')), undefined);
  assert.ok(isNodeLoss(classifyFailure(activityFailure('TpuPreempted', 'PREEMPTED'))));
  assert.ok(isNodeLoss(classifyFailure(activityFailure('TpuNodeLost', 'gone'))), 'alias of maintenance');
  assert.ok(!isNodeLoss(classifyFailure(activityFailure('TpuStockout', 'x'))));
});

test('an attempt\'s machine time ends as succeeded, cancelled, preempted, maintenance or failed', () => {
  assert.equal(usageOutcome(undefined, false), 'succeeded');
  assert.equal(usageOutcome(new Error('x'), true), 'cancelled');
  assert.equal(usageOutcome(activityFailure('TpuPreempted', 'x'), false), 'preempted');
  assert.equal(usageOutcome(activityFailure('TpuMaintenance', 'x'), false), 'maintenance');
  assert.equal(usageOutcome(activityFailure('StageCodeError', 'x'), false), 'failed');
});

test('the failover policy comes from the compute input: back-off doubles from backoff up to backoffMax', () => {
  const compute = ComputeSpec.parse({ backend: 'tpu-api', accelerator: 'v6e-8', zones: ['us-east5-b'], failover: { backoff: '10s', backoffMax: '1 minute', spotFallbackAfterPreemptions: 2 } });
  assert.ok(compute.backend === 'tpu-api');
  assert.deepEqual(failoverPolicyOf(compute), {
    maxAttemptsPerZone: 2,
    maxCapacityRounds: 6,
    backoff: { initialMs: 10_000, factor: 2, maxMs: 60_000 },
    maxNodeLosses: 20,
    spotFallbackAfterPreemptions: 2,
  });
});

test('the cost record: TPU-hours are chips × held time, an unreleased machine counts up to now, an update replaces its entry', () => {
  const lease = { name: 'rd-x-stage2-1', backend: 'tpu-api' as const, workers: [], cloud: { project: 'p-12345', zone: 'us-east5-b', spot: true, machine: 'v6e-8', chips: 8 } };
  const opened = usageOf(lease, 1, 0);
  assert.deepEqual(opened, { name: 'rd-x-stage2-1', backend: 'tpu-api', attempt: 1, chips: 8, spot: true, acquiredAt: 0, zone: 'us-east5-b', machine: 'v6e-8' });
  assert.equal(tpuHoursOf([opened], 1_800_000), 4, 'held for half an hour so far');
  const closed: ComputeUsage = { ...opened, releasedAt: 3_600_000, outcome: 'preempted' };
  const records = upsertUsage([opened], closed);
  assert.deepEqual(records, [closed]);
  assert.equal(tpuHoursOf(records, 99 * 3_600_000), 8);
  assert.equal(tpuHoursOf([{ ...closed, chips: 0 }], 0), 0, 'a CPU VM costs no TPU-hours');

  const text = formatStatus({
    runId: 'x', experiment: 'e', state: 'running', startedAt: '2026-01-01T00:00:00Z',
    stages: [{ stage: 'stage2', decision: 'RUN', state: 'running', attempt: 2, compute: records, computeEvent: 'preemption 1 in us-east5-b: new node in us-east5-b' }],
  });
  assert.match(text, /compute: preemption 1 in us-east5-b/);
  assert.match(text, /machines: rd-x-stage2-1 us-east5-b v6e-8 spot preempted — 8 TPU-hours/);
});
