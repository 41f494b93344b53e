/**
 * The tpu-api compute provider with the real `@google-cloud/tpu` v2 client, over gRPC, against
 * the local fake of the Cloud TPU API (test/fakes/tpu-api). No credentials, insecure channel.
 */
process.env.METADATA_SERVER_DETECTION = 'none';

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { v2 } from '@google-cloud/tpu';
import { ApplicationFailure } from '@temporalio/common';
import ssh2 from 'ssh2';
import { TpuApiComputeProvider, type TpuAcquireProgress, type TpuApiProviderOptions, type TpuClient } from '../../activities/compute/tpu-api.ts';
import type { ComputeRequest } from '../../activities/types.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { computeName } from '../../pipeline/naming.ts';
import { FakeTpuApi } from '../fakes/tpu-api/server.ts';

const PROJECT = 'recogdrive-test';
const ZONE = 'us-east5-b';
const ZONE_A = 'us-east5-a';
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
  fake.queueDelayMs = 0;
  fake.maxPageSize = Number.POSITIVE_INFINITY;
  for (const zone of [ZONE, ZONE_A]) {
    fake.stockout(zone, false);
    fake.quotaExceeded(zone, false);
  }
  fake.withholdHostKeys(false);
});

function provider(options: Partial<TpuApiProviderOptions> = {}): TpuApiComputeProvider {
  return new TpuApiComputeProvider({ project: PROJECT, client, pollIntervalMs: 20, deleteRetryDelayMs: 10, note: () => {}, ...options });
}

/** A request of a fresh run (each test its own node name). */
function request(
  accelerator: 'v6e-4' | 'v6e-16' | 'v6e-8' = 'v6e-4',
  zones = [ZONE],
  extra: { provisioning?: 'direct' | 'queued'; spot?: boolean; placement?: ComputeRequest['placement']; project?: string; runId?: string } = {},
): ComputeRequest {
  return {
    runId: extra.runId ?? `Exp_42/try-${++runCounter}`,
    stage: 'featureCache',
    attempt: 2,
    compute: ComputeSpec.parse({ backend: 'tpu-api', accelerator, zones, spot: extra.spot ?? true, provisioning: extra.provisioning ?? 'direct' }),
    ...(extra.placement !== undefined ? { placement: extra.placement } : {}),
    ...(extra.project !== undefined ? { project: extra.project } : {}),
  };
}

function nodeName(req: ComputeRequest, zone = ZONE, project = PROJECT): string {
  return `projects/${project}/locations/${zone}/nodes/${computeName(req.runId, req.stage, req.attempt)}`;
}

function qrName(req: ComputeRequest, zone = ZONE, project = PROJECT): string {
  return `projects/${project}/locations/${zone}/queuedResources/${computeName(req.runId, req.stage, req.attempt)}`;
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
  // This run's node from an earlier try, preempted since.
  fake.seedNode(`projects/${PROJECT}/locations/${ZONE}`, computeName(req.runId, req.stage, req.attempt), 'v6e-4', 'PREEMPTED', {
    labels: { owner: 'recogdrive' },
    metadata: { 'recogdrive-run': req.runId },
  });
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
  assert.equal(delta(calls, 'GetNode'), 2, 'looked in every zone of the request');
  assert.equal(delta(calls, 'DeleteNode'), 0, 'nothing there to delete');
});

