/**
 * GPU VMs through the compute-engine provider: the real `@google-cloud/compute` client against
 * the fake Compute Engine API (test/fakes/compute-engine), which checks GPUs as the API does
 * (which zone offers which GPU, N1 counts and vCPU limits, no live migration). What the fake
 * received is asserted, not only what the provider returned.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { InstancesClient, ZoneOperationsClient, type protos } from '@google-cloud/compute';
import { ApplicationFailure } from '@temporalio/common';
import { ComputeEngineComputeProvider, type ComputeEngineCloud } from '../../activities/compute/compute-engine.ts';
import type { ComputeRequest } from '../../activities/types.ts';
import { describeComputeError } from '../../pipeline/compute-failures.ts';
import { GPU_BOOT_IMAGE } from '../../pipeline/gpu-machines.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { computeName } from '../../pipeline/naming.ts';
import { DEFAULT_FAILOVER_POLICY, nextStep, startFailover } from '../../pipeline/zone-failover.ts';
import { FakeComputeEngine } from '../fakes/compute-engine/server.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;

const PROJECT = 'recogdrive-gpu';
/** In the fake's catalogue: us-central1-a offers A100, T4, V100...; us-east5-a offers H100, L4, T4 but no A100 or V100. */
const CENTRAL = 'us-central1-a';
const EAST = 'us-east5-a';
const fake = new FakeComputeEngine({ createDelayMs: 40 });
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
  for (const zone of [CENTRAL, EAST]) {
    for (const what of ['nvidia-tesla-t4', 'a2-highgpu-8g']) fake.stockoutOf(zone, what, false);
  }
});

function provider(): ComputeEngineComputeProvider {
  return new ComputeEngineComputeProvider({ instancesClient, zoneOperationsClient, pollIntervalMs: 20, deleteRetryDelayMs: 10, note: () => {}, scope: [{ project: PROJECT, zones: [CENTRAL, EAST] }] });
}

/** A request of a fresh run for Stage 3 on the given compute-engine settings (validated by the input schema). */
function request(compute: Record<string, unknown>, placement?: ComputeRequest['placement']): ComputeRequest {
  return {
    runId: `gpu-run-${++runCounter}`,
    stage: 'stage3',
    attempt: 1,
    compute: ComputeSpec.parse({ backend: 'compute-engine', zones: [CENTRAL], spot: true, bootDiskGb: 100, ...compute }),
    project: PROJECT,
    ...(placement !== undefined ? { placement } : {}),
  };
}

/** A request whose compute skips the input schema (what a hand-built or old request could carry). */
function rawRequest(compute: Record<string, unknown>): ComputeRequest {
  const base = request({ machineType: 'n1-standard-8' });
  return { ...base, compute: { ...base.compute, ...compute } as ComputeRequest['compute'] };
}

const nameOf = (req: ComputeRequest): string => computeName(req.runId, req.stage, req.attempt);
const pathOf = (req: ComputeRequest, zone: string): string => `projects/${PROJECT}/zones/${zone}/instances/${nameOf(req)}`;

/** The body of the instances.insert the fake received for this request's VM in `zone`. */
function insertBody(req: ComputeRequest, zone: string): Instance {
  const found = fake.requests.filter((r) => r.method === 'instances.insert' && r.path.includes(`/zones/${zone}/`) && (r.body as Instance | undefined)?.name === nameOf(req));
  assert.equal(found.length, 1, `one insert of ${nameOf(req)} in ${zone}`);
  return found[0]!.body as Instance;
}

const metadataOf = (body: Instance): Record<string, string> => Object.fromEntries((body.metadata?.items ?? []).map((i) => [i.key ?? '', i.value ?? '']));

