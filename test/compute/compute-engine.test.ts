/**
 * The compute-engine provider with the real `@google-cloud/compute` client (REST transport),
 * against the local fake of the Compute Engine API (test/fakes/compute-engine). No credentials.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { InstancesClient, ZoneOperationsClient } from '@google-cloud/compute';
import { ApplicationFailure } from '@temporalio/common';
import { ComputeEngineComputeProvider, type ComputeEngineAcquireProgress, type ComputeEngineProviderOptions } from '../../activities/compute/compute-engine.ts';
import type { ComputeRequest } from '../../activities/types.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { computeName, shortHash } from '../../pipeline/naming.ts';
import { FakeComputeEngine, type FakeMethod } from '../fakes/compute-engine/server.ts';

const PROJECT = 'recogdrive-test';
const ZONE = 'us-east5-b';
const ZONE2 = 'us-east5-a';
const fake = new FakeComputeEngine({ createDelayMs: 60 });
let instancesClient: InstancesClient;
let zoneOperationsClient: ZoneOperationsClient;
let runCounter = 0;

before(async () => {
  const port = await fake.start();
  instancesClient = new InstancesClient(ComputeEngineComputeProvider.fakeClientOptions(port));
  zoneOperationsClient = new ZoneOperationsClient(ComputeEngineComputeProvider.fakeClientOptions(port));
});

after(async () => {
  await instancesClient.close();
  await zoneOperationsClient.close();
  await fake.stop();
});

beforeEach(() => {
  fake.createDelayMs = 60;
  fake.bootDelayMs = 0;
  for (const zone of [ZONE, ZONE2]) fake.stockout(zone, false);
  fake.quotaExceeded('us-east5', false);
  fake.withholdHostKeys(false);
});

function provider(options: Partial<ComputeEngineProviderOptions> = {}): ComputeEngineComputeProvider {
  return new ComputeEngineComputeProvider({ instancesClient, zoneOperationsClient, pollIntervalMs: 20, deleteRetryDelayMs: 10, note: () => {}, ...options });
}

/** A request of a fresh run (each test its own VM name). */
function request(options: { machineType?: string; zones?: string[]; spot?: boolean; placement?: ComputeRequest['placement'] } = {}): ComputeRequest {
  return {
    runId: `Exp_42/try-${++runCounter}`,
    stage: 'metricCache',
    attempt: 2,
    compute: ComputeSpec.parse({ backend: 'compute-engine', machineType: options.machineType ?? 'n2-standard-8', zones: options.zones ?? [ZONE], spot: options.spot ?? true, bootDiskGb: 100 }),
    project: PROJECT,
    ...(options.placement !== undefined ? { placement: options.placement } : {}),
  };
}

const nameOf = (req: ComputeRequest): string => computeName(req.runId, req.stage, req.attempt);
const pathOf = (req: ComputeRequest, zone = ZONE): string => `projects/${PROJECT}/zones/${zone}/instances/${nameOf(req)}`;

function counter(): (method: FakeMethod) => number {
  const before = { ...fake.calls };
  return (method) => fake.calls[method] - before[method];
}

