import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyComputeError,
  classifyNodeState,
  classifyQueuedResourceState,
  computeFailure,
  computeFailureClassOfType,
  COMPUTE_FAILURE_CLASSES,
  COMPUTE_FAILURE_TYPES,
  COMPUTE_FAILURES,
  describeComputeError,
  grpcStatusOf,
  type ComputeErrorInput,
  type ComputeFailureClass,
} from '../../pipeline/compute-failures.ts';

// Message samples. Unless noted, they come from ../shared/research/tpu-gcp.md §2 "Failure modes,
// and the signal that reveals each" (table row named in the comment); "…" in the notes is filled in.
const SAMPLES: Array<{ name: string; error: ComputeErrorInput; expected: ComputeFailureClass }> = [
  // §2 "Zone stockout": gRPC 8, usually as the LRO error.
  {
    name: 'TPU stockout (LRO error, code 8)',
    error: { code: 8, message: 'There is no more capacity in the zone "us-east5-b"; you can try in another zone where Cloud TPU Nodes are offered (see https://cloud.google.com/tpu/docs/regions) [EID: 0x1f2e]' },
    expected: 'stockout',
  },
  // §2 "Zone stockout", REST form (HTTP 429 carries RESOURCE_EXHAUSTED).
  { name: 'TPU stockout over REST (429)', error: { code: 429, message: 'There is no more capacity in the zone "europe-west4-a"; you can try in another zone' }, expected: 'stockout' },
  // §6 SkyPilot _gcp_handler blocks the zone on ZONE_RESOURCE_POOL_EXHAUSTED (Compute Engine reason).
  { name: 'GCE ZONE_RESOURCE_POOL_EXHAUSTED reason', error: { code: 503, reason: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'Instance creation failed' }, expected: 'stockout' },
  // Compute Engine docs "Troubleshoot resource availability errors" (compute/docs/resource-error), not in the notes.
  {
    name: 'GCE "does not have enough resources available"',
    error: { reason: 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS', message: "The zone 'projects/p/zones/us-east5-b' does not have enough resources available to fulfill the request. Try a different zone, or try again later." },
    expected: 'stockout',
  },
  // §2 "Quota exceeded": code 8 too, told apart by the message (marin#1612's 429 message).
  {
    name: 'TPU quota (code 8, regional, limit 0)',
    error: { code: 8, message: "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region us-east5." },
    expected: 'quota',
  },
  { name: 'TPU quota over REST (429, limit 16)', error: { code: 429, message: "Quota limit 'TPUV6EPerProjectPerRegionForTPUAPI' has been exceeded. Limit: 16 in region us-east5." }, expected: 'quota' },
  // §2 "Quota exceeded": "or a google.rpc.QuotaFailure detail".
  { name: 'QuotaFailure detail', error: { code: 'RESOURCE_EXHAUSTED', reason: 'QuotaFailure', message: 'Resource has been exhausted (e.g. check quota).' }, expected: 'quota' },
  // §2 "Insufficient reservation": code 9 (skypilot#4579).
  { name: 'insufficient reservation (code 9)', error: { code: 9, message: 'Insufficient reserved capacity. Contact customer support to increase your reservation. [EID: 0x2a]' }, expected: 'reservation' },
  // §2 "Bad type / not offered": code 3.
  { name: 'accelerator not in zone (code 3)', error: { code: 3, message: 'the accelerator v6e-16 was not found in zone us-east5-c' }, expected: 'invalid-config' },
  { name: 'invalid AcceleratorType (code 3)', error: { code: 3, message: 'CloudTpu received an invalid AcceleratorType, please check the accelerator type is correct' }, expected: 'invalid-config' },
  // §1.2 runtimeVersion + §2 "Bad type": INVALID_ARGUMENT about the runtime.
  { name: 'bad runtime version (INVALID_ARGUMENT)', error: { code: 'INVALID_ARGUMENT', message: 'Runtime version v2-alpha-tpuv9 not found' }, expected: 'invalid-config' },
  // §2 "API off / zone unauthorized": code 7 with the location wording.
  { name: 'zone not available to the project (code 7)', error: { code: 7, message: 'Location projects/p/locations/us-east5-z is not found or access is unauthorized.' }, expected: 'invalid-config' },
  // §2 "Opaque stockout (seen for spot v5e)": code 13.
  { name: 'opaque internal error (code 13)', error: { code: 13, message: 'an internal error has occurred' }, expected: 'internal' },
  // §2 "Concurrent op on node": retry with back-off.
  { name: 'concurrent operation', error: { code: 9, message: 'unable to queue the operation' }, expected: 'internal' },
  // §2 "Preempted during create": code 3, but a preemption, not a bad argument.
  { name: 'preempted during create (code 3)', error: { code: 3, message: 'update is not supported while in state PREEMPTED' }, expected: 'preemption' },
  // §6 SkyPilot blocks everything on IAM/policy denial and VPC_NOT_FOUND.
  { name: 'IAM denial (code 7)', error: { code: 7, message: "Permission 'tpu.nodes.create' denied on 'projects/p/locations/us-east5-b/nodes/rd-x'" }, expected: 'bad-input' },
  { name: 'VPC not found', error: { code: 400, reason: 'VPC_NOT_FOUND', message: "The resource 'projects/p/global/networks/train' was not found" }, expected: 'bad-input' },
  // §1.5 / §6 "no cloud access": the API is not enabled (Google's standard wording).
  { name: 'API disabled', error: { code: 403, message: 'Cloud TPU API has not been used in project 123 before or it is disabled.' }, expected: 'bad-input' },
  // A malformed request that names no placement (node id).
  { name: 'malformed node id (INVALID_ARGUMENT)', error: { code: 3, message: "Invalid value for field 'node_id': 'Bad_Id'" }, expected: 'bad-input' },
];

for (const sample of SAMPLES) {
  test(`classifies ${sample.name} as ${sample.expected}`, () => {
    assert.equal(classifyComputeError(sample.error), sample.expected);
  });
}

test('every class is reached by at least one real sample', () => {
  const reached = new Set(SAMPLES.map((s) => s.expected));
  // Node-state classes are reached by classifyNodeState below.
  for (const cls of COMPUTE_FAILURE_CLASSES.filter((c) => c !== 'maintenance')) assert.ok(reached.has(cls), cls);
});

test('quota errors carry their scope and whether the limit is 0 (§2: "in region" vs "in zone")', () => {
  assert.deepEqual(describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region us-east5." }), {
    failureClass: 'quota',
    status: 'RESOURCE_EXHAUSTED',
    quotaScope: 'region',
    quotaLimitZero: true,
  });
  const zonal = describeComputeError({ code: 8, message: "Quota limit 'TPUV6EPerProjectPerZone' has been exceeded. Limit: 8 in zone us-east5-b." });
  assert.equal(zonal.quotaScope, 'zone');
  assert.equal(zonal.quotaLimitZero, false);
  // No scope wording: TPU quotas are per region.
  assert.equal(describeComputeError({ code: 8, message: 'Quota exceeded for TPU v6e cores' }).quotaScope, 'region');
  assert.deepEqual(describeComputeError({ code: 403, reason: 'QUOTA_EXCEEDED', message: "Quota 'CPUS' exceeded. Limit: 0.0 globally." }), { failureClass: 'quota', status: 'PERMISSION_DENIED', quotaScope: 'project', quotaLimitZero: true });
});