test("a node of our derived name that is not this run's is neither adopted nor deleted", async () => {
  const req = request();
  const id = computeName(req.runId, req.stage, req.attempt);
  // Someone else's node (no owner label), and one of ours made for another run id with the same name.
  const foreign = fake.seedNode(`projects/${PROJECT}/locations/${ZONE}`, id, 'v6e-4', 'READY', { labels: { team: 'other' } });
  const failure = await provider().acquire(req, () => {}, undefined).then(
    () => assert.fail('adopted a foreign node'),
    (e: unknown) => e,
  );
  assert.ok(failure instanceof ApplicationFailure);
  assert.equal(failure.type, 'TpuBadInput');
  assert.equal(failure.nonRetryable, true);
  assert.match(failure.message, /already exists and is not this run's/);
  const calls = snapshotCalls();
  assert.deepEqual(await provider().release(req), { name: id, released: false });
  assert.equal(delta(calls, 'DeleteNode'), 0, 'release did not delete it');
  assert.ok(fake.node(foreign.name) !== undefined, 'the foreign node is still there');

  fake.removeNode(foreign.name);
  const otherRun = fake.seedNode(`projects/${PROJECT}/locations/${ZONE}`, id, 'v6e-4', 'READY', {
    labels: { owner: 'recogdrive' },
    metadata: { 'recogdrive-run': `${req.runId}-other` },
  });
  await assert.rejects(provider().acquire(req, () => {}, undefined), /is not this run's/);
  assert.deepEqual(await provider().release(req), { name: id, released: false });
  assert.ok(fake.node(otherRun.name) !== undefined);
  fake.removeNode(otherRun.name);
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

// ---- placement and project -----------------------------------------------------------

test('acquire honours the placement: the node is made in the placement zone, on-demand although compute.spot, and lease.cloud says so', async () => {
  const req = request('v6e-8', [ZONE, ZONE_A], { spot: true, placement: { zone: ZONE_A, spot: false } });
  const lease = await provider().acquire(req, () => {}, undefined);
  assert.equal(fake.node(nodeName(req, ZONE)), undefined, 'nothing in the first zone');
  const node = fake.node(nodeName(req, ZONE_A));
  assert.equal(node?.state, 'READY');
  assert.equal(node.spot, false, 'the placement falls back to on-demand');
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: ZONE_A, spot: false, machine: 'v6e-8', chips: 8 });
});

test('without a placement the first zone and compute.spot are used; lease.cloud counts the chips of the slice', async () => {
  const req = request('v6e-16', [ZONE, ZONE_A], { spot: true });
  const lease = await provider().acquire(req, () => {}, undefined);
  assert.equal(fake.node(nodeName(req, ZONE))?.spot, true);
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: ZONE, spot: true, machine: 'v6e-16', chips: 16 });
});

test('a placement zone outside compute.zones is refused with TpuInvalidConfig before any API call (acquire, release, health)', async () => {
  const req = request('v6e-4', [ZONE], { placement: { zone: ZONE_A, spot: true } });
  const calls = fake.totalCalls();
  const refused = (error: unknown): boolean => {
    isFailure('TpuInvalidConfig', true)(error);
    assert.match((error as Error).message, /placement zone "us-east5-a" is not one of compute\.zones/);
    return true;
  };
  await assert.rejects(provider().acquire(req, () => {}, undefined), refused);
  await assert.rejects(provider().release(req), refused);
  await assert.rejects(provider().health(req), refused);
  assert.equal(fake.totalCalls(), calls, 'no call reached the fake');
});

test('the project of the request wins over the provider default', async () => {
  const req = request('v6e-4', [ZONE], { project: 'other-project-7' });
  const lease = await provider({ project: PROJECT }).acquire(req, () => {}, undefined);
  assert.equal(fake.node(nodeName(req, ZONE, 'other-project-7'))?.state, 'READY');
  assert.equal(fake.node(nodeName(req)), undefined);
  assert.equal(lease.cloud?.project, 'other-project-7');
  assert.equal((await provider({ project: PROJECT }).release(req)).released, true, 'release looks in the request project too');
});

test('no project in the request nor in the provider → TpuInvalidConfig before any API call', async () => {
  const noProject = new TpuApiComputeProvider({ client, pollIntervalMs: 20, note: () => {} });
  const req = request();
  const calls = fake.totalCalls();
  for (const call of [() => noProject.acquire(req, () => {}, undefined), () => noProject.release(req), () => noProject.health(req)]) {
    await assert.rejects(call(), (error) => {
      isFailure('TpuInvalidConfig', true)(error);
      assert.match((error as Error).message, /no Google Cloud project/);
      return true;
    });
  }
  assert.equal(fake.totalCalls(), calls);
});

// ---- health --------------------------------------------------------------------------

test('health of a READY, healthy node is ok', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(await provider().health(req), { state: 'ok' });
});

test('health of a preempted spot node is lost/preemption', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.preemptAt(nodeName(req));
  const health = await provider().health(req);
  assert.equal(health.state, 'lost');
  assert.ok(health.state === 'lost');
  assert.equal(health.failureClass, 'preemption');
  assert.match(health.detail, /is PREEMPTED: the spot TPU was taken back\.$/);
});

