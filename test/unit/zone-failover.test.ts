import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMPUTE_FAILURES, describeComputeError, type ComputeFailureClass } from '../../pipeline/compute-failures.ts';
import {
  backoffMs,
  DEFAULT_FAILOVER_POLICY,
  nextStep,
  orderZones,
  regionOfZone,
  startFailover,
  type FailoverPolicy,
  type FailoverState,
  type FailoverStep,
} from '../../pipeline/zone-failover.ts';

const policy: FailoverPolicy = {
  maxAttemptsPerZone: 2,
  backoff: { initialMs: 1_000, factor: 2, maxMs: 3_000 },
  maxCapacityRounds: 3,
};

/** Feeds failures one after the other, returning every step. */
function run(state: FailoverState, failures: Array<Parameters<typeof nextStep>[1]>, p: FailoverPolicy = policy): FailoverStep[] {
  const steps: FailoverStep[] = [];
  let s = state;
  for (const f of failures) {
    const step = nextStep(s, f, p);
    steps.push(step);
    s = step.state;
  }
  return steps;
}
const brief = (steps: FailoverStep[]) => steps.map((s) => [s.action, s.zone, s.backoffMs]);

test('orderZones: zones in the bucket region first, the user order kept otherwise (stable)', () => {
  const zones = ['europe-west4-a', 'us-east5-b', 'us-central1-a', 'us-east5-a'];
  assert.deepEqual(orderZones(zones, 'US-EAST5'), ['us-east5-b', 'us-east5-a', 'europe-west4-a', 'us-central1-a']);
  assert.deepEqual(orderZones(zones, 'us-east5'), ['us-east5-b', 'us-east5-a', 'europe-west4-a', 'us-central1-a']);
  assert.deepEqual(orderZones(zones), zones);
  assert.deepEqual(orderZones(zones, 'asia-southeast1'), zones);
  // Multi-region: zones on that continent first; dual-region: its member regions first.
  assert.deepEqual(orderZones(zones, 'US'), ['us-east5-b', 'us-central1-a', 'us-east5-a', 'europe-west4-a']);
  assert.deepEqual(orderZones(zones, 'EUR4'), ['europe-west4-a', 'us-east5-b', 'us-central1-a', 'us-east5-a']);
  assert.deepEqual(orderZones(['us-east5-b', 'us-east5-b', 'us-east5-a']), ['us-east5-b', 'us-east5-a']);
  assert.equal(regionOfZone('us-east5-b'), 'us-east5');
  assert.deepEqual(startFailover({ zones, spot: true, bucketRegion: 'US-EAST5' }).zone, 'us-east5-b');
});

test('stockout in zone A → next zone B at once', () => {
  const [step] = run(startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: false }), ['stockout']);
  assert.equal(step?.action, 'next-zone');
  assert.equal(step?.zone, 'us-east5-a');
  assert.equal(step?.backoffMs, 0);
  assert.equal(step?.spot, false);
  assert.deepEqual(step?.state.attemptsPerZone, { 'us-east5-b': 1 });
});

test('stockout everywhere → rounds over the list with growing (capped) back-off, then give-up', () => {
  const start = startFailover({ zones: ['a1-x-a', 'b1-x-b', 'c1-x-c'], spot: true });
  const steps = run(start, Array(9).fill('stockout'));
  assert.deepEqual(brief(steps), [
    ['next-zone', 'b1-x-b', 0],
    ['next-zone', 'c1-x-c', 0],
    ['next-zone', 'a1-x-a', 1_000], // round 2
    ['next-zone', 'b1-x-b', 0],
    ['next-zone', 'c1-x-c', 0],
    ['next-zone', 'a1-x-a', 2_000], // round 3
    ['next-zone', 'b1-x-b', 0],
    ['next-zone', 'c1-x-c', 0],
    ['give-up', 'c1-x-c', 0],
  ]);
  assert.match(steps[8]?.reason ?? '', /no capacity in any zone after 3 round/);
  assert.deepEqual(steps[8]?.state.attemptsPerZone, { 'a1-x-a': 3, 'b1-x-b': 3, 'c1-x-c': 3 });
  // The cap: factor 2 from 1 s reaches 3 s at most.
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => backoffMs(n, policy.backoff)), [1_000, 2_000, 3_000, 3_000, 3_000]);
});

