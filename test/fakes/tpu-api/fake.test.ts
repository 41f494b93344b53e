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