test('health of a node under maintenance (READY but UNHEALTHY_MAINTENANCE) is lost/maintenance', async () => {
  const req = request('v6e-4', [ZONE], { spot: false });
  await provider().acquire(req, () => {}, undefined);
  fake.maintenance(nodeName(req));
  assert.deepEqual(await provider().health(req), {
    state: 'lost',
    failureClass: 'maintenance',
    detail: `TPU node ${nodeName(req)} is READY with health UNHEALTHY_MAINTENANCE: the machine the stage ran on is gone or being rebuilt.`,
  });
});

test('health of a TERMINATED on-demand node is lost/maintenance; a TERMINATED spot node counts as preempted', async () => {
  const onDemand = request('v6e-4', [ZONE], { spot: false });
  await provider().acquire(onDemand, () => {}, undefined);
  fake.maintenance(nodeName(onDemand), true);
  const lost = await provider().health(onDemand);
  assert.ok(lost.state === 'lost');
  assert.equal(lost.failureClass, 'maintenance');
  assert.match(lost.detail, /is TERMINATED with health UNHEALTHY_MAINTENANCE/);

  const spot = request('v6e-4', [ZONE], { spot: true });
  await provider().acquire(spot, () => {}, undefined);
  fake.setNodeState(nodeName(spot), 'TERMINATED');
  const taken = await provider().health(spot);
  assert.ok(taken.state === 'lost');
  assert.equal(taken.failureClass, 'preemption');
});

test('health of a REPAIRING or STOPPED node is lost/maintenance', async () => {
  for (const state of ['REPAIRING', 'STOPPED'] as const) {
    const req = request();
    await provider().acquire(req, () => {}, undefined);
    fake.setNodeState(nodeName(req), state);
    const health = await provider().health(req);
    assert.ok(health.state === 'lost', state);
    assert.equal(health.failureClass, 'maintenance', state);
    assert.match(health.detail, new RegExp(`is ${state}`));
  }
});

test('health of a node deleted under the run is lost/maintenance', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.removeNode(nodeName(req));
  assert.deepEqual(await provider().health(req), { state: 'lost', failureClass: 'maintenance', detail: `TPU node ${nodeName(req)} is gone: it was deleted under the run.` });
});

test('health looks in the placement zone', async () => {
  const req = request('v6e-4', [ZONE, ZONE_A], { placement: { zone: ZONE_A, spot: true } });
  await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(await provider().health(req), { state: 'ok' });
  const calls = fake.requests.filter((r) => r.method === 'GetNode').slice(-1);
  assert.equal((calls[0]?.request as { name?: string }).name, nodeName(req, ZONE_A));
});

test('health: a transient API error is thrown as retryable TpuInternal, not reported as a loss', async () => {
  const req = request();
  await provider().acquire(req, () => {}, undefined);
  fake.failNext('GetNode');
  await assert.rejects(provider().health(req), isFailure('TpuInternal', false));
  assert.deepEqual(await provider().health(req), { state: 'ok' }, 'the next check reads it');
});

// ---- queued resources ----------------------------------------------------------------