test('a single zone is retried in place after back-off between rounds', () => {
  const steps = run(startFailover({ zones: ['us-east5-b'], spot: false }), ['reservation', 'reservation', 'reservation']);
  assert.deepEqual(brief(steps), [
    ['retry-same-zone', 'us-east5-b', 1_000],
    ['retry-same-zone', 'us-east5-b', 2_000],
    ['give-up', 'us-east5-b', 0],
  ]);
});

// Decision: Cloud TPU quotas are counted per project *per region* (metric
// 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI', research notes §2), so a quota error passes
// over every zone of that region for the rest of the round and goes to the next region; a zonal
// quota skips only the zone; a limit of 0 cannot be cured by waiting, so those zones are dropped.
test('quota → next zone in another region (the quota is per region); zonal quota → next zone', () => {
  const zones = ['us-east5-b', 'us-east5-a', 'us-central1-a'];
  const regional = describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 16 in region us-east5." });
  const [step] = run(startFailover({ zones, spot: true }), [regional]);
  assert.equal(step?.action, 'next-zone');
  assert.equal(step?.zone, 'us-central1-a');
  assert.deepEqual(step?.state.skippedInRound, ['us-east5-b', 'us-east5-a']);
  // Regional quota may be freed (other jobs end): the next round tries that region again, after back-off.
  const [again] = run(step!.state, ['stockout']);
  assert.deepEqual(brief([again!]), [['next-zone', 'us-east5-b', 1_000]]);

  const zonal = describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPerProjectPerZone' has been exceeded. Limit: 8 in zone us-east5-b." });
  assert.equal(run(startFailover({ zones, spot: true }), [zonal])[0]?.zone, 'us-east5-a');
  // A bare class without scope is treated as regional.
  assert.equal(run(startFailover({ zones, spot: true }), ['quota'])[0]?.zone, 'us-central1-a');
});

test('quota limit 0 drops the region for good; limit 0 everywhere gives up', () => {
  const zones = ['us-east5-b', 'us-east5-a', 'us-central1-a'];
  const zero = describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region us-east5." });
  const steps = run(startFailover({ zones, spot: true }), [zero, 'stockout', 'stockout']);
  assert.deepEqual(brief(steps), [
    ['next-zone', 'us-central1-a', 0],
    ['retry-same-zone', 'us-central1-a', 1_000], // round 2 skips the excluded region
    ['retry-same-zone', 'us-central1-a', 2_000],
  ]);
  const global = describeComputeError({ code: 403, reason: 'QUOTA_EXCEEDED', message: "Quota 'TPUS' exceeded. Limit: 0.0 globally." });
  const [end] = run(startFailover({ zones, spot: true }), [global]);
  assert.equal(end?.action, 'give-up');
  assert.match(end?.reason ?? '', /quota limit 0/);
});

test('internal errors: retried in the same zone with back-off, then the next zone (opaque stockout)', () => {
  const steps = run(startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: false }), ['internal', 'internal', 'internal']);
  assert.deepEqual(brief(steps), [
    ['retry-same-zone', 'us-east5-b', 1_000],
    ['next-zone', 'us-east5-a', 0],
    ['retry-same-zone', 'us-east5-a', 1_000],
  ]);
  assert.equal(COMPUTE_FAILURES.internal.failover, false);
});

test('bad input and invalid config give up at once, whatever budget is left', () => {
  for (const cls of ['bad-input', 'invalid-config'] as const) {
    const start = startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: true });
    const step = nextStep(start, cls, DEFAULT_FAILOVER_POLICY);
    assert.equal(step.action, 'give-up', cls);
    assert.equal(step.zone, 'us-east5-b');
    assert.deepEqual(step.state, start, 'nothing is counted');
  }
});

test('preemption → a new node from the first zone, a fresh capacity budget, counted as a preemption', () => {
  // Stocked out in A, running in B when preempted.
  const steps = run(startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: true }), ['stockout', 'preemption']);
  assert.deepEqual(brief(steps), [
    ['next-zone', 'us-east5-a', 0],
    ['reprovision', 'us-east5-b', 0],
  ]);
  const s = steps[1]!.state;
  assert.equal(s.preemptions, 1);
  assert.equal(s.round, 0);
  assert.deepEqual(s.attemptsInRound, {});
  assert.equal(s.spot, true);
});

