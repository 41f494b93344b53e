/** The Cloud TPU API fake's own fault controls, seen through the real v2 client. */
process.env.METADATA_SERVER_DETECTION = 'none';

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { v2 } from '@google-cloud/tpu';
import { FakeTpuApi } from './server.ts';

const parent = (zone: string): string => `projects/fake-project/locations/${zone}`;
let now = 1_000_000;
const fake = new FakeTpuApi({ createDelayMs: 100, now: () => now });
let client: InstanceType<typeof v2.TpuClient>;

before(async () => {
  const port = await fake.start();
  client = new v2.TpuClient({ apiEndpoint: '127.0.0.1', port, sslCreds: grpc.credentials.createInsecure() });
});
after(async () => {
  await client.close();
  await fake.stop();
});

test('the fake creates through an operation: CREATING without endpoints, then READY with one endpoint per worker', async () => {
  const [op] = await client.createNode({ parent: parent('us-east5-b'), nodeId: 'slice', node: { acceleratorType: 'v6e-32', runtimeVersion: 'v2-alpha-tpuv6e' } });
  const [creating] = await client.getNode({ name: `${parent('us-east5-b')}/nodes/slice` });
  assert.equal(creating.state, 'CREATING');
  assert.equal(creating.networkEndpoints?.length, 0);
  assert.equal((await client.checkCreateNodeProgress(op.name!)).done, false);
  now += 100;
  const done = await client.checkCreateNodeProgress(op.name!);
  assert.equal(done.done, true);
  const [ready] = await client.getNode({ name: `${parent('us-east5-b')}/nodes/slice` });
  assert.equal(ready.state, 'READY');
  assert.equal(ready.networkEndpoints?.length, 8);
});

test('the fake preempts a node at the given time and reports maintenance', async () => {
  const name = `${parent('us-east5-a')}/nodes/spot-node`;
  fake.seedNode(parent('us-east5-a'), 'spot-node', 'v6e-4');
  fake.preemptAt(name, now + 50);
  assert.equal((await client.getNode({ name }))[0].state, 'READY');
  now += 50;
  assert.equal((await client.getNode({ name }))[0].state, 'PREEMPTED');

  fake.seedNode(parent('us-east5-a'), 'maint-node', 'v6e-4');
  fake.maintenance(`${parent('us-east5-a')}/nodes/maint-node`, true);
  const [node] = await client.getNode({ name: `${parent('us-east5-a')}/nodes/maint-node` });
  assert.equal(node.health, 'UNHEALTHY_MAINTENANCE');
  assert.equal(node.state, 'TERMINATED');
});

test('the fake lists nodes per zone and across zones ("-"), and answers NOT_FOUND / ALREADY_EXISTS like the API', async () => {
  const [inA] = await client.listNodes({ parent: parent('us-east5-a') });
  assert.deepEqual(inA.map((n) => n.name?.split('/').pop()).sort(), ['maint-node', 'spot-node']);
  const [all] = await client.listNodes({ parent: parent('-') });
  assert.equal(all.length, 3);
  await assert.rejects(client.getNode({ name: `${parent('us-east5-a')}/nodes/nope` }), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(
    client.createNode({ parent: parent('us-east5-a'), nodeId: 'spot-node', node: { acceleratorType: 'v6e-4', runtimeVersion: 'v2-alpha-tpuv6e' } }),
    (e: { code?: number }) => e.code === grpc.status.ALREADY_EXISTS,
  );
  await assert.rejects(
    client.createNode({ parent: parent('us-east5-a'), nodeId: 'bad', node: { acceleratorType: 'v6e-3', runtimeVersion: 'v2-alpha-tpuv6e' } }),
    (e: { code?: number }) => e.code === grpc.status.INVALID_ARGUMENT,
  );
});

const QR_ZONE = 'europe-west4-a';
const qrParent = parent(QR_ZONE);
let queued1Operation = '';
const qrSpec = (nodeId: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  tpu: { nodeSpec: [{ parent: qrParent, nodeId, node: { acceleratorType: 'v6e-4', runtimeVersion: 'v2-alpha-tpuv6e', labels: { owner: 'recogdrive' }, metadata: { 'recogdrive-run': 'Run/1' } } }] },
  ...extra,
});