test('an API request-rate limit is transient (internal), not a capacity quota', () => {
  assert.equal(
    classifyComputeError({ code: 429, message: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'tpu.googleapis.com'" }),
    'internal',
  );
});

test('unknown errors are internal: retried in place, no failover, no budget', () => {
  for (const error of [
    { message: 'socket hang up' },
    { code: 2, message: 'unknown' },
    { code: 14, message: 'Service unavailable' },
    { code: 4, message: 'Deadline exceeded' },
    { code: 500, message: '' },
    { code: 'WHATEVER', message: 'something odd' },
  ]) {
    assert.equal(classifyComputeError(error), 'internal', JSON.stringify(error));
  }
  const rule = COMPUTE_FAILURES.internal;
  assert.equal(rule.retrySameZone, true);
  assert.equal(rule.failover, false);
  assert.equal(rule.giveUp, false);
});

test('code 8 without quota wording is a stockout (§2: tell them apart by message, not code)', () => {
  assert.equal(classifyComputeError({ code: 8, message: 'Resource exhausted' }), 'stockout');
  assert.equal(classifyComputeError({ code: 'RESOURCE_EXHAUSTED', message: '' }), 'stockout');
});

test('codes: gRPC numbers, gRPC names and HTTP statuses normalise to one status', () => {
  assert.equal(grpcStatusOf(8), 'RESOURCE_EXHAUSTED');
  assert.equal(grpcStatusOf('8'), 'RESOURCE_EXHAUSTED');
  assert.equal(grpcStatusOf('resource_exhausted'), 'RESOURCE_EXHAUSTED');
  assert.equal(grpcStatusOf(429), 'RESOURCE_EXHAUSTED');
  assert.equal(grpcStatusOf(400), 'INVALID_ARGUMENT');
  assert.equal(grpcStatusOf(undefined), undefined);
  assert.equal(grpcStatusOf(418), undefined);
});

test('node states (§1.2 Node.State, §2 preemption/maintenance rows), strings or LRO numbers', () => {
  assert.equal(classifyNodeState('PREEMPTED'), 'preemption');
  assert.equal(classifyNodeState(11), 'preemption');
  assert.equal(classifyNodeState('TERMINATED'), 'maintenance');
  assert.equal(classifyNodeState(12, undefined, { spot: true }), 'preemption');
  assert.equal(classifyNodeState('READY', 'UNHEALTHY_MAINTENANCE'), 'maintenance');
  assert.equal(classifyNodeState(2, 5), 'maintenance');
  assert.equal(classifyNodeState('REPAIRING'), 'maintenance');
  assert.equal(classifyNodeState('UNKNOWN'), 'maintenance');
  assert.equal(classifyNodeState(16), 'maintenance');
  assert.equal(classifyNodeState('STOPPED'), 'maintenance');
  // Usable or still coming up: not a failure.
  assert.equal(classifyNodeState('READY', 'HEALTHY'), undefined);
  assert.equal(classifyNodeState('READY'), undefined);
  assert.equal(classifyNodeState('READY', 'TIMEOUT'), undefined);
  assert.equal(classifyNodeState('CREATING'), undefined);
  assert.equal(classifyNodeState(10), undefined);
});

test('queued resources (§1.3): SERVICE suspension is a preemption, FAILED carries its error', () => {
  assert.equal(classifyQueuedResourceState('SUSPENDED', 'SERVICE'), 'preemption');
  assert.equal(classifyQueuedResourceState(7, 2), 'preemption');
  assert.equal(classifyQueuedResourceState('SUSPENDED', 'USER'), 'maintenance');
  assert.equal(classifyQueuedResourceState('FAILED', undefined, { code: 8, message: 'There is no more capacity in the zone "us-east5-b"' }), 'stockout');
  assert.equal(classifyQueuedResourceState('FAILED', undefined, { code: 3, message: 'the accelerator v6e-8 was not found in zone us-east5-b' }), 'invalid-config');
  assert.equal(classifyQueuedResourceState('FAILED'), 'stockout');
  assert.equal(classifyQueuedResourceState('WAITING_FOR_RESOURCES'), undefined);
  assert.equal(classifyQueuedResourceState('ACTIVE'), undefined);
});

test('rule table: own type per class, capacity fails over, only config errors give up, none uses the code-error budget', () => {
  assert.equal(new Set(COMPUTE_FAILURE_TYPES).size, COMPUTE_FAILURE_CLASSES.length);
  assert.equal(COMPUTE_FAILURES.stockout.type, 'TpuStockout');
  for (const cls of COMPUTE_FAILURE_CLASSES) {
    const rule = COMPUTE_FAILURES[cls];
    assert.equal(computeFailureClassOfType(rule.type), cls);
    assert.equal(rule.countsAgainstCodeErrorBudget, false, cls);
    assert.ok(rule.hint.length > 20, cls);
    // Exactly one way forward per class.
    assert.equal([rule.retrySameZone, rule.failover, rule.reprovision, rule.giveUp].filter(Boolean).length, 1, cls);
  }
  for (const cls of ['stockout', 'quota', 'reservation'] as const) {
    assert.equal(COMPUTE_FAILURES[cls].failover, true);
    assert.equal(COMPUTE_FAILURES[cls].capacity, true);
  }
  assert.deepEqual(COMPUTE_FAILURE_CLASSES.filter((c) => COMPUTE_FAILURES[c].giveUp), ['invalid-config', 'bad-input']);
  assert.deepEqual(COMPUTE_FAILURE_CLASSES.filter((c) => COMPUTE_FAILURES[c].reprovision), ['preemption', 'maintenance']);
  assert.equal(computeFailureClassOfType('StageCodeError'), undefined);
  // Names the TPU activity raises for the same classes.
  assert.equal(computeFailureClassOfType('TpuNodeLost'), 'maintenance');
  assert.equal(computeFailureClassOfType('TpuPermissionDenied'), 'bad-input');
  assert.equal(computeFailureClassOfType('TpuInternal'), 'internal');
});

test('computeFailure gives the ApplicationFailure type and a message with the hint', () => {
  const f = computeFailure('stockout', 'us-east5-b', 'There is no more capacity in the zone "us-east5-b"');
  assert.equal(f.type, 'TpuStockout');
  assert.match(f.message, /^stockout in us-east5-b: There is no more capacity/);
  assert.match(f.message, /next zone/);
});