function isFailure(type: string, nonRetryable: boolean, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    assert.equal(error.nonRetryable, nonRetryable, `nonRetryable of ${type}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

/** A VM an earlier try of `req` created (same name, labels and metadata as acquire makes). */
function seedEarlierTry(req: ComputeRequest, extra: { spot?: boolean; zone?: string } = {}): ReturnType<FakeComputeEngine['seedInstance']> {
  return fake.seedInstance({
    project: PROJECT,
    zone: extra.zone ?? ZONE,
    name: nameOf(req),
    spot: extra.spot ?? true,
    labels: { owner: 'recogdrive', run: 'x', 'run-hash': shortHash(req.runId), stage: 'metric-cache', attempt: '2' },
    metadata: { 'recogdrive-run': req.runId, 'recogdrive-stage': req.stage },
  });
}

// ---- acquire -----------------------------------------------------------------------------

test('acquire creates exactly one spot VM with the labels, metadata, scheduling and disk asked for, and returns its one SSH worker with the pinned host key', async () => {
  const req = request();
  const calls = counter();
  const beats: unknown[] = [];
  const lease = await provider({ sshPublicKey: 'ssh-ed25519 AAAAC3Nz key' }).acquire(req, (d) => beats.push(d), undefined);

  assert.equal(calls('instances.insert'), 1);
  assert.equal(lease.backend, 'compute-engine');
  assert.equal(lease.name, nameOf(req));
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: ZONE, spot: true, machine: 'n2-standard-8', chips: 0, gpus: 0 });
  assert.equal(lease.workers.length, 1);
  const [worker] = lease.workers;
  assert.ok(worker?.kind === 'ssh');
  const vm = fake.instance(pathOf(req))!;
  assert.equal(worker.host, vm.natIP, 'the external address');
  assert.equal(worker.port, 22);
  assert.equal(worker.user, 'recogdrive');
  assert.deepEqual(worker.hostKeys, vm.hostKeys, 'host key from the guest attributes, as "type base64"');
  assert.match(worker.hostKeys[0]!, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5/);

  assert.equal(vm.status, 'RUNNING');
  assert.deepEqual(vm.labels, { run: vm.labels.run, 'run-hash': shortHash(req.runId), stage: 'metric-cache', attempt: '2', owner: 'recogdrive' });
  assert.match(vm.labels.run!, /^exp-42-try-\d+-[0-9a-f]{8}$/, 'run label cleaned to label rules');
  assert.equal(vm.metadata['recogdrive-run'], req.runId, 'the exact run id is kept in metadata');
  assert.equal(vm.metadata['recogdrive-stage'], 'metricCache');
  assert.equal(vm.metadata['enable-guest-attributes'], 'TRUE');
  assert.equal(vm.metadata['ssh-keys'], 'recogdrive:ssh-ed25519 AAAAC3Nz key recogdrive');
  assert.deepEqual(vm.scheduling, { provisioningModel: 'SPOT', automaticRestart: false, onHostMaintenance: 'TERMINATE', preemptible: false, instanceTerminationAction: 'STOP' });
  assert.equal(vm.machineType, 'n2-standard-8');
  assert.equal(vm.sourceImage, 'projects/cos-cloud/global/images/family/cos-stable');
  assert.equal(vm.bootDiskGb, 100);
  assert.equal(vm.external, true);
  const progress = beats[0] as ComputeEngineAcquireProgress;
  assert.equal(progress.instance, pathOf(req));
  assert.match(progress.operation ?? '', /^operation-/, 'the operation name is heartbeated');
});

test('acquire of an on-demand TPU VM (ct6e-standard-4t) in the placement zone: STANDARD, TERMINATE on maintenance, 4 chips, internal address when asked', async () => {
  const req = request({ machineType: 'ct6e-standard-4t', zones: [ZONE, ZONE2], spot: true, placement: { zone: ZONE2, spot: false } });
  const lease = await provider({ address: 'internal', sshUser: 'ubuntu' }).acquire(req, () => {}, undefined);
  const vm = fake.instance(pathOf(req, ZONE2))!;
  assert.equal(vm.scheduling.provisioningModel, 'STANDARD', 'placement.spot wins over compute.spot');
  assert.equal(vm.scheduling.onHostMaintenance, 'TERMINATE', 'TPU VMs cannot live-migrate');
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: ZONE2, spot: false, machine: 'ct6e-standard-4t', chips: 4, gpus: 0 });
  const [worker] = lease.workers;
  assert.ok(worker?.kind === 'ssh');
  assert.equal(worker.host, vm.ipAddress);
  assert.equal(worker.user, 'ubuntu');
});

test('acquire twice gives one VM: the second insert gets 409 alreadyExists and adopts it', async () => {
  const req = request();
  const first = await provider().acquire(req, () => {}, undefined);
  const calls = counter();
  const second = await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(second, first);
  assert.equal(calls('instances.insert'), 1, 'insert was tried (and refused)');
  assert.equal(fake.allInstances().filter((vm) => vm.name === nameOf(req)).length, 1);
});

test('a VM of the same name that is not this attempt\'s is never adopted (TpuBadInput)', async () => {
  const req = request();
  fake.seedInstance({ project: PROJECT, zone: ZONE, name: nameOf(req), labels: { owner: 'someone-else' } });
  await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuBadInput', true, /is not this attempt's VM \(owner label "someone-else"\)/));
  const calls = counter();
  assert.deepEqual(await provider().release(req), { name: nameOf(req), released: false }, 'release leaves it alone too');
  assert.equal(calls('instances.delete'), 0);
  assert.ok(fake.instance(pathOf(req)) !== undefined);
});

test('a retried acquire with the operation in its resume details resumes it: one insert in total', async () => {
  fake.createDelayMs = 300;
  const req = request();
  const calls = counter();
  let saved: unknown;
  // First try: the worker "crashes" right after heartbeating the operation name.
  await assert.rejects(
    provider().acquire(
      req,
      (d) => {
        saved = d;
        throw new Error('worker crashed');
      },
      undefined,
    ),
    /worker crashed/,
  );
  assert.equal(fake.instance(pathOf(req))?.status, 'PROVISIONING');
  const lease = await provider().acquire(req, () => {}, saved);
  assert.equal(lease.workers.length, 1);
  assert.equal(calls('instances.insert'), 1, 'only the first try inserted');
  assert.ok(calls('zoneOperations.get') > 0, 'the retry polled the saved operation');
});

test('slow creation: acquire heartbeats on every poll of the operation and of the booting VM', async () => {
  fake.createDelayMs = 250;
  fake.bootDelayMs = 150;
  const req = request();
  const calls = counter();
  const beats: ComputeEngineAcquireProgress[] = [];
  await provider().acquire(req, (d) => beats.push(d as ComputeEngineAcquireProgress), undefined);
  const operationPolls = calls('zoneOperations.get');
  const vmPolls = calls('instances.get');
  assert.ok(operationPolls >= 2 && vmPolls >= 2, `polled both the operation (${operationPolls}) and the booting VM (${vmPolls})`);
  // One beat after insert, then one per poll that found it still not ready.
  assert.equal(beats.length, 1 + (operationPolls - 1) + (vmPolls - 1));
  assert.ok(beats.every((b) => b.instance === pathOf(req) && b.operation === beats[0]!.operation));
});

test('a VM that does not come up in time → retryable TpuNotReady; the retry adopts it', async () => {
  fake.createDelayMs = 400;
  const req = request();
  await assert.rejects(provider({ readyTimeoutMs: 50 }).acquire(req, () => {}, undefined), isFailure('TpuNotReady', false, /not RUNNING after 50 ms/));
  const lease = await provider().acquire(req, () => {}, undefined);
  assert.equal(lease.name, nameOf(req));
});

test('stockout in the zone → TpuStockout (non-retryable; the workflow picks another zone), no VM left', async () => {
  fake.stockout(ZONE);
  const req = request();
  await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuStockout', true, /ZONE_RESOURCE_POOL_EXHAUSTED: The zone 'projects\/recogdrive-test\/zones\/us-east5-b' does not have enough resources/));
  assert.equal(fake.instance(pathOf(req)), undefined);
});

test('quota exceeded in the operation, or refused at once with 403 → TpuQuotaExceeded, the message keeps the region', async () => {
  fake.quotaExceeded('us-east5', true, { metric: 'N2_CPUS', limit: 8 });
  await assert.rejects(provider().acquire(request(), () => {}, undefined), isFailure('TpuQuotaExceeded', true, /Quota 'N2_CPUS' exceeded\.\s+Limit: 8\.0 in region us-east5/));
  fake.quotaExceeded('us-east5', true, { sync: true });
  const calls = counter();
  await assert.rejects(provider().acquire(request(), () => {}, undefined), isFailure('TpuQuotaExceeded', true, /in region us-east5/));
  assert.equal(calls('zoneOperations.get'), 0, 'refused synchronously, no operation');
});

test('a machine type the zone does not offer → TpuInvalidConfig from the API; an internal error on insert → retryable TpuInternal', async () => {
  fake.withdrawMachineType(ZONE, 'n2-standard-8');
  try {
    await assert.rejects(provider().acquire(request(), () => {}, undefined), isFailure('TpuInvalidConfig', true, /Machine type with name 'n2-standard-8' does not exist in zone 'us-east5-b'/));
  } finally {
    fake.withdrawMachineType(ZONE, 'n2-standard-8', false);
  }
  fake.failNext('instances.insert', 1);
  await assert.rejects(provider().acquire(request(), () => {}, undefined), isFailure('TpuInternal', false, /Internal error/));
});

test('a VM preempted before it is used → TpuPreempted (GCE recorded compute.instances.preempted)', async () => {
  const req = request();
  seedEarlierTry(req);
  fake.preemptAt(pathOf(req));
  await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuPreempted', true, /is TERMINATED before the stage started: was preempted at .* \(compute\.instances\.preempted: Instance was preempted\.\)/));
});

test('acquire without published host keys returns empty hostKeys and a note', async () => {
  fake.withholdHostKeys();
  const notes: string[] = [];
  const lease = await provider({ note: (m) => notes.push(m) }).acquire(request(), () => {}, undefined);
  assert.deepEqual(lease.workers[0]?.kind === 'ssh' ? lease.workers[0].hostKeys : undefined, []);
  assert.match(notes.join('\n'), /guest attributes of .* could not be read \(not published yet\): hostKeys is empty/);
});

test('sshEndpointFor maps the VM onto the endpoint an emulator gives it (fake addressFor port)', async () => {
  const mapped = new FakeComputeEngine({ createDelayMs: 0, addressFor: () => ({ natIP: '127.0.0.1', port: 2222, hostKeys: ['ssh-ed25519 AAAAlocal'] }) });
  const port = await mapped.start();
  const p = new ComputeEngineComputeProvider({
    clientOptions: ComputeEngineComputeProvider.fakeClientOptions(port),
    pollIntervalMs: 20,
    sshEndpointFor: (vm) => mapped.sshEndpointOf(`projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`),
  });
  try {
    const lease = await p.acquire(request(), () => {}, undefined);
    assert.deepEqual(lease.workers, [{ kind: 'ssh', host: '127.0.0.1', port: 2222, user: 'recogdrive', hostKeys: ['ssh-ed25519 AAAAlocal'] }]);
  } finally {
    await p.close();
    await mapped.stop();
  }
});

test('sshPortFromGuestAttributes: the SSH port is the one an emulator publishes as guest attribute recogdrive/ssh-port; without the option it is 22 and the attribute is not read', async () => {
  const mapped = new FakeComputeEngine({ createDelayMs: 0, addressFor: () => ({ natIP: '127.0.0.1', port: 2222, hostKeys: ['ssh-ed25519 AAAAlocal'] }) });
  const port = await mapped.start();
  const clients = {
    instancesClient: new InstancesClient(ComputeEngineComputeProvider.fakeClientOptions(port)),
    zoneOperationsClient: new ZoneOperationsClient(ComputeEngineComputeProvider.fakeClientOptions(port)),
  };
  const portReads = () => mapped.requests.filter((r) => r.method === 'instances.getGuestAttributes' && r.query.queryPath === 'recogdrive/ssh-port').length;
  try {
    const on = await provider({ ...clients, sshPortFromGuestAttributes: true }).acquire(request(), () => {}, undefined);
    assert.deepEqual(on.workers, [{ kind: 'ssh', host: '127.0.0.1', port: 2222, user: 'recogdrive', hostKeys: ['ssh-ed25519 AAAAlocal'] }]);
    assert.equal(portReads(), 1);

    for (const options of [{}, { sshPortFromGuestAttributes: false }]) {
      const off = await provider({ ...clients, ...options }).acquire(request(), () => {}, undefined);
      assert.deepEqual(
        off.workers.map((w) => (w.kind === 'ssh' ? [w.host, w.port] : [])),
        [['127.0.0.1', 22]],
        `the attribute is ignored with ${JSON.stringify(options)}`,
      );
    }
    assert.equal(portReads(), 1, 'not read when the option is off');
  } finally {
    await clients.instancesClient.close();
    await clients.zoneOperationsClient.close();
    await mapped.stop();
  }

  // A VM without the attribute (a real one): the configured port, quietly.
  const notes: string[] = [];
  const lease = await provider({ sshPortFromGuestAttributes: true, sshPort: 2200, note: (m) => notes.push(m) }).acquire(request(), () => {}, undefined);
  assert.equal(lease.workers[0]?.kind === 'ssh' ? lease.workers[0].port : undefined, 2200);
  assert.deepEqual(notes, []);
});

// ---- release -----------------------------------------------------------------------------

test('release deletes the VM and waits for the delete operation', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  const calls = counter();
  assert.deepEqual(await provider().release(req), { name: nameOf(req), released: true });
  assert.equal(fake.instance(pathOf(req)), undefined);
  assert.ok(calls('zoneOperations.wait') >= 1);
});

test('release of a VM that does not exist → released: false, no error, looked for in every zone', async () => {
  const req = request({ zones: [ZONE, ZONE2] });
  const calls = counter();
  assert.deepEqual(await provider().release(req), { name: nameOf(req), released: false });
  assert.equal(calls('instances.get'), 2, 'looked in both zones');
  assert.equal(calls('instances.delete'), 0, 'nothing to delete');
});

test('release finds the VM in the second zone of compute.zones', async () => {
  const req = request({ zones: [ZONE, ZONE2] });
  seedEarlierTry(req, { zone: ZONE2 });
  assert.equal((await provider().release(req)).released, true);
  assert.equal(fake.instance(pathOf(req, ZONE2)), undefined);
});

test('delete failing twice then succeeding: the provider retries it itself and releases', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.failDeletes(2);
  const calls = counter();
  assert.equal((await provider().release(req)).released, true);
  assert.equal(calls('instances.delete'), 3);
  assert.equal(fake.instance(pathOf(req)), undefined);
});

test('delete failing more often than the provider retries → retryable TpuInternal (Temporal retries the activity)', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.failDeletes(2, { status: 503, reason: 'backendError', message: 'The service is currently unavailable.' });
  await assert.rejects(provider({ deleteAttempts: 2 }).release(req), isFailure('TpuInternal', false, /currently unavailable/));
  assert.equal((await provider().release(req)).released, true, 'the next try deletes it');
});

test('two releases at once: the second delete meets "is not ready" (400 resourceNotReady), retries, and finds the VM gone', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.deleteDelayMs = 200;
  try {
    const calls = counter();
    const p = provider({ deleteRetryDelayMs: 100 });
    const [a, b] = await Promise.all([p.release(req), p.release(req)]);
    assert.deepEqual([a.released, b.released].sort(), [false, true]);
    assert.ok(calls('instances.delete') >= 3, 'the refused delete was retried');
    assert.equal(fake.instance(pathOf(req)), undefined);
  } finally {
    fake.deleteDelayMs = 0;
  }
});

// ---- health ------------------------------------------------------------------------------

test('health: a RUNNING VM is ok', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(await provider().health(req), { state: 'ok' });
});

test('health: a preempted spot VM is lost to preemption', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.preemptAt(pathOf(req));
  const health = await provider().health(req);
  assert.equal(health.state, 'lost');
  assert.ok(health.state === 'lost');
  assert.equal(health.failureClass, 'preemption');
  assert.match(health.detail, /was preempted at .*; it is TERMINATED/);
});

test('health: host maintenance, a host error or a repair → lost to maintenance, with a sentence saying why', async () => {
  for (const kind of ['terminate', 'host-error', 'repair'] as const) {
    const req = request({ spot: false });
    await provider().acquire(req, () => {}, undefined);
    fake.maintenance(pathOf(req), kind);
    const health = await provider().health(req);
    assert.ok(health.state === 'lost', kind);
    assert.equal(health.failureClass, 'maintenance', kind);
    assert.match(health.detail, kind === 'repair' ? /is REPAIRING: under repair/ : /is TERMINATED: stopped, or terminated for host maintenance or a host error/);
  }
});

test('health: a spot VM that was terminated without a preemption record is maintenance, not preemption', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.maintenance(pathOf(req), 'terminate');
  const health = await provider().health(req);
  assert.ok(health.state === 'lost' && health.failureClass === 'maintenance');
});

test('health: a deleted VM is lost (maintenance: no longer exists); reading errors are thrown', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  await provider().release(req);
  const health = await provider().health(req);
  assert.ok(health.state === 'lost');
  assert.equal(health.failureClass, 'maintenance');
  assert.match(health.detail, /no longer exists/);
  fake.failNext('instances.get', 1);
  await assert.rejects(provider().health(req), isFailure('TpuInternal', false));
});

// ---- janitor -----------------------------------------------------------------------------

test('listLeases lists only VMs labelled owner=recogdrive in the scope, with the exact run id and stage from the metadata', async () => {
  const zone = 'europe-west4-a';
  const p = provider({ scope: [{ project: PROJECT, zones: [zone] }] });
  const req = request({ zones: [zone] });
  await p.acquire(req, () => {}, undefined);
  fake.seedInstance({ project: PROJECT, zone, name: 'unlabelled-vm' });
  fake.seedInstance({ project: PROJECT, zone, name: 'other-owner', labels: { owner: 'someone' } });
  // labelled ours, but its metadata run does not match its run-hash: whose it is cannot be told.
  fake.seedInstance({ project: PROJECT, zone, name: 'rd-tampered-stage1-1', labels: { owner: 'recogdrive', run: 'x', 'run-hash': '00000000', stage: 'stage1' }, metadata: { 'recogdrive-run': 'other', 'recogdrive-stage': 'stage1' } });
  const calls = counter();
  const leases = await p.listLeases();
  assert.equal(calls('instances.list'), 1, 'one server-side filtered list per zone');
  assert.ok(fake.requests.at(-1)?.query.filter === 'labels.owner=recogdrive');
  assert.deepEqual(leases.map((l) => l.name).sort(), [nameOf(req), 'rd-tampered-stage1-1'].sort());
  const ours = leases.find((l) => l.name === nameOf(req))!;
  const vm = fake.instance(pathOf(req, zone))!;
  assert.deepEqual(ours, {
    name: nameOf(req),
    backend: 'compute-engine',
    zone,
    createdAt: new Date(vm.createdAt).toISOString(),
    labels: { run: req.runId, 'run-hash': shortHash(req.runId), stage: 'metricCache', attempt: '2', owner: 'recogdrive', project: PROJECT, 'instance-id': vm.id },
  });
  const tampered = leases.find((l) => l.name === 'rd-tampered-stage1-1')!;
  assert.equal(tampered.labels.run, undefined, 'no run: the janitor keeps it');
});

test('listLeases without zones in the scope lists every zone of the project (aggregated list)', async () => {
  const project = 'recogdrive-other';
  for (const zone of ['asia-east1-a', 'us-central1-f']) {
    fake.seedInstance({ project, zone, name: `rd-agg-${zone}`, labels: { owner: 'recogdrive' } });
  }
  fake.seedInstance({ project, zone: 'us-central1-f', name: 'not-ours' });
  const leases = await provider({ scope: [{ project }] }).listLeases();
  assert.deepEqual(leases.map((l) => `${l.zone}/${l.name}`).sort(), ['asia-east1-a/rd-agg-asia-east1-a', 'us-central1-f/rd-agg-us-central1-f']);
});

test('deleteLease deletes the VM as listed (true), then finds it gone (false); a newer VM that took the name is not deleted', async () => {
  const zone = 'europe-west4-b';
  const p = provider({ scope: [{ project: PROJECT, zones: [zone] }] });
  const req = request({ zones: [zone] });
  await p.acquire(req, () => {}, undefined);
  const [record] = (await p.listLeases()).filter((l) => l.name === nameOf(req));
  assert.ok(record);
  assert.equal(await p.deleteLease(record), true);
  assert.equal(fake.instance(pathOf(req, zone)), undefined);
  assert.equal(await p.deleteLease(record), false);

  await p.acquire(req, () => {}, undefined);
  const calls = counter();
  assert.equal(await p.deleteLease(record), false, 'same name, another instance id');
  assert.equal(calls('instances.delete'), 0);
  assert.ok(fake.instance(pathOf(req, zone)));
  await assert.rejects(p.deleteLease({ ...record, labels: { ...record.labels, project: 'not-in-scope' } }), isFailure('TpuInvalidConfig', true, /not in this provider's scope/));
});

// ---- bad input ---------------------------------------------------------------------------

test('bad input fails with TpuInvalidConfig before any request reaches the API', async () => {
  const total = fake.totalCalls();
  const base = request({ zones: [ZONE, ZONE2] });
  const withCompute = (compute: Record<string, unknown>): ComputeRequest => ({ ...base, compute: { ...base.compute, ...compute } as ComputeRequest['compute'] });
  const cases: Array<[string, ComputeEngineComputeProvider, ComputeRequest, RegExp]> = [
    ['unknown machine type family', provider(), withCompute({ machineType: 'q9-standard-8' }), /unknown machine type "q9-standard-8"/],
    ['malformed machine type', provider(), withCompute({ machineType: 'N2 standard' }), /not a machine type like n2-standard-32/],
    ['TPU machine type of no size', provider(), withCompute({ machineType: 'ct6e-standard-3t' }), /unknown TPU machine type "ct6e-standard-3t"/],
    ['empty zone list', provider(), withCompute({ zones: [] }), /no zone/],
    ['malformed zone', provider(), withCompute({ zones: ['us-east5'] }), /not a zone name/],
    ['placement zone not in the list', provider(), { ...base, placement: { zone: 'us-west1-a', spot: true } }, /placement zone "us-west1-a" is not one of compute.zones/],
    ['malformed project', provider(), { ...base, project: 'My_Project' }, /"My_Project" is not a Google Cloud project id/],
    ['no project at all', provider(), { ...base, project: undefined }, /no Google Cloud project/],
    ['backend mismatch', provider(), { ...base, compute: ComputeSpec.parse({ backend: 'tpu-api', accelerator: 'v6e-4', zones: [ZONE] }) }, /asked for backend tpu-api/],
    ['malformed boot image', provider(), withCompute({ bootImage: 'cos-stable' }), /not an image like/],
    ['attempt 0', provider(), { ...base, attempt: 0 }, /attempt must be a positive integer/],
  ];
  for (const [label, p, req, message] of cases) {
    await assert.rejects(p.acquire(req, () => {}, undefined), (error) => {
      isFailure('TpuInvalidConfig', true, message)(error);
      return true;
    }, label);
    await assert.rejects(p.release(req), isFailure('TpuInvalidConfig', true), label);
    await assert.rejects(p.health(req), isFailure('TpuInvalidConfig', true), label);
  }
  assert.equal(fake.totalCalls(), total, 'no request reached the fake');
  // The project option stands in when the request has none.
  await assert.rejects(provider({ project: 'Bad_Project' }).acquire({ ...base, project: undefined }, () => {}, undefined), isFailure('TpuInvalidConfig', true, /"Bad_Project"/));
  assert.equal(fake.totalCalls(), total);
});