test('the fake queues a queued resource: ACCEPTED, WAITING_FOR_RESOURCES until capacity arrives, PROVISIONING with its node CREATING, then ACTIVE with the node READY', async () => {
  fake.queueDelayMs = 200;
  const [op] = await client.createQueuedResource({ parent: qrParent, queuedResourceId: 'queued-1', requestId: 'req-1', queuedResource: qrSpec('queued-1', { spot: {} }) });
  queued1Operation = op.name!;
  const done = await client.checkCreateQueuedResourceProgress(op.name!);
  assert.equal(done.done, true, 'the create operation ends when the request is accepted');
  const name = `${qrParent}/queuedResources/queued-1`;
  const nodeName = `${qrParent}/nodes/queued-1`;
  const state = async (): Promise<unknown> => (await client.getQueuedResource({ name }))[0].state?.state;
  assert.equal(await state(), 'ACCEPTED');
  now += 1;
  assert.equal(await state(), 'WAITING_FOR_RESOURCES');
  await assert.rejects(client.getNode({ name: nodeName }), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND, 'no node while queued');
  now += 199;
  assert.equal(await state(), 'PROVISIONING');
  assert.equal((await client.getNode({ name: nodeName }))[0].state, 'CREATING');
  now += 100;
  assert.equal(await state(), 'ACTIVE');
  const [node] = await client.getNode({ name: nodeName });
  assert.equal(node.state, 'READY');
  assert.equal(node.queuedResource, name);
  assert.equal(node.schedulingConfig?.spot, true, 'the spot tier makes a spot node');
  assert.equal(node.labels?.owner, 'recogdrive', 'with the node spec labels');
  assert.equal(node.networkEndpoints?.length, 1);
  const [qr] = await client.getQueuedResource({ name });
  assert.deepEqual(qr.spot, {});
  assert.equal(qr.tpu?.nodeSpec?.[0]?.node?.metadata?.['recogdrive-run'], 'Run/1');
  fake.queueDelayMs = 0;
});

test('the fake keeps a queued resource waiting while its zone is stocked out, FAILS it at its valid-until time, and provisions once capacity is back', async () => {
  fake.stockout(QR_ZONE);
  await client.createQueuedResource({ parent: qrParent, queuedResourceId: 'starved', queuedResource: qrSpec('starved', { queueingPolicy: { validUntilDuration: { seconds: 60 } } }) });
  await client.createQueuedResource({ parent: qrParent, queuedResourceId: 'patient', queuedResource: qrSpec('patient') });
  const stateOf = async (id: string) => (await client.getQueuedResource({ name: `${qrParent}/queuedResources/${id}` }))[0].state;
  now += 59_999;
  assert.equal((await stateOf('starved'))?.state, 'WAITING_FOR_RESOURCES');
  now += 1;
  const failed = await stateOf('starved');
  assert.equal(failed?.state, 'FAILED');
  assert.equal(failed?.failedData?.error ?? undefined, undefined, 'expired without error data');
  assert.equal((await stateOf('patient'))?.state, 'WAITING_FOR_RESOURCES', 'no limit: still waiting');
  fake.stockout(QR_ZONE, false);
  assert.equal((await stateOf('patient'))?.state, 'PROVISIONING');
  now += 100;
  assert.equal((await stateOf('patient'))?.state, 'ACTIVE');
});

test('the fake fails a queued resource with a given error on demand', async () => {
  await client.createQueuedResource({ parent: qrParent, queuedResourceId: 'doomed', queuedResource: qrSpec('doomed') });
  fake.failQueuedResource(`${qrParent}/queuedResources/doomed`, { code: 8, message: 'no more capacity' });
  const [qr] = await client.getQueuedResource({ name: `${qrParent}/queuedResources/doomed` });
  assert.equal(qr.state?.state, 'FAILED');
  assert.deepEqual({ code: qr.state?.failedData?.error?.code, message: qr.state?.failedData?.error?.message }, { code: 8, message: 'no more capacity' });
});

test('the fake preempts a queued resource node: the node PREEMPTED, the queued resource SUSPENDED by the SERVICE', async () => {
  const name = `${qrParent}/queuedResources/patient`;
  fake.preemptAt(`${qrParent}/nodes/patient`, now + 10);
  now += 10;
  assert.equal((await client.getNode({ name: `${qrParent}/nodes/patient` }))[0].state, 'PREEMPTED');
  const [qr] = await client.getQueuedResource({ name });
  assert.equal(qr.state?.state, 'SUSPENDED');
  assert.equal(qr.state?.stateInitiator, 'SERVICE');
});

