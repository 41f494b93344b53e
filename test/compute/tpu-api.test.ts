/**
 * The tpu-api compute provider with the real `@google-cloud/tpu` v2 client, over gRPC, against
 * the local fake of the Cloud TPU API (test/fakes/tpu-api). No credentials, insecure channel.
 */
process.env.METADATA_SERVER_DETECTION = 'none';

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { v2 } from '@google-cloud/tpu';
import { ApplicationFailure } from '@temporalio/common';
import { TpuApiComputeProvider, type TpuAcquireProgress, type TpuApiProviderOptions, type TpuClient } from '../../activities/compute/tpu-api.ts';
import type { ComputeRequest } from '../../activities/types.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { computeName } from '../../pipeline/naming.ts';
import { FakeTpuApi } from '../fakes/tpu-api/server.ts';

const PROJECT = 'recogdrive-test';
const ZONE = 'us-east5-b';
const fake = new FakeTpuApi({ createDelayMs: 60 });
let client: TpuClient;
let runCounter = 0;

before(async () => {
  const port = await fake.start();
  client = new v2.TpuClient(TpuApiComputeProvider.fakeClientOptions(port));
});

after(async () => {
  await client.close();
  await fake.stop();
});

beforeEach(() => {
  fake.createDelayMs = 60;
  fake.stockout(ZONE, false);
  fake.quotaExceeded(ZONE, false);
  fake.withholdHostKeys(false);
});

function provider(options: Partial<TpuApiProviderOptions> = {}): TpuApiComputeProvider {
  return new TpuApiComputeProvider({ project: PROJECT, client, pollIntervalMs: 20, deleteRetryDelayMs: 10, note: () => {}, ...options });
}

/** A request of a fresh run (each test its own node name). */
function request(accelerator: 'v6e-4' | 'v6e-16' | 'v6e-8' = 'v6e-4', zones = [ZONE]): ComputeRequest {
  return {
    runId: `Exp_42/try-${++runCounter}`,
    stage: 'featureCache',
    attempt: 2,
    compute: ComputeSpec.parse({ backend: 'tpu-api', accelerator, zones, spot: true }),
  };
}

function nodeName(req: ComputeRequest, zone = ZONE): string {
  return `projects/${PROJECT}/locations/${zone}/nodes/${computeName(req.runId, req.stage, req.attempt)}`;
}

function snapshotCalls(): Record<string, number> {
  return { ...fake.calls };
}

function delta(before: Record<string, number>, method: keyof FakeTpuApi['calls']): number {
  return fake.calls[method] - (before[method] ?? 0);
}

function isFailure(type: string, nonRetryable: boolean) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    assert.equal(error.type, type, error.message);
    assert.equal(error.nonRetryable, nonRetryable, `nonRetryable of ${type}`);
    return true;
  };
}