function isFailure(type: string, message?: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    assert.equal(error.nonRetryable, true);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

// ---- what a GPU VM is asked for -------------------------------------------------------------

test('a spot a2-highgpu-8g: TERMINATE on host maintenance, the driver metadata, the Deep Learning VM image and a pd-balanced disk; no guestAccelerators sent; 8 × A100 in the lease', async () => {
  const req = request({ machineType: 'a2-highgpu-8g' });
  const lease = await provider().acquire(req, () => {}, undefined);

  const body = insertBody(req, CENTRAL);
  assert.deepEqual(body.scheduling, { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP', automaticRestart: false, onHostMaintenance: 'TERMINATE' });
  assert.equal(body.guestAccelerators, undefined, 'an A2 type carries its GPUs: nothing to attach');
  assert.equal(metadataOf(body)['install-nvidia-driver'], 'True');
  assert.equal(body.disks?.[0]?.initializeParams?.sourceImage, GPU_BOOT_IMAGE);
  assert.equal(body.disks?.[0]?.initializeParams?.diskType, `zones/${CENTRAL}/diskTypes/pd-balanced`);
  assert.equal(body.networkInterfaces?.[0]?.nicType, undefined, 'gVNIC only where required (A3)');

  const vm = fake.instance(pathOf(req, CENTRAL))!;
  assert.equal(vm.status, 'RUNNING');
  assert.deepEqual(vm.gpus, { type: 'nvidia-tesla-a100', count: 8 }, 'the fake created an A100 VM');
  const cloud = lease.cloud as ComputeEngineCloud;
  assert.deepEqual(cloud, { project: PROJECT, zone: CENTRAL, spot: true, machine: 'a2-highgpu-8g', chips: 0, gpus: 8, gpuType: 'nvidia-tesla-a100' });
  assert.equal((await provider().release(req)).released, true);
});

test('an on-demand N1 VM with 4 T4s: guestAccelerators zones/<zone>/acceleratorTypes/nvidia-tesla-t4 × 4 and TERMINATE (a CPU VM on demand would MIGRATE)', async () => {
  const req = request({ machineType: 'n1-standard-32', gpus: { type: 'nvidia-tesla-t4', count: 4 }, spot: false });
  const lease = await provider().acquire(req, () => {}, undefined);

  const body = insertBody(req, CENTRAL);
  assert.deepEqual(body.guestAccelerators, [{ acceleratorType: `zones/${CENTRAL}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: 4 }]);
  assert.deepEqual(body.scheduling, { provisioningModel: 'STANDARD', automaticRestart: false, onHostMaintenance: 'TERMINATE' });
  assert.equal(metadataOf(body)['install-nvidia-driver'], 'True');
  assert.deepEqual(fake.instance(pathOf(req, CENTRAL))!.gpus, { type: 'nvidia-tesla-t4', count: 4 });
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: CENTRAL, spot: false, machine: 'n1-standard-32', chips: 0, gpus: 4, gpuType: 'nvidia-tesla-t4' });

  // The same settings without GPUs: a plain CPU VM, as before.
  const cpu = request({ machineType: 'n1-standard-32', spot: false });
  const cpuLease = await provider().acquire(cpu, () => {}, undefined);
  const cpuBody = insertBody(cpu, CENTRAL);
  assert.equal(cpuBody.scheduling?.onHostMaintenance, 'MIGRATE');
  assert.equal(cpuBody.guestAccelerators, undefined);
  assert.equal(metadataOf(cpuBody)['install-nvidia-driver'], undefined);
  assert.equal(cpuBody.disks?.[0]?.initializeParams?.sourceImage, 'projects/cos-cloud/global/images/family/cos-stable', 'CPU VMs keep cos-stable');
  assert.equal(cpuBody.disks?.[0]?.initializeParams?.diskType, undefined);
  assert.deepEqual(cpuLease.cloud, { project: PROJECT, zone: CENTRAL, spot: false, machine: 'n1-standard-32', chips: 0, gpus: 0 });
  await Promise.all([provider().release(req), provider().release(cpu)]);
});

test('an a3-highgpu-8g gets a gVNIC interface; a user-given boot image wins over the Deep Learning VM default', async () => {
  const image = 'projects/my-images-1/global/images/family/gpu-docker';
  const req = request({ machineType: 'a3-highgpu-8g', zones: [EAST], bootImage: image });
  const lease = await provider().acquire(req, () => {}, undefined);
  const body = insertBody(req, EAST);
  assert.equal(body.networkInterfaces?.[0]?.nicType, 'GVNIC');
  assert.equal(body.disks?.[0]?.initializeParams?.sourceImage, image);
  assert.equal((lease.cloud as ComputeEngineCloud).gpuType, 'nvidia-h100-80gb');
  await provider().release(req);
});

// ---- refused ---------------------------------------------------------------------------------

test('bad GPU requests are refused with TpuInvalidConfig before any request reaches the API', async () => {
  const total = fake.totalCalls();
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['gpus on a type that carries its own', { machineType: 'a2-highgpu-1g', gpus: { type: 'nvidia-tesla-t4', count: 1 } }, /gpus: a2-highgpu-1g comes with its GPUs \(1 × nvidia-tesla-a100\)/],
    ['a count the GPU does not come in', { gpus: { type: 'nvidia-tesla-t4', count: 3 } }, /gpus.count: nvidia-tesla-t4 comes 1, 2 or 4 per VM, not 3/],
    ['an unknown GPU type', { gpus: { type: 'nvidia-tesla-k81', count: 1 } }, /gpus.type: "nvidia-tesla-k81" does not attach to N1 machine types/],
    ['gpus on a non-N1 CPU type', { machineType: 'n2-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 1 } }, /gpus: n2-standard-8 cannot take GPUs/],
    ['gpus on a TPU VM', { machineType: 'ct6e-standard-4t', gpus: { type: 'nvidia-tesla-t4', count: 1 } }, /gpus: ct6e-standard-4t is a TPU VM/],
    ['more vCPUs than the count allows', { machineType: 'n1-standard-16', gpus: { type: 'nvidia-tesla-v100', count: 1 } }, /n1-standard-16 has 16 vCPUs, but at most 12 vCPUs go with 1 × nvidia-tesla-v100/],
    ['a GPU machine size that does not exist', { machineType: 'a2-highgpu-3g' }, /unknown GPU machine type "a2-highgpu-3g"/],
  ];
  for (const [label, compute, message] of cases) {
    const req = rawRequest(compute);
    await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuInvalidConfig', message), label);
  }
  assert.equal(fake.totalCalls(), total, 'no request reached the fake');
});

test('a zone that does not offer the GPU: the API refuses (A2 type: 400 no such machine type; N1 + V100: 404 no such accelerator type) → TpuInvalidConfig, no VM', async () => {
  const a2 = request({ machineType: 'a2-highgpu-1g', zones: [EAST] });
  await assert.rejects(provider().acquire(a2, () => {}, undefined), isFailure('TpuInvalidConfig', /Machine type with name 'a2-highgpu-1g' does not exist in zone 'us-east5-a'/));
  const v100 = request({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-v100', count: 1 }, zones: [EAST] });
  await assert.rejects(
    provider().acquire(v100, () => {}, undefined),
    isFailure('TpuInvalidConfig', /The resource 'projects\/recogdrive-gpu\/zones\/us-east5-a\/acceleratorTypes\/nvidia-tesla-v100' was not found/),
  );
  assert.equal(fake.instance(pathOf(a2, EAST)), undefined);
  assert.equal(fake.instance(pathOf(v100, EAST)), undefined);
  // Offered there, the same request goes through.
  fake.offerGpu(EAST, 'nvidia-tesla-v100');
  try {
    const again = request({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-v100', count: 1 }, zones: [EAST] });
    await provider().acquire(again, () => {}, undefined);
    await provider().release(again);
  } finally {
    fake.offerGpu(EAST, 'nvidia-tesla-v100', false);
  }
});

// ---- stockout and failover ----------------------------------------------------------------------

test('a T4 stockout in zone A → TpuStockout naming the accelerators (the failover moves to zone B), while a CPU VM in zone A is still created; zone B gives the GPU VM', async () => {
  fake.stockoutOf(EAST, 'nvidia-tesla-t4');
  const compute = { machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 2 }, zones: [EAST, CENTRAL] };
  const req = request(compute);
  let stockout: ApplicationFailure | undefined;
  await assert.rejects(provider().acquire(req, () => {}, undefined), (error) => {
    isFailure('TpuStockout', /ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: .*A n1-standard-8 VM instance with 2 nvidia-tesla-t4 accelerator\(s\) is currently unavailable in the us-east5-a zone/)(error);
    stockout = error as ApplicationFailure;
    return true;
  });
  assert.equal(fake.instance(pathOf(req, EAST)), undefined, 'the failed create left no VM');

  // What the stage workflow does with it: the next zone, at once.
  const step = nextStep(startFailover({ zones: [EAST, CENTRAL], spot: true }), describeComputeError({ message: stockout!.message }), DEFAULT_FAILOVER_POLICY);
  assert.equal(step.action, 'next-zone');
  assert.equal(step.zone, CENTRAL);
  assert.equal(step.backoffMs, 0);

  const cpu = request({ machineType: 'n1-standard-8', zones: [EAST] });
  await provider().acquire(cpu, () => {}, undefined);
  assert.equal(fake.instance(pathOf(cpu, EAST))?.status, 'RUNNING', 'only the T4 capacity is out');

  const lease = await provider().acquire({ ...req, placement: { zone: step.zone, spot: step.spot } }, () => {}, undefined);
  assert.equal(lease.cloud?.zone, CENTRAL);
  assert.equal((lease.cloud as ComputeEngineCloud).gpus, 2);
  await Promise.all([provider().release(req), provider().release(cpu)]);
  assert.equal(fake.instance(pathOf(req, CENTRAL)), undefined, 'release looked in every zone and deleted it');
});

test('a stockout of a GPU machine type in one zone fails only that type there (ZONE_RESOURCE_POOL_EXHAUSTED → TpuStockout)', async () => {
  fake.stockoutOf(CENTRAL, 'a2-highgpu-8g');
  const req = request({ machineType: 'a2-highgpu-8g' });
  await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuStockout', /ZONE_RESOURCE_POOL_EXHAUSTED: .*A a2-highgpu-8g VM instance is currently unavailable in the us-central1-a zone/));
  const other = request({ machineType: 'a2-highgpu-4g' });
  await provider().acquire(other, () => {}, undefined);
  await provider().release(other);
});

// ---- the rest works as for every VM -------------------------------------------------------------

test('a preempted spot GPU VM is lost to preemption; release deletes it; the janitor lists GPU VMs like any other', async () => {
  const req = request({ machineType: 'g2-standard-48' });
  await provider().acquire(req, () => {}, undefined);
  const path = pathOf(req, CENTRAL);

  const listed = (await provider().listLeases()).find((l) => l.name === nameOf(req));
  assert.ok(listed, 'the janitor sees the GPU VM');
  assert.equal(listed.labels.run, req.runId);
  assert.equal(listed.labels.stage, 'stage3');

  fake.preemptAt(path);
  const health = await provider().health(req);
  assert.equal(health.state, 'lost');
  assert.ok(health.state === 'lost' && health.failureClass === 'preemption', JSON.stringify(health));
  assert.equal(fake.instance(path)?.status, 'TERMINATED', 'spot → STOP: the preempted VM stays visible');
  assert.deepEqual(await provider().release(req), { name: nameOf(req), released: true });
  assert.equal(fake.instance(path), undefined);
});

test('an adopted VM is described by what Compute Engine reports: its guestAccelerators give the GPUs of the lease', async () => {
  const req = request({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 1 } });
  // An earlier try made it with 2 T4s (say, before the input changed): the lease says what the VM has.
  const [lro] = await instancesClient.insert({
    project: PROJECT,
    zone: CENTRAL,
    instanceResource: {
      name: nameOf(req),
      machineType: `zones/${CENTRAL}/machineTypes/n1-standard-8`,
      guestAccelerators: [{ acceleratorType: `zones/${CENTRAL}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: 2 }],
      scheduling: { provisioningModel: 'SPOT', onHostMaintenance: 'TERMINATE', automaticRestart: false },
      labels: { owner: 'recogdrive' },
      metadata: { items: [{ key: 'recogdrive-run', value: req.runId }] },
      disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: GPU_BOOT_IMAGE } }],
      networkInterfaces: [{ accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }] }],
    },
  });
  assert.ok(lro.latestResponse);
  const lease = await provider().acquire(req, () => {}, undefined);
  assert.deepEqual({ gpus: (lease.cloud as ComputeEngineCloud).gpus, type: (lease.cloud as ComputeEngineCloud).gpuType }, { gpus: 2, type: 'nvidia-tesla-t4' });
  await provider().release(req);
});