test('queued: the queued resource waits for capacity, becomes ACTIVE, and the lease is its READY node', async () => {
  fake.queueDelayMs = 250;
  const req = request('v6e-16', [ZONE], { provisioning: 'queued', spot: true });
  const calls = snapshotCalls();
  const beats: unknown[] = [];
  const seen = new Set<string>();
  const lease = await provider().acquire(
    req,
    (d) => {
      beats.push(d);
      const state = fake.queuedResource(qrName(req))?.state;
      if (state !== undefined) seen.add(state);
    },
    undefined,
  );
  assert.ok(seen.has('WAITING_FOR_RESOURCES'), `waited in the queue (saw ${[...seen].join(', ')})`);
  assert.ok(delta(calls, 'GetQueuedResource') >= 3, 'polled the queued resource');
  assert.equal(delta(calls, 'CreateQueuedResource'), 1);
  assert.equal(delta(calls, 'CreateNode'), 0, 'no direct create');
  assert.equal(fake.queuedResource(qrName(req))?.state, 'ACTIVE');
  assert.equal(fake.node(nodeName(req))?.state, 'READY');
  assert.equal(fake.node(nodeName(req))?.queuedResource, qrName(req));
  assert.equal(lease.workers.length, 4);
  assert.ok(lease.workers.every((w) => w.kind === 'ssh' && w.hostKeys.length === 1));
  assert.deepEqual(lease.cloud, { project: PROJECT, zone: ZONE, spot: true, machine: 'v6e-16', chips: 16 });
  assert.deepEqual(beats[0], { node: nodeName(req), queuedResource: qrName(req), operation: (beats[0] as TpuAcquireProgress).operation });
  assert.match((beats[0] as TpuAcquireProgress).operation ?? '', /\/operations\//, 'the create operation is heartbeated');
});

test('queued: CreateQueuedResource carries the node id as its id, a UUID requestId, the node spec and the spot tier', async () => {
  const spot = request('v6e-4', [ZONE], { provisioning: 'queued', spot: true });
  await provider({ queueValidForMs: 30 * 60_000 }).acquire(spot, () => {}, undefined);
  const sent = fake.requests.filter((r) => r.method === 'CreateQueuedResource').at(-1)?.request as Record<string, unknown>;
  const id = computeName(spot.runId, spot.stage, spot.attempt);
  const parent = `projects/${PROJECT}/locations/${ZONE}`;
  assert.equal(sent.parent, parent);
  assert.equal(sent.queuedResourceId, id);
  assert.match(String(sent.requestId), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const body = sent.queuedResource as { tpu: { nodeSpec: Array<Record<string, unknown>> }; spot?: unknown; guaranteed?: unknown; queueingPolicy?: { validUntilDuration?: { seconds?: string } } };
  assert.equal(body.tpu.nodeSpec.length, 1);
  const [spec] = body.tpu.nodeSpec;
  assert.equal(spec?.parent, parent);
  assert.equal(spec?.nodeId, id);
  const node = spec?.node as { acceleratorType?: string; labels?: Record<string, string>; metadata?: Record<string, string> };
  assert.equal(node.acceleratorType, 'v6e-4');
  assert.equal(node.labels?.owner, 'recogdrive');
  assert.equal(node.metadata?.['recogdrive-run'], spot.runId);
  assert.deepEqual(body.spot, {}, 'spot tier');
  assert.equal(body.queueingPolicy?.validUntilDuration?.seconds, '1800');
  assert.equal(fake.node(nodeName(spot))?.spot, true, 'the node is a spot node');

  const onDemand = request('v6e-4', [ZONE], { provisioning: 'queued', spot: false });
  await provider().acquire(onDemand, () => {}, undefined);
  const sent2 = fake.requests.filter((r) => r.method === 'CreateQueuedResource').at(-1)?.request as { queuedResource: Record<string, unknown> };
  assert.equal(sent2.queuedResource.spot, undefined, 'no spot tier when on-demand');
  assert.equal(sent2.queuedResource.guaranteed, undefined);
  assert.equal(fake.node(nodeName(onDemand))?.spot, false);
});

test('queued: a retried acquire resumes from its heartbeat details — one CreateQueuedResource in total', async () => {
  fake.queueDelayMs = 300;
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  const calls = snapshotCalls();
  let saved: unknown;
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
  assert.match(fake.queuedResource(qrName(req))?.state ?? '', /^(ACCEPTED|WAITING_FOR_RESOURCES)$/, 'still queued when the first try died');
  const lease = await provider().acquire(req, () => {}, saved);
  assert.equal(lease.workers.length, 1);
  assert.equal(delta(calls, 'CreateQueuedResource'), 1, 'only the first try created it');
  assert.equal(fake.allQueuedResources().filter((q) => q.name === qrName(req)).length, 1);
});

test('queued: an acquire without resume details adopts the existing queued resource (same requestId → same operation)', async () => {
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  const first = await provider().acquire(req, () => {}, undefined);
  const second = await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(second, first);
  assert.equal(fake.allQueuedResources().filter((q) => q.name === qrName(req)).length, 1);
});

test('queued: a stocked-out zone keeps the resource waiting until its valid-until time, then FAILED → TpuStockout, and it is deleted', async () => {
  fake.stockout(ZONE);
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  const started = Date.now();
  await assert.rejects(provider({ queueValidForMs: 1000 }).acquire(req, () => {}, undefined), (error) => {
    isFailure('TpuStockout', true)(error);
    assert.match((error as Error).message, /FAILED \(no capacity before its valid-until time\); it was deleted/);
    return true;
  });
  assert.ok(Date.now() - started >= 900, 'waited for the valid-until time');
  assert.equal(fake.queuedResource(qrName(req)), undefined, 'the FAILED resource was deleted, so the zone can be tried again');
  assert.equal(fake.node(nodeName(req)), undefined);
});

test('queued: a FAILED queued resource is classified by its error (quota wording → TpuQuotaExceeded)', async () => {
  fake.queueDelayMs = 10_000;
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  const acquiring = provider().acquire(req, () => {}, undefined);
  setTimeout(() => fake.failQueuedResource(qrName(req), { code: 8, message: `Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 4 in region us-east5.` }), 100);
  await assert.rejects(acquiring, isFailure('TpuQuotaExceeded', true));
});

test('queued: a queued resource suspended by the service before the stage starts → TpuPreempted', async () => {
  fake.queueDelayMs = 10_000;
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  const acquiring = provider().acquire(req, () => {}, undefined);
  setTimeout(() => {
    const qr = fake.queuedResource(qrName(req))!;
    qr.state = 'SUSPENDED';
    qr.initiator = 'SERVICE';
  }, 100);
  await assert.rejects(acquiring, isFailure('TpuPreempted', true));
});

test('queued: quota refused at create → TpuQuotaExceeded without waiting', async () => {
  fake.quotaExceeded(ZONE);
  const calls = snapshotCalls();
  await assert.rejects(provider().acquire(request('v6e-4', [ZONE], { provisioning: 'queued' }), () => {}, undefined), isFailure('TpuQuotaExceeded', true));
  assert.equal(delta(calls, 'GetQueuedResource'), 0);
});

test('queued: release deletes the queued resource with force, which takes its node; a second release → released: false', async () => {
  const req = request('v6e-4', [ZONE, ZONE_A], { provisioning: 'queued' });
  await provider().acquire(req, () => {}, undefined);
  const calls = snapshotCalls();
  assert.deepEqual(await provider().release(req), { name: computeName(req.runId, req.stage, req.attempt), released: true });
  const deletes = fake.requests.filter((r) => r.method === 'DeleteQueuedResource').slice(-1);
  assert.deepEqual(
    deletes.map((d) => d.request as { name?: string; force?: boolean }).map((r) => ({ name: r.name, force: r.force })),
    [{ name: qrName(req, ZONE), force: true }],
    'with force, where it exists',
  );
  assert.equal(delta(calls, 'GetQueuedResource'), 2, 'looked for it in every zone');
  assert.equal(delta(calls, 'GetNode'), 2, 'and for a node left behind in every zone');
  assert.equal(delta(calls, 'DeleteNode'), 0, 'none: the node went with its queued resource');
  assert.equal(fake.queuedResource(qrName(req)), undefined);
  assert.equal(fake.node(nodeName(req)), undefined);
  assert.equal((await provider().release(req)).released, false);
});

test('queued: health of a preempted queued-resource node is lost/preemption (its resource SUSPENDED by the service)', async () => {
  const req = request('v6e-4', [ZONE], { provisioning: 'queued' });
  await provider().acquire(req, () => {}, undefined);
  assert.deepEqual(await provider().health(req), { state: 'ok' });
  fake.preemptAt(nodeName(req));
  assert.equal(fake.queuedResource(qrName(req))?.state, 'SUSPENDED');
  assert.deepEqual(await provider().health(req), {
    state: 'lost',
    failureClass: 'preemption',
    detail: `Queued resource ${qrName(req)} is SUSPENDED, initiated by the service: the spot TPU was taken back.`,
  });
});

test('queued: health when the queued resource was deleted under the run is lost/maintenance', async () => {
  const req = request('v6e-4', [ZONE], { provisioning: 'queued', spot: false });
  await provider().acquire(req, () => {}, undefined);
  await client.deleteQueuedResource({ name: qrName(req), force: true });
  const health = await provider().health(req);
  assert.ok(health.state === 'lost');
  assert.equal(health.failureClass, 'maintenance');
  assert.match(health.detail, /is gone: it was deleted under the run\./);
});

// ---- janitor -------------------------------------------------------------------------

const JANITOR_PROJECT = 'recogdrive-janitor';
const JZONE_1 = 'us-central1-b';
const JZONE_2 = 'europe-west4-a';
const SCOPE = [{ project: JANITOR_PROJECT, zones: [JZONE_1, JZONE_2] }];

test('listLeases lists our nodes and queued resources in every scoped zone (all pages), with exact run ids, and not foreign or unlabelled ones', async () => {
  fake.maxPageSize = 1;
  const direct = request('v6e-4', [JZONE_1], { project: JANITOR_PROJECT, runId: 'Exp 7/Janitor:Direct' });
  const queued = request('v6e-8', [JZONE_2], { project: JANITOR_PROJECT, runId: 'Exp_7/janitor-queued', provisioning: 'queued' });
  await provider().acquire(direct, () => {}, undefined);
  await provider().acquire(queued, () => {}, undefined);
  const parent1 = `projects/${JANITOR_PROJECT}/locations/${JZONE_1}`;
  fake.seedNode(parent1, 'planted-unlabelled', 'v6e-4');
  fake.seedNode(parent1, 'planted-foreign', 'v6e-4', 'READY', { labels: { owner: 'someone-else', run: 'x' }, metadata: { 'recogdrive-run': 'x' } });
  fake.seedNode(parent1, 'planted-no-metadata', 'v6e-4', 'READY', { labels: { owner: 'recogdrive', run: 'exp-7-slug' } });
  fake.seedNode(`projects/${PROJECT}/locations/${JZONE_1}`, 'other-project', 'v6e-4', 'READY', { labels: { owner: 'recogdrive' } });
  const calls = snapshotCalls();

  const leases = await provider({ scope: SCOPE }).listLeases();
  assert.ok(delta(calls, 'ListNodes') >= 4, 'paged through the nodes of both zones');
  const byName = new Map(leases.map((l) => [l.name, l]));
  assert.deepEqual([...byName.keys()].sort(), [nodeName(direct, JZONE_1, JANITOR_PROJECT), `${parent1}/nodes/planted-no-metadata`, qrName(queued, JZONE_2, JANITOR_PROJECT)].sort());

  const node = byName.get(nodeName(direct, JZONE_1, JANITOR_PROJECT))!;
  assert.equal(node.backend, 'tpu-api');
  assert.equal(node.zone, JZONE_1);
  assert.equal(node.labels.run, 'Exp 7/Janitor:Direct', 'the exact run id from the metadata');
  assert.equal(node.labels.stage, 'featureCache', 'the stage name, not its slug');
  assert.equal(node.labels.owner, 'recogdrive');
  assert.equal(node.labels.attempt, '2');
  assert.equal(node.labels.kind, 'node');
  assert.equal(node.createdAt, new Date(fake.node(node.name)!.createdAt).toISOString());

  const qr = byName.get(qrName(queued, JZONE_2, JANITOR_PROJECT))!;
  assert.equal(qr.labels.run, 'Exp_7/janitor-queued');
  assert.equal(qr.labels.kind, 'queued-resource');
  assert.equal(qr.zone, JZONE_2);
  assert.ok(!byName.has(nodeName(queued, JZONE_2, JANITOR_PROJECT)), 'its node is listed as the queued resource');

  const noMetadata = byName.get(`${parent1}/nodes/planted-no-metadata`)!;
  assert.equal(noMetadata.labels.run, undefined, 'no exact run id: no run label (the janitor keeps it)');
  assert.equal(noMetadata.labels['run-label'], 'exp-7-slug');
});

test('deleteLease deletes the listed node and queued resource; a second call answers false', async () => {
  const direct = request('v6e-4', [JZONE_1], { project: JANITOR_PROJECT, runId: 'Exp 8/delete-direct' });
  const queued = request('v6e-4', [JZONE_2], { project: JANITOR_PROJECT, runId: 'Exp 8/delete-queued', provisioning: 'queued' });
  await provider().acquire(direct, () => {}, undefined);
  await provider().acquire(queued, () => {}, undefined);
  const p = provider({ scope: SCOPE });
  const leases = (await p.listLeases()).filter((l) => l.labels.run?.startsWith('Exp 8/'));
  assert.equal(leases.length, 2);
  for (const lease of leases) assert.equal(await p.deleteLease(lease), true, lease.name);
  assert.equal(fake.node(nodeName(direct, JZONE_1, JANITOR_PROJECT)), undefined);
  assert.equal(fake.queuedResource(qrName(queued, JZONE_2, JANITOR_PROJECT)), undefined);
  assert.equal(fake.node(nodeName(queued, JZONE_2, JANITOR_PROJECT)), undefined, 'force took the node too');
  for (const lease of leases) assert.equal(await p.deleteLease(lease), false, `${lease.name} again`);
});

test('deleteLease leaves a newer resource that took the listed name alone, and refuses names outside its scope', async () => {
  const req = request('v6e-4', [JZONE_1], { project: JANITOR_PROJECT, runId: 'Exp 9/replaced' });
  await provider().acquire(req, () => {}, undefined);
  const p = provider({ scope: SCOPE });
  const [lease] = (await p.listLeases()).filter((l) => l.labels.run === 'Exp 9/replaced');
  assert.ok(lease !== undefined);
  assert.equal(await p.deleteLease({ ...lease, createdAt: '2020-01-01T00:00:00.000Z' }), false, 'another creation time: not the one listed');
  assert.equal(await p.deleteLease({ ...lease, labels: { ...lease.labels, 'tpu-id': '999999' } }), false, 'another unique id: not the one listed');
  assert.equal(fake.node(lease.name)?.state, 'READY', 'still there');
  const calls = fake.totalCalls();
  await assert.rejects(p.deleteLease({ ...lease, name: nodeName(req, JZONE_1, PROJECT) }), isFailure('TpuInvalidConfig', true));
  await assert.rejects(p.deleteLease({ ...lease, name: 'projects/x/../../etc' }), isFailure('TpuInvalidConfig', true));
  assert.equal(fake.totalCalls(), calls, 'refused before any call');
  assert.equal(await p.deleteLease(lease), true);
});

test('listLeases without a scope lists nothing and says why', async () => {
  const notes: string[] = [];
  const calls = fake.totalCalls();
  assert.deepEqual(await provider({ note: (m) => notes.push(m) }).listLeases(), []);
  assert.equal(fake.totalCalls(), calls);
  assert.match(notes.join('\n'), /no janitor scope/);
});

// ---- emulator endpoints --------------------------------------------------------------

test('sshPortFromEndpoint: each worker gets the port and host key the emulator gives its endpoint; by default port 22', async () => {
  const { public: hostKey } = ssh2.utils.generateKeyPairSync('ed25519');
  const local = new FakeTpuApi({ createDelayMs: 20, addressFor: (_node, worker) => ({ ipAddress: '127.0.0.1', port: 2200 + worker, hostKeys: [hostKey] }) });
  const localClient = new v2.TpuClient(TpuApiComputeProvider.fakeClientOptions(await local.start()));
  try {
    const req = request('v6e-16');
    const lease = await new TpuApiComputeProvider({ project: PROJECT, client: localClient, pollIntervalMs: 10, sshPortFromEndpoint: true, note: () => {} }).acquire(req, () => {}, undefined);
    assert.deepEqual(
      lease.workers.map((w) => (w.kind === 'ssh' ? [w.host, w.port, w.hostKeys] : [])),
      [0, 1, 2, 3].map((i) => ['127.0.0.1', 2200 + i, [hostKey.trim()]]),
    );
    const byDefault = await new TpuApiComputeProvider({ project: PROJECT, client: localClient, pollIntervalMs: 10, note: () => {} }).acquire(req, () => {}, undefined);
    assert.deepEqual(
      byDefault.workers.map((w) => (w.kind === 'ssh' ? w.port : 0)),
      [22, 22, 22, 22],
    );
  } finally {
    await localClient.close();
    await local.stop();
  }
});