test('acquire creates a v6e-4 node, waits for READY and returns its one worker with address, user and host key', async () => {
  const req = request('v6e-4');
  const beats: unknown[] = [];
  const lease = await provider().acquire(req, (d) => beats.push(d), undefined);

  assert.equal(lease.backend, 'tpu-api');
  assert.equal(lease.name, computeName(req.runId, req.stage, req.attempt));
  assert.equal(lease.workers.length, 1);
  const [worker] = lease.workers;
  assert.ok(worker?.kind === 'ssh');
  assert.match(worker.host, /^34\.\d+\.0\.2$/, 'the external IP when the node has one');
  assert.equal(worker.port, 22);
  assert.equal(worker.user, 'recogdrive');
  assert.equal(worker.hostKeys.length, 1);
  assert.match(worker.hostKeys[0]!, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5/);

  const node = fake.node(nodeName(req));
  assert.equal(node?.state, 'READY');
  assert.equal(node.spot, true);
  assert.deepEqual(
    { owner: node.labels.owner, stage: node.labels.stage, attempt: node.labels.attempt },
    { owner: 'recogdrive', stage: 'feature-cache', attempt: '2' },
  );
  assert.match(node.labels.run!, /^[a-z0-9-]{1,63}$/, 'run label cleaned to label rules');
  assert.match(node.labels['run-hash']!, /^[0-9a-f]{8}$/);
  assert.equal(node.metadata['recogdrive-run'], req.runId, 'the exact run id is kept in metadata');
  const progress = beats[0] as TpuAcquireProgress;
  assert.equal(progress.node, nodeName(req));
  assert.match(progress.operation ?? '', /\/operations\//, 'the operation name is heartbeated');
});

test('acquire of a v6e-16 slice returns its four workers (internal addresses when asked)', async () => {
  const req = request('v6e-16');
  const lease = await provider({ address: 'internal', sshUser: 'ubuntu' }).acquire(req, () => {}, undefined);
  assert.equal(lease.workers.length, 4);
  const hosts = lease.workers.map((w) => (w.kind === 'ssh' ? w.host : ''));
  assert.equal(new Set(hosts).size, 4, 'one distinct address per worker');
  for (const w of lease.workers) {
    assert.ok(w.kind === 'ssh');
    assert.match(w.host, /^10\./);
    assert.equal(w.user, 'ubuntu');
    assert.equal(w.hostKeys.length, 1);
  }
});

test('acquire without published host keys returns empty hostKeys and a note', async () => {
  fake.withholdHostKeys();
  const notes: string[] = [];
  const lease = await provider({ note: (m) => notes.push(m) }).acquire(request('v6e-8'), () => {}, undefined);
  assert.deepEqual(lease.workers[0]?.kind === 'ssh' ? lease.workers[0].hostKeys : undefined, []);
  assert.match(notes.join('\n'), /no SSH host keys/);
});

test('acquire twice gives one node: the second CreateNode gets ALREADY_EXISTS and adopts it', async () => {
  const req = request();
  const first = await provider().acquire(req, () => {}, undefined);
  const calls = snapshotCalls();
  const second = await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(second, first);
  assert.equal(delta(calls, 'CreateNode'), 1, 'create was tried (and refused)');
  assert.equal(fake.allNodes().filter((n) => n.name === nodeName(req)).length, 1);
});

test('a retried acquire with the operation in its resume details resumes it: no second CreateNode', async () => {
  fake.createDelayMs = 300;
  const req = request();
  const calls = snapshotCalls();
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
  assert.equal(fake.node(nodeName(req))?.state, 'CREATING');
  const opsBefore = fake.calls.GetOperation;
  const lease = await provider().acquire(req, () => {}, saved);
  assert.equal(lease.workers.length, 1);
  assert.equal(delta(calls, 'CreateNode'), 1, 'only the first try called CreateNode');
  assert.ok(fake.calls.GetOperation > opsBefore, 'the retry polled the saved operation');
});

test('stockout in the zone → TpuStockout (non-retryable; the workflow picks another zone), no node left', async () => {
  fake.stockout(ZONE);
  const req = request();
  await assert.rejects(provider().acquire(req, () => {}, undefined), (error) => {
    isFailure('TpuStockout', true)(error);
    assert.match((error as Error).message, /no more capacity in the zone "us-east5-b"/);
    return true;
  });
  assert.equal(fake.node(nodeName(req)), undefined);
});

test('quota exceeded → TpuQuotaExceeded (code 8 too, told apart by the message)', async () => {
  fake.quotaExceeded(ZONE);
  const calls = snapshotCalls();
  await assert.rejects(provider().acquire(request(), () => {}, undefined), isFailure('TpuQuotaExceeded', true));
  assert.equal(delta(calls, 'GetOperation'), 0, 'refused synchronously, no operation');
});

test('a node preempted before it is used → TpuPreempted', async () => {
  fake.createDelayMs = 0;
  const req = request();
  fake.seedNode(`projects/${PROJECT}/locations/${ZONE}`, computeName(req.runId, req.stage, req.attempt), 'v6e-4', 'PREEMPTED');
  await assert.rejects(provider().acquire(req, () => {}, undefined), isFailure('TpuPreempted', true));
});

test('release deletes the node', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  const result = await provider().release(req);
  assert.deepEqual(result, { name: computeName(req.runId, req.stage, req.attempt), released: true });
  assert.equal(fake.node(nodeName(req)), undefined);
});

test('release of a node that does not exist → released: false, no error', async () => {
  const req = request('v6e-4', [ZONE, 'us-east5-a']);
  const calls = snapshotCalls();
  assert.deepEqual(await provider().release(req), { name: computeName(req.runId, req.stage, req.attempt), released: false });
  assert.equal(delta(calls, 'DeleteNode'), 2, 'looked in every zone of the request');
});

test('delete failing twice then succeeding: the provider retries it itself and releases', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.failDeletes(2);
  const calls = snapshotCalls();
  assert.equal((await provider().release(req)).released, true);
  assert.equal(delta(calls, 'DeleteNode'), 3);
  assert.equal(fake.node(nodeName(req)), undefined);
});

test('delete failing more often than the provider retries → retryable TpuInternal (Temporal retries the activity)', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.failDeletes(2);
  await assert.rejects(provider({ deleteAttempts: 2 }).release(req), isFailure('TpuInternal', false));
  assert.equal((await provider().release(req)).released, true, 'the next try deletes it');
});

test('bad input fails with TpuInvalidConfig before any API call', async () => {
  const calls = fake.totalCalls();
  const base = request();
  const cases: Array<[string, TpuApiComputeProvider, ComputeRequest, RegExp]> = [
    ['unknown accelerator', provider(), { ...base, compute: { ...base.compute, accelerator: 'v6e-3' } as unknown as ComputeRequest['compute'] }, /unknown accelerator "v6e-3"/],
    ['empty zone list', provider(), { ...base, compute: { ...base.compute, zones: [] } as ComputeRequest['compute'] }, /no zone/],
    ['malformed zone', provider(), { ...base, compute: { ...base.compute, zones: ['us-east5'] } as ComputeRequest['compute'] }, /not a zone name/],
    ['malformed project', provider({ project: 'My_Project' }), base, /"My_Project" is not a Google Cloud project id/],
  ];
  for (const [label, p, req, message] of cases) {
    await assert.rejects(p.acquire(req, () => {}, undefined), (error) => {
      isFailure('TpuInvalidConfig', true)(error);
      assert.match((error as Error).message, message, label);
      return true;
    });
    await assert.rejects(p.release(req), isFailure('TpuInvalidConfig', true));
  }
  assert.equal(fake.totalCalls(), calls, 'no call reached the fake');
});