test('the fake answers a repeated create with the same requestId with the first operation, another with ALREADY_EXISTS', async () => {
  const [first] = await client.createQueuedResource({ parent: qrParent, queuedResourceId: 'queued-1', requestId: 'req-1', queuedResource: qrSpec('queued-1') });
  assert.equal(first.name, queued1Operation, 'the operation of the first create');
  await assert.rejects(
    client.createQueuedResource({ parent: qrParent, queuedResourceId: 'queued-1', requestId: 'req-2', queuedResource: qrSpec('queued-1') }),
    (e: { code?: number }) => e.code === grpc.status.ALREADY_EXISTS,
  );
  assert.equal(fake.allQueuedResources().filter((q) => q.queuedResourceId === 'queued-1').length, 1);
});

test('the fake refuses to delete a queued resource holding a node without force; with force the node goes too', async () => {
  const name = `${qrParent}/queuedResources/queued-1`;
  await assert.rejects(client.deleteQueuedResource({ name }), (e: { code?: number }) => e.code === grpc.status.FAILED_PRECONDITION);
  const [op] = await client.deleteQueuedResource({ name, force: true });
  assert.equal((await client.checkDeleteQueuedResourceProgress(op.name!)).done, true);
  await assert.rejects(client.getQueuedResource({ name }), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(client.getNode({ name: `${qrParent}/nodes/queued-1` }), (e: { code?: number }) => e.code === grpc.status.NOT_FOUND);
  // a FAILED one needs no force.
  await client.deleteQueuedResource({ name: `${qrParent}/queuedResources/doomed` });
  assert.equal(fake.queuedResource(`${qrParent}/queuedResources/doomed`), undefined);
});

test('the fake pages List answers under maxPageSize and fails the calls it is told to', async () => {
  fake.maxPageSize = 1;
  const [page1, next] = await client.listQueuedResources({ parent: qrParent, pageSize: 10 }, { autoPaginate: false });
  assert.equal(page1.length, 1);
  assert.equal(next?.pageToken, '1');
  const all: string[] = [];
  for await (const qr of client.listQueuedResourcesAsync({ parent: qrParent })) all.push(qr.name!.split('/').pop()!);
  assert.deepEqual(all, ['patient', 'starved']);
  fake.maxPageSize = Number.POSITIVE_INFINITY;
  fake.failNext('GetQueuedResource', 1, grpc.status.UNAVAILABLE);
  await assert.rejects(client.getQueuedResource({ name: `${qrParent}/queuedResources/patient` }), (e: { code?: number }) => e.code === grpc.status.UNAVAILABLE);
  assert.equal((await client.getQueuedResource({ name: `${qrParent}/queuedResources/patient` }))[0].name, `${qrParent}/queuedResources/patient`);
});

test('addressFor may give each worker its endpoint port and host keys (an emulator pointing workers at a local sshd)', async () => {
  const local = new FakeTpuApi({ createDelayMs: 0, addressFor: (_node, worker) => ({ ipAddress: '127.0.0.1', port: 40022 + worker, hostKeys: [`ssh-ed25519 KEY${worker}`] }) });
  const localClient = new v2.TpuClient({ apiEndpoint: '127.0.0.1', port: await local.start(), sslCreds: grpc.credentials.createInsecure() });
  try {
    local.seedNode(parent('us-east5-b'), 'local-slice', 'v6e-16');
    const name = `${parent('us-east5-b')}/nodes/local-slice`;
    const [node] = await localClient.getNode({ name });
    assert.deepEqual(
      node.networkEndpoints?.map((e) => [e.ipAddress, e.port]),
      [0, 1, 2, 3].map((i) => ['127.0.0.1', 40022 + i]),
    );
    const [attrs] = await localClient.getGuestAttributes({ name, queryPath: 'hostkeys/', workerIds: ['2'] });
    assert.equal(attrs.guestAttributes?.[0]?.queryValue?.items?.[0]?.value, 'ssh-ed25519 KEY2');
    // the defaults stay: port 8470, a derived key.
    const [plain] = await client.getNode({ name: `${parent('us-east5-a')}/nodes/spot-node` });
    assert.equal(plain.networkEndpoints?.[0]?.port, 8470);
  } finally {
    await localClient.close();
    await local.stop();
  }
});
