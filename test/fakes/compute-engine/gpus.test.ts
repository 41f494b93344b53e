/** The Compute Engine fake's GPU checks, through the real `@google-cloud/compute` REST client: it must refuse what the API refuses. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InstancesClient, ZoneOperationsClient, type protos } from '@google-cloud/compute';
import { ComputeEngineComputeProvider } from '../../../activities/compute/compute-engine.ts';
import { FakeComputeEngine } from './server.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

const project = 'fake-gpu-project';
const ZONE = 'us-central1-a';
let now = 1_700_000_000_000;
const fake = new FakeComputeEngine({ createDelayMs: 100, now: () => now });
let instances: InstancesClient;
let operations: ZoneOperationsClient;
let counter = 0;

before(async () => {
  const port = await fake.start();
  instances = new InstancesClient(ComputeEngineComputeProvider.fakeClientOptions(port));
  operations = new ZoneOperationsClient(ComputeEngineComputeProvider.fakeClientOptions(port));
});
after(async () => {
  await instances.close();
  await operations.close();
  await fake.stop();
});

const TERMINATE = { onHostMaintenance: 'TERMINATE', automaticRestart: false };

function spec(machineType: string, extra: Partial<Instance> = {}, zone = ZONE): Instance {
  return {
    name: `gpu-vm-${++counter}`,
    machineType: `zones/${zone}/machineTypes/${machineType}`,
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570', diskSizeGb: 100, diskType: `zones/${zone}/diskTypes/pd-balanced` } }],
    networkInterfaces: [{ accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
    scheduling: TERMINATE,
    ...extra,
  };
}

const t4 = (count: number, zone = ZONE) => [{ acceleratorType: `zones/${zone}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: count }];

async function insert(resource: Instance, zone = ZONE): Promise<Operation> {
  const [lro] = await instances.insert({ project, zone, instanceResource: resource });
  return lro.latestResponse as unknown as Operation;
}

const hasCode = (code: number, message: RegExp) => (error: unknown): boolean => {
  const e = error as { code?: number; message?: string };
  assert.equal(e.code, code, e.message);
  assert.match(e.message ?? '', message);
  return true;
};

test('a GPU VM that would live-migrate (a standard VM without onHostMaintenance, or MIGRATE) → 400 "Instances with guest accelerators do not support live migration."; a spot one defaults to TERMINATE', async () => {
  const liveMigration = /^Instances with guest accelerators do not support live migration\.$/;
  await assert.rejects(insert(spec('a2-highgpu-1g', { scheduling: {} })), hasCode(3, liveMigration));
  await assert.rejects(insert(spec('n1-standard-8', { guestAccelerators: t4(1), scheduling: { onHostMaintenance: 'MIGRATE' } })), hasCode(3, liveMigration));
  const op = await insert(spec('n1-standard-8', { guestAccelerators: t4(1), scheduling: { provisioningModel: 'SPOT' } }));
  assert.equal(op.operationType, 'insert');
  // A CPU VM may still migrate.
  await insert(spec('n1-standard-8', { scheduling: {} }));
});

test('N1 guestAccelerators: a count the GPU does not come in, more vCPUs than the count allows, a type the zone lacks or that does not exist, GPUs on a non-N1 type → refused', async () => {
  await assert.rejects(insert(spec('n1-standard-8', { guestAccelerators: t4(3) })), hasCode(3, /'resource\.guestAccelerators\[0\]\.acceleratorCount': '3'\. Accelerator count 3 is not supported for accelerator type 'nvidia-tesla-t4'/));
  await assert.rejects(
    insert(spec('n1-standard-16', { guestAccelerators: [{ acceleratorType: `zones/${ZONE}/acceleratorTypes/nvidia-tesla-v100`, acceleratorCount: 1 }] })),
    hasCode(3, /At most 12 vCPUs can be used along with 1 accelerator cards in an instance\./),
  );
  await assert.rejects(
    insert(spec('n1-standard-8', { guestAccelerators: [{ acceleratorType: 'zones/us-east5-a/acceleratorTypes/nvidia-tesla-v100', acceleratorCount: 1 }] }, 'us-east5-a'), 'us-east5-a'),
    hasCode(5, /The resource 'projects\/fake-gpu-project\/zones\/us-east5-a\/acceleratorTypes\/nvidia-tesla-v100' was not found/),
  );
  await assert.rejects(
    insert(spec('n1-standard-8', { guestAccelerators: [{ acceleratorType: `zones/${ZONE}/acceleratorTypes/nvidia-tesla-k81`, acceleratorCount: 1 }] })),
    hasCode(5, /acceleratorTypes\/nvidia-tesla-k81' was not found/),
  );
  await assert.rejects(insert(spec('n1-standard-8', { guestAccelerators: t4(1, 'us-central1-b') })), hasCode(5, /was not found/), 'an accelerator of another zone');
  await assert.rejects(insert(spec('n2-standard-8', { guestAccelerators: t4(1) })), hasCode(3, /Accelerator type 'nvidia-tesla-t4' cannot be attached to machine type 'n2-standard-8'/));
  await assert.rejects(insert(spec('f1-micro', { guestAccelerators: t4(1) })), hasCode(3, /cannot be attached to machine type 'f1-micro'/));
  assert.equal(fake.allInstances().filter((vm) => vm.gpus?.type === 'nvidia-tesla-t4' && vm.machineType !== 'n1-standard-8').length, 0);
});

test('accelerator-optimized types: only in their sizes and in zones offering their GPU; other GPUs cannot be added; A3 needs gVNIC, A3/G2 no pd-standard; GCE lists their GPUs in guestAccelerators', async () => {
  await assert.rejects(insert(spec('a2-highgpu-3g')), hasCode(3, /Machine type with name 'a2-highgpu-3g' does not exist in zone 'us-central1-a'/));
  await assert.rejects(insert(spec('g2-standard-5')), hasCode(3, /'g2-standard-5' does not exist/));
  await assert.rejects(insert(spec('a2-highgpu-1g', {}, 'us-east5-a'), 'us-east5-a'), hasCode(3, /Machine type with name 'a2-highgpu-1g' does not exist in zone 'us-east5-a'/), 'us-east5-a has no A100');
  await assert.rejects(insert(spec('a2-highgpu-1g', { guestAccelerators: t4(1) })), hasCode(3, /comes with 1 nvidia-tesla-a100 accelerator cards/));
  await assert.rejects(insert(spec('a3-highgpu-8g')), hasCode(3, /supports only the GVNIC network interface type/));
  const noDiskType = spec('g2-standard-8');
  noDiskType.disks![0]!.initializeParams!.diskType = undefined;
  await assert.rejects(insert(noDiskType), hasCode(3, /Disk type pd-standard is not supported for machine type g2-standard-8/));

  const a3 = spec('a3-highgpu-8g', { networkInterfaces: [{ nicType: 'GVNIC', accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }] }] });
  await insert(a3);
  // Asking for exactly the type's own GPUs is accepted.
  const a2 = spec('a2-highgpu-2g', { guestAccelerators: [{ acceleratorType: `zones/${ZONE}/acceleratorTypes/nvidia-tesla-a100`, acceleratorCount: 2 }] });
  await insert(a2);
  const [vm] = await instances.get({ project, zone: ZONE, instance: a3.name! });
  assert.deepEqual(
    vm.guestAccelerators?.map((g) => [g.acceleratorType, g.acceleratorCount]),
    [[`https://www.googleapis.com/compute/v1/projects/${project}/zones/${ZONE}/acceleratorTypes/nvidia-h100-80gb`, 8]],
  );
  assert.equal(vm.networkInterfaces?.[0]?.nicType, 'GVNIC');
  assert.equal(fake.instance(`projects/${project}/zones/${ZONE}/instances/${a2.name}`)?.diskType, 'pd-balanced');
});

test('a GPU stockout in a zone fails the create operation of matching VMs with the API\'s details; offerGpu changes the catalogue', async () => {
  fake.stockoutOf(ZONE, 'nvidia-tesla-t4');
  try {
    const op = await insert(spec('n1-standard-4', { guestAccelerators: t4(1) }));
    const cpu = await insert(spec('n1-standard-4'));
    now += 100;
    const [done] = await operations.get({ project, zone: ZONE, operation: op.name! });
    assert.equal(done.status, 'DONE');
    const [error] = done.error?.errors ?? [];
    assert.equal(error?.code, 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS');
    const details = error?.errorDetails ?? [];
    assert.deepEqual(details.find((d) => d.errorInfo)?.errorInfo?.metadatas, { zone: ZONE, vmType: 'n1-standard-4', attachment: 'nvidia-tesla-t4:1', zonesAvailable: '' });
    assert.match(details.find((d) => d.localizedMessage)?.localizedMessage?.message ?? '', /^A n1-standard-4 VM instance with 1 nvidia-tesla-t4 accelerator\(s\) is currently unavailable in the us-central1-a zone\./);
    assert.equal((await operations.get({ project, zone: ZONE, operation: cpu.name! }))[0].error ?? undefined, undefined, 'the CPU VM was created');
  } finally {
    fake.stockoutOf(ZONE, 'nvidia-tesla-t4', false);
  }
  fake.offerGpu(ZONE, 'nvidia-tesla-t4', false);
  try {
    await assert.rejects(insert(spec('n1-standard-4', { guestAccelerators: t4(1) })), hasCode(5, /was not found/));
  } finally {
    fake.offerGpu(ZONE, 'nvidia-tesla-t4');
  }
});
