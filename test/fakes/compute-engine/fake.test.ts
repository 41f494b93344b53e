/** The Compute Engine fake, seen through the real `@google-cloud/compute` REST client: it must answer like the API. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InstancesClient, ZoneOperationsClient, type protos } from '@google-cloud/compute';
import { ComputeEngineComputeProvider } from '../../../activities/compute/compute-engine.ts';
import { FakeComputeEngine } from './server.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

const project = 'fake-project';
let now = 1_700_000_000_000;
const fake = new FakeComputeEngine({ createDelayMs: 100, bootDelayMs: 50, now: () => now });
let instances: InstancesClient;
let operations: ZoneOperationsClient;

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

function spec(name: string, zone: string, extra: Partial<Instance> = {}): Instance {
  return {
    name,
    machineType: `zones/${zone}/machineTypes/n2-standard-4`,
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/cos-cloud/global/images/family/cos-stable', diskSizeGb: 50 } }],
    networkInterfaces: [{ accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
    ...extra,
  };
}

async function insert(name: string, zone: string, extra: Partial<Instance> = {}): Promise<Operation> {
  const [lro] = await instances.insert({ project, zone, instanceResource: spec(name, zone, extra) });
  return lro.latestResponse as unknown as Operation;
}

const hasCode = (code: number, message?: RegExp) => (error: unknown): boolean => {
  const e = error as { code?: number; message?: string };
  assert.equal(e.code, code, e.message);
  if (message !== undefined) assert.match(e.message ?? '', message);
  return true;
};

test('insert returns a running operation; the VM goes PROVISIONING → STAGING (address) → RUNNING as the clock moves', async () => {
  const zone = 'us-east5-a';
  const op = await insert('vm-1', zone, { labels: { owner: 'recogdrive' }, metadata: { items: [{ key: 'recogdrive-run', value: 'Run/1' }] } });
  assert.equal(op.status, 'RUNNING');
  assert.equal(op.operationType, 'insert');
  assert.match(op.targetLink ?? '', /\/zones\/us-east5-a\/instances\/vm-1$/);

  const [provisioning] = await instances.get({ project, zone, instance: 'vm-1' });
  assert.equal(provisioning.status, 'PROVISIONING');
  assert.equal(provisioning.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP ?? undefined, undefined, 'no external address yet');
  assert.equal((await operations.wait({ project, zone, operation: op.name! }))[0].status, 'RUNNING', 'wait answers at once');

  now += 100;
  assert.equal((await operations.get({ project, zone, operation: op.name! }))[0].status, 'DONE');
  const [staging] = await instances.get({ project, zone, instance: 'vm-1' });
  assert.equal(staging.status, 'STAGING');
  now += 50;
  const [running] = await instances.get({ project, zone, instance: 'vm-1' });
  assert.equal(running.status, 'RUNNING');
  assert.match(running.networkInterfaces?.[0]?.networkIP ?? '', /^10\./);
  assert.match(running.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP ?? '', /^34\./);
  assert.deepEqual(running.labels, { owner: 'recogdrive' });
  assert.deepEqual(running.metadata?.items?.map((i) => [i.key, i.value]), [['recogdrive-run', 'Run/1']]);
  assert.match(running.id?.toString() ?? '', /^\d{19}$/);
  assert.ok(!Number.isNaN(Date.parse(running.creationTimestamp ?? '')));
});

test('insert of an existing name → 409 (ABORTED in the client), unknown VM → 404 NOT_FOUND, unoffered machine type → 400 with the API wording', async () => {
  const zone = 'us-east5-a';
  await assert.rejects(insert('vm-1', zone), hasCode(10, /already exists/));
  await assert.rejects(instances.get({ project, zone, instance: 'nope' }), hasCode(5, /was not found/));
  fake.withdrawMachineType(zone, 'n2-standard-4');
  await assert.rejects(insert('vm-x', zone), hasCode(3, /Machine type with name 'n2-standard-4' does not exist in zone 'us-east5-a'/));
  fake.withdrawMachineType(zone, 'n2-standard-4', false);
  await assert.rejects(insert('vm-x', zone, { labels: { Owner: 'x' } }), hasCode(3, /Label key 'Owner' violates format constraints/));
  await assert.rejects(insert('vm-x', zone, { scheduling: { provisioningModel: 'SPOT', automaticRestart: true } }), hasCode(3, /automaticRestart/));
});

test('stockout and quota end the insert operation with GCE error codes and leave no VM; sync quota is a 403', async () => {
  const zone = 'us-east5-b';
  fake.stockout(zone);
  const stockout = await insert('vm-s', zone);
  now += 100;
  const [failed] = await operations.get({ project, zone, operation: stockout.name! });
  assert.equal(failed.status, 'DONE');
  assert.equal(failed.error?.errors?.[0]?.code, 'ZONE_RESOURCE_POOL_EXHAUSTED');
  assert.match(failed.error?.errors?.[0]?.message ?? '', /does not have enough resources available to fulfill the request/);
  assert.equal(failed.httpErrorStatusCode, 503);
  await assert.rejects(instances.get({ project, zone, instance: 'vm-s' }), hasCode(5));
  fake.stockout(zone, false);

  fake.quotaExceeded('us-east5', true, { metric: 'N2_CPUS', limit: 8 });
  const quota = await insert('vm-q', zone);
  now += 100;
  const [quotaOp] = await operations.get({ project, zone, operation: quota.name! });
  assert.equal(quotaOp.error?.errors?.[0]?.code, 'QUOTA_EXCEEDED');
  assert.equal(quotaOp.error?.errors?.[0]?.message, "Quota 'N2_CPUS' exceeded.  Limit: 8.0 in region us-east5.");
  fake.quotaExceeded('us-east5', true, { sync: true });
  await assert.rejects(insert('vm-q2', zone), hasCode(7, /Quota 'CPUS' exceeded/));
  fake.quotaExceeded('us-east5', false);
});

test('list filters on labels server-side and pages with pageToken/maxResults; aggregatedList groups by zone; a bad filter is a 400', async () => {
  const zone = 'us-east5-c';
  for (let i = 0; i < 5; i++) fake.seedInstance({ project, zone, name: `l-${i}`, labels: i % 2 === 0 ? { owner: 'recogdrive' } : { owner: 'someone' } });
  fake.seedInstance({ project, zone: 'us-west4-a', name: 'l-west', labels: { owner: 'recogdrive' } });
  const names: string[] = [];
  for await (const vm of instances.listAsync({ project, zone, filter: 'labels.owner=recogdrive', maxResults: 2 }, { autoPaginate: false })) names.push(vm.name!);
  assert.deepEqual(names, ['l-0', 'l-2', 'l-4']);
  const pages = fake.requests.filter((r) => r.method === 'instances.list' && r.query.filter === 'labels.owner=recogdrive');
  assert.equal(pages.length, 2, 'two pages of two');

  const [page] = await instances.list({ project, zone, filter: '(labels.owner = "someone") AND (status = RUNNING)' }, { autoPaginate: false });
  assert.deepEqual(page.map((vm) => vm.name), ['l-1', 'l-3']);

  const byZone: Record<string, string[]> = {};
  for await (const [scope, list] of instances.aggregatedListAsync({ project, filter: 'labels.owner=recogdrive' }, { autoPaginate: false })) {
    byZone[scope] = (list.instances ?? []).map((vm) => vm.name!);
  }
  assert.deepEqual(byZone['zones/us-west4-a'], ['l-west']);
  assert.deepEqual(byZone['zones/us-east5-c'], ['l-0', 'l-2', 'l-4']);
  await assert.rejects(instances.list({ project, zone, filter: 'labels.owner = (' }, { autoPaginate: false }), hasCode(3, /filter/));
});

test('a preempted spot VM is TERMINATED and GCE lists a compute.instances.preempted operation for it; DELETE action removes it', async () => {
  const zone = 'us-east5-a';
  const stop = fake.seedInstance({ project, zone, name: 'spot-stop', spot: true });
  fake.preemptAt('spot-stop', now + 10);
  assert.equal((await instances.get({ project, zone, instance: 'spot-stop' }))[0].status, 'RUNNING');
  now += 10;
  const [vm] = await instances.get({ project, zone, instance: 'spot-stop' });
  assert.equal(vm.status, 'TERMINATED');
  assert.equal(vm.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP ?? undefined, undefined, 'the ephemeral external IP is gone');
  const [ops] = await operations.list({ project, zone, filter: 'operationType="compute.instances.preempted"' }, { autoPaginate: false });
  assert.equal(ops.length, 1);
  assert.equal(String(ops[0]!.targetId), stop.id);
  assert.equal(ops[0]!.statusMessage, 'Instance was preempted.');
  assert.equal(ops[0]!.user, 'system');

  await insert('spot-del', zone, { scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE', onHostMaintenance: 'TERMINATE', automaticRestart: false } });
  now += 150;
  fake.preemptAt('spot-del');
  await assert.rejects(instances.get({ project, zone, instance: 'spot-del' }), hasCode(5));
  assert.deepEqual(fake.operationsOf(`projects/${project}/zones/${zone}/instances/spot-del`).map((o) => o.operationType), ['insert', 'compute.instances.preempted', 'delete']);
  assert.throws(() => fake.preemptAt('vm-1'), /not a spot VM/);
});

test('maintenance: terminate and host-error (without automatic restart) leave the VM TERMINATED with their system operation; with it, a host error restarts it in place; repair shows REPAIRING', async () => {
  const zone = 'us-east5-a';
  fake.seedInstance({ project, zone, name: 'm-1' });
  fake.maintenance('m-1', 'terminate');
  assert.equal((await instances.get({ project, zone, instance: 'm-1' }))[0].status, 'TERMINATED');
  fake.seedInstance({ project, zone, name: 'm-3', automaticRestart: false });
  fake.maintenance('m-3', 'host-error');
  assert.equal((await instances.get({ project, zone, instance: 'm-3' }))[0].status, 'TERMINATED');
  fake.seedInstance({ project, zone, name: 'm-4', createdAt: now - 60_000 });
  now += 1000;
  fake.maintenance('m-4', 'host-error');
  const [restarted] = await instances.get({ project, zone, instance: 'm-4' });
  assert.equal(restarted.status, 'RUNNING');
  assert.ok(Date.parse(restarted.lastStartTimestamp ?? '') === now, 'restarted now');
  const [ops] = await operations.list({ project, zone, filter: 'operationType="compute.instances.hostError"' }, { autoPaginate: false });
  assert.deepEqual(ops.map((o) => o.targetLink?.split('/').pop()), ['m-3', 'm-4']);
  const [terminations] = await operations.list({ project, zone, filter: 'operationType="compute.instances.terminateOnHostMaintenance"' }, { autoPaginate: false });
  assert.deepEqual(terminations.map((o) => o.targetLink?.split('/').pop()), ['m-1']);
  fake.seedInstance({ project, zone, name: 'm-2' });
  fake.maintenance('m-2', 'repair');
  assert.equal((await instances.get({ project, zone, instance: 'm-2' }))[0].status, 'REPAIRING');
});

test('guest attributes carry the host keys under namespace hostkeys (base64 value); withheld → 404; failing calls and deletes', async () => {
  const zone = 'us-east5-a';
  const [attrs] = await instances.getGuestAttributes({ project, zone, instance: 'm-2', queryPath: 'hostkeys/' });
  const items = attrs.queryValue?.items ?? [];
  assert.equal(items.length, 1);
  assert.equal(items[0]!.namespace, 'hostkeys');
  assert.equal(items[0]!.key, 'ssh-ed25519');
  assert.equal(`${items[0]!.key} ${items[0]!.value}`, fake.instance('m-2')!.hostKeys[0]);
  fake.withholdHostKeys();
  await assert.rejects(instances.getGuestAttributes({ project, zone, instance: 'm-2', queryPath: 'hostkeys/' }), hasCode(5));
  fake.withholdHostKeys(false);

  fake.failDeletes(1);
  await assert.rejects(instances.delete({ project, zone, instance: 'm-2' }), hasCode(13, /Internal error/));
  const [lro] = await instances.delete({ project, zone, instance: 'm-2' });
  const [done] = await operations.wait({ project, zone, operation: (lro.latestResponse as unknown as Operation).name! });
  assert.equal(done.status, 'DONE');
  assert.equal(fake.instance('m-2'), undefined);
  assert.ok(fake.calls['instances.delete'] >= 2);
});