test('preemptions never consume the code-error budget', () => {
  // The stage's budget is consumed only by failures whose rule says so; simulate the stage loop.
  let codeErrorBudget = 3;
  let state = startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: true });
  const failures: ComputeFailureClass[] = ['preemption', 'stockout', 'preemption', 'maintenance', 'internal', 'preemption', 'quota', 'preemption', 'preemption', 'preemption'];
  for (const f of failures) {
    if (COMPUTE_FAILURES[f].countsAgainstCodeErrorBudget) codeErrorBudget -= 1;
    const step = nextStep(state, f, policy);
    assert.notEqual(step.action, 'give-up', f);
    state = step.state;
  }
  assert.equal(codeErrorBudget, 3);
  assert.equal(state.preemptions, 6);
  assert.equal(state.maintenanceEvents, 1);
});

test('after K preemptions a spot stage falls back to on-demand, only when configured', () => {
  const spotStart = startFailover({ zones: ['us-east5-b', 'us-east5-a'], spot: true });
  const withK = run(spotStart, ['preemption', 'preemption', 'preemption'], { ...policy, spotFallbackAfterPreemptions: 2 });
  assert.deepEqual(withK.map((s) => [s.action, s.spot]), [
    ['reprovision', true],
    ['fall-back-to-on-demand', false],
    ['reprovision', false],
  ]);
  // Maintenance is not a preemption: it never triggers the fall-back.
  assert.deepEqual(run(spotStart, ['maintenance', 'maintenance', 'maintenance'], { ...policy, spotFallbackAfterPreemptions: 1 }).map((s) => s.action), ['reprovision', 'reprovision', 'reprovision']);
  // Not configured: stays on spot.
  assert.ok(run(spotStart, Array(6).fill('preemption')).every((s) => s.action === 'reprovision' && s.spot));
  // On-demand stages have nothing to fall back from.
  const onDemand = startFailover({ zones: ['us-east5-b'], spot: false });
  assert.ok(run(onDemand, Array(3).fill('preemption'), { ...policy, spotFallbackAfterPreemptions: 1 }).every((s) => s.action === 'reprovision'));
});

test('falling back to on-demand forgets zones dropped for a spot quota of 0 (on-demand has its own quota)', () => {
  const zones = ['us-east5-b', 'us-central1-a'];
  const zero = describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region us-east5." });
  const steps = run(startFailover({ zones, spot: true }), [zero, 'preemption'], { ...policy, spotFallbackAfterPreemptions: 1 });
  assert.deepEqual(steps[0]?.state.excluded, ['us-east5-b']);
  assert.equal(steps[1]?.action, 'fall-back-to-on-demand');
  assert.equal(steps[1]?.zone, 'us-east5-b');
  assert.deepEqual(steps[1]?.state.excluded, []);
});

test('node losses are bounded by maxNodeLosses when set', () => {
  const steps = run(startFailover({ zones: ['us-east5-b'], spot: true }), ['preemption', 'maintenance', 'preemption'], { ...policy, maxNodeLosses: 2 });
  assert.deepEqual(steps.map((s) => s.action), ['reprovision', 'reprovision', 'give-up']);
});

test('deterministic and JSON-safe: the same inputs give the same steps, and the state round-trips', () => {
  const failures: ComputeFailureClass[] = ['stockout', 'internal', 'internal', 'stockout', 'preemption', 'quota'];
  const a = run(startFailover({ zones: ['us-east5-b', 'us-east5-a', 'us-central1-a'], spot: true }), failures, DEFAULT_FAILOVER_POLICY);
  const b = run(startFailover({ zones: ['us-east5-b', 'us-east5-a', 'us-central1-a'], spot: true }), failures, DEFAULT_FAILOVER_POLICY);
  assert.deepEqual(a, b);
  const last = a.at(-1)!.state;
  assert.deepEqual(JSON.parse(JSON.stringify(last)), last);
  assert.throws(() => startFailover({ zones: [], spot: false }), /at least one zone/);
});
