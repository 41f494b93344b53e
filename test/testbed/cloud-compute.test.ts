/**
 * Cloud TPU compute end to end, with faults: a real Temporal server and worker, the real
 * v2.TpuClient against the fake Cloud TPU API, and nodes whose workers are test bed workers
 * (real sshd + podman running the stage image). Stockout → next zone; preemption mid-stage →
 * new VM, old one deleted, retry budget untouched, spot → on-demand fall-back; cancel while
 * provisioning → nothing left; worker killed while provisioning → the same create resumed;
 * the janitor deletes a planted orphan and spares a live run's VM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { computeName, shortHash, stageWorkflowId } from '../../pipeline/naming.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { runJanitorOnce } from '../../workers/janitor-command.ts';
import { runFailure } from '../helpers/assertions.ts';
import { type CloudBed, cloudWorkerEnv, eventually, type FakeTpuCloud, metricCacheStatus, PROJECT, startCloudBed, tpuInput, vmGone, ZONES } from '../helpers/cloud-env.ts';
import { waitForStatus, waitUntilRunning, type TestEnv } from '../helpers/local-env.ts';
import { testbedSkip } from './requirements.ts';
import type { Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let cloud: FakeTpuCloud;
let env: TestEnv;
let image: string;

let world: CloudBed | undefined;
before(async () => {
  if (skip) return;
  world = await startCloudBed(3, 'testbed-cloud');
  ({ bed, cloud, env, image } = world);
});
after(() => world?.stop());

const createsOf = (nodeId: string) =>
  cloud.fake.requests.filter((r) => r.method === 'CreateNode' && (r.request as { nodeId?: string }).nodeId === nodeId);


test('a stockout in the first zone runs the stage in the next zone, and no node is left in either', { skip }, async () => {
  cloud.fake.stockout(ZONES[0]);
  try {
    const handle = await env.start('cloud-stockout', tpuInput(env, image, { metricCache: {} }));
    const summary = (await handle.result()) as RunSummary;
    const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
    assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);
    assert.deepEqual(
      stage.compute!.map((u) => [u.zone, u.outcome]),
      [[ZONES[1], 'succeeded']],
      'held one machine, in the second zone',
    );
    const creates = createsOf(computeName('cloud-stockout', 'metricCache', 1));
    assert.deepEqual(
      creates.map((r) => (r.request as { parent: string }).parent),
      ZONES.map((z) => `projects/${PROJECT}/locations/${z}`),
      'one create in the stocked-out zone, then one in the next',
    );
    assert.deepEqual(cloud.nodesOf('cloud-stockout'), [], 'nothing left');
  } finally {
    cloud.fake.stockout(ZONES[0], false);
  }
});

test('a preemption mid-stage gets a new VM (on-demand after the fall-back), deletes the old one and completes without using the retry budget', { skip }, async () => {
  const runId = 'cloud-preempt';
  const handle = await env.start(
    runId,
    tpuInput(env, image, {
      metricCache: {
        env: { RECOGDRIVE_SIM_DURATION_MS: '12000' },
        compute: { spot: true, failover: { spotFallbackAfterPreemptions: 1 } },
        // One attempt only: if the preemption counted against it, the stage would fail.
        settings: { maxAttempts: 1 },
      },
    }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const [first] = cloud.nodesOf(runId);
  assert.ok(first !== undefined && first.spot, 'a spot node runs the stage');
  const slot = cloud.slotOf(first.name)!;

  // The VM dies: the cloud says PREEMPTED, its SSH goes away with its containers.
  const preemptedAt = Date.now();
  cloud.fake.preemptAt(first.name);
  const revive = await vmGone(bed, slot, runId, { unreachable: true });
  let noticedMs: number;
  try {
    const status = await waitForStatus(handle, (s) => metricCacheStatus(s).attempt === 2 && metricCacheStatus(s).phase === 'running', 60_000);
    noticedMs = Date.now() - preemptedAt;
    assert.match(metricCacheStatus(status).computeEvent ?? '', /preemption 1 .*on-demand/);
  } finally {
    await revive();
  }

  const summary = (await handle.result()) as RunSummary;
  const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(stage.attempts, 2);
  assert.deepEqual(
    stage.compute!.map((u) => [u.name, u.spot, u.outcome]),
    [
      [first.nodeId, true, 'preempted'],
      [first.nodeId.replace(/-1$/, '-2'), false, 'succeeded'],
    ],
  );
  assert.equal(cloud.fake.node(first.name), undefined, 'the preempted node was deleted');
  assert.deepEqual(cloud.nodesOf(runId), [], 'nothing left');
  assert.ok(noticedMs < 60_000, `replacement running ${noticedMs} ms after the preemption`);
});

test('cancelling a run while its TPU is being created leaves no node behind', { skip }, async () => {
  const runId = 'cloud-cancel';
  cloud.fake.createDelayMs = 20_000;
  try {
    const handle = await env.start(runId, tpuInput(env, image, { metricCache: {} }));
    await eventually(() => cloud.nodesOf(runId).length === 1, 'the node is being created');
    await handle.cancel();
    await runFailure(handle.result()).catch(() => {}); // cancelled, not succeeded
    await eventually(() => cloud.nodesOf(runId).length === 0, 'the node is deleted after the cancel');
    // The stage workflow's release ran in a non-cancellable scope: wait for it to end, then look again.
    await env.stack.client.workflow.getHandle(stageWorkflowId(runId, 'metricCache')).result().catch(() => {});
    assert.deepEqual(cloud.nodesOf(runId), [], 'still nothing after the stage workflow ended');
  } finally {
    cloud.fake.createDelayMs = 300;
  }
});

test('killing the worker process while a TPU is being created resumes the same create: one CreateNode, no orphan, the stage completes', { skip }, async () => {
  const runId = 'cloud-worker-killed';
  const taskQueue = 'cloud-restart';
  const startWorker = (): ChildProcess =>
    spawn(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'worker'], {
      env: { ...cloudWorkerEnv(bed, cloud), TEMPORAL_ADDRESS: env.stack.server.address, RECOGDRIVE_TASK_QUEUE: taskQueue, RECOGDRIVE_DATA_DIR: env.dataDir },
      stdio: 'ignore',
    });
  cloud.fake.createDelayMs = 10_000;
  let worker = startWorker();
  try {
    const handle = await env.stack.client.workflow.start('recogdrivePipeline', { workflowId: runId, taskQueue, args: [tpuInput(env, image, { metricCache: {} })] });
    await eventually(() => cloud.nodesOf(runId).length === 1, 'the node is being created', 60_000);
    const [node] = cloud.nodesOf(runId);
    // Kill once the create operation's name is in the activity's heartbeat details (what a retry resumes from).
    const stage = env.stack.client.workflow.getHandle(stageWorkflowId(runId, 'metricCache'));
    const deadline = Date.now() + 60_000;
    for (let heartbeated = false; !heartbeated; ) {
      const pending = (await stage.describe()).raw.pendingActivities ?? [];
      heartbeated = pending.some((a) => a.activityType?.name === 'acquireCompute' && (a.heartbeatDetails?.payloads?.length ?? 0) > 0);
      if (!heartbeated && Date.now() > deadline) assert.fail('acquireCompute never heartbeated its operation');
      if (!heartbeated) await new Promise((r) => setTimeout(r, 100));
    }
    worker.kill('SIGKILL');
    await new Promise((resolve) => worker.once('exit', resolve));
    worker = startWorker();

    const summary = (await handle.result()) as RunSummary;
    assert.equal(summary.stages.find((s) => s.stage === 'metricCache')!.attempts, 1);
    assert.equal(createsOf(node!.nodeId).length, 1, 'the retried activity resumed the create operation instead of creating again');
    assert.deepEqual(cloud.nodesOf(runId), [], 'nothing left');
  } finally {
    cloud.fake.createDelayMs = 300;
    worker.kill('SIGKILL');
  }
});

test('the janitor deletes a planted orphan TPU and spares the VM of a live run', { skip }, async () => {
  const live = await env.start('cloud-janitor-live', tpuInput(env, image, { metricCache: { env: { RECOGDRIVE_SIM_DURATION_MS: '10000' } } }));
  await waitUntilRunning(live, 'metricCache');
  const [liveNode] = cloud.nodesOf('cloud-janitor-live');
  const orphan = cloud.fake.seedNode(`projects/${PROJECT}/locations/${ZONES[1]}`, 'rd-gone-run-stage2-1', 'v6e-8', 'READY', {
    labels: { owner: 'recogdrive', run: 'gone-run', stage: 'stage2', attempt: '1' },
    metadata: { 'recogdrive-run': 'gone-run', 'recogdrive-stage': 'stage2' },
  });
  const gceOrphan = cloud.gce.seedInstance({
    project: PROJECT,
    zone: ZONES[0],
    name: 'rd-gone-gce-run-metric-1',
    labels: { owner: 'recogdrive', run: 'gone-gce-run', 'run-hash': shortHash('gone-gce-run'), stage: 'metric', attempt: '1' },
    metadata: { 'recogdrive-run': 'gone-gce-run', 'recogdrive-stage': 'metricCache' },
  });
  const stranger = cloud.fake.seedNode(`projects/${PROJECT}/locations/${ZONES[1]}`, 'someone-elses-tpu', 'v6e-8', 'READY');

  const report = await runJanitorOnce(env.stack.client, { dryRun: false, graceMs: 0, taskQueue: env.stack.taskQueue, workflowId: 'cloud-janitor' });
  const outcome = (name: string) => [...report.deleted, ...report.kept].find((e) => e.name === name);
  assert.ok(report.deleted.some((e) => e.name === orphan.name), `the orphan was deleted: ${JSON.stringify(report)}`);
  assert.equal(cloud.fake.node(orphan.name), undefined);
  assert.equal(cloud.gce.instance(gceOrphan.name), undefined, 'the Compute Engine orphan was deleted too');
  assert.equal(report.unlisted, undefined, 'every backend was listed');
  assert.match(outcome(liveNode!.name)?.reason ?? '', /running/);
  assert.ok(cloud.fake.node(liveNode!.name) !== undefined, 'the live run keeps its VM');
  assert.ok(cloud.fake.node(stranger.name) !== undefined, 'a node without our labels is not ours to list or delete');
  assert.equal(outcome(stranger.name), undefined);

  const summary = (await live.result()) as RunSummary;
  assert.equal(summary.stages.find((s) => s.stage === 'metricCache')!.outputs!.tokens, env.dataset.navtrainTokens);
  assert.deepEqual(cloud.nodesOf('cloud-janitor-live'), []);
});

test('a run for a project this worker does not serve fails before any TPU API call', { skip }, async () => {
  const before = cloud.fake.totalCalls();
  const handle = await env.start('cloud-wrong-project', { ...tpuInput(env, image, { metricCache: {} }), gcp: { project: 'other-project' } });
  const failure = await runFailure(handle.result());
  assert.equal(failure.type, 'BackendUnavailable');
  assert.match(failure.message, /serves the projects chaos-project, not other-project/);
  assert.equal(cloud.fake.totalCalls(), before, 'no call reached the TPU API');
});

test('a spot TPU through a queued resource waits in line for capacity, runs the stage, and the queued resource and its node are deleted after', { skip }, async () => {
  const runId = 'cloud-queued';
  cloud.fake.queueDelayMs = 2000;
  try {
    const handle = await env.start(runId, tpuInput(env, image, { metricCache: { compute: { spot: true, provisioning: 'queued' } } }));
    const summary = (await handle.result()) as RunSummary;
    const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
    assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);
    assert.deepEqual(stage.compute!.map((u) => [u.machine, u.chips, u.spot, u.outcome]), [['v6e-8', 8, true, 'succeeded']]);
    const nodeId = computeName(runId, 'metricCache', 1);
    const queued = cloud.fake.requests.filter((r) => r.method === 'CreateQueuedResource' && JSON.stringify(r.request).includes(nodeId));
    assert.equal(queued.length, 1, 'one queued resource was requested');
    assert.equal(createsOf(nodeId).length, 0, 'no direct CreateNode');
    assert.deepEqual(cloud.fake.allQueuedResources().filter((q) => q.nodeId === nodeId), [], 'the queued resource is gone');
    assert.deepEqual(cloud.nodesOf(runId), [], 'its node is gone');
  } finally {
    cloud.fake.queueDelayMs = 0;
  }
});

test('a TPU put under maintenance while the stage runs is noticed by the health check alone, replaced, and the stage completes', { skip }, async () => {
  const runId = 'cloud-maintenance';
  const handle = await env.start(runId, tpuInput(env, image, { metricCache: { env: { RECOGDRIVE_SIM_DURATION_MS: '12000' }, settings: { maxAttempts: 1 } } }));
  await waitUntilRunning(handle, 'metricCache');
  const [first] = cloud.nodesOf(runId);
  // The VM stays reachable and its container keeps running: only the cloud's health says it is going away.
  cloud.fake.maintenance(first!.name);
  const status = await waitForStatus(handle, (s) => metricCacheStatus(s).attempt === 2, 30_000);
  assert.match(metricCacheStatus(status).computeEvent ?? '', /node lost \(maintenance/);
  // Deleting the node would have taken its container with it.
  await vmGone(bed, cloud.slotOf(first!.name)!, runId);

  const summary = (await handle.result()) as RunSummary;
  const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.deepEqual(stage.compute!.map((u) => u.outcome), ['maintenance', 'succeeded']);
  assert.equal(cloud.fake.node(first!.name), undefined, 'the node under maintenance was deleted');
  assert.deepEqual(cloud.nodesOf(runId), []);
});

test('bad cloud compute input (unknown accelerator, no zones, malformed project) is refused before any TPU API call or workflow', { skip }, async () => {
  const before = cloud.fake.totalCalls();
  const base = tpuInput(env, image, { metricCache: {} }) as Record<string, Record<string, unknown>>;
  const bad = [
    { ...base, metricCache: { ...base.metricCache, compute: { ...(base.metricCache!.compute as object), accelerator: 'v6e-3' } } },
    { ...base, metricCache: { ...base.metricCache, compute: { ...(base.metricCache!.compute as object), zones: [] } } },
    { ...base, gcp: { project: 'Bad_Project!' } },
  ];
  for (const [i, input] of bad.entries()) {
    const handle = await env.start(`cloud-bad-${i}`, input);
    const failure = await runFailure(handle.result());
    assert.equal(failure.type, 'InvalidPipelineInput');
    assert.match(failure.message, /accelerator|zones|project/);
    const children = await Array.fromAsync(env.stack.client.workflow.list({ query: `WorkflowId = "${stageWorkflowId(`cloud-bad-${i}`, 'metricCache')}"` }));
    assert.equal(children.length, 0, 'no stage workflow started');
  }
  assert.equal(cloud.fake.totalCalls(), before, 'no call reached the TPU API');
});

test('past maxNodeLosses a preempted stage fails with the preemption and says why, and its VM is deleted', { skip }, async () => {
  const runId = 'cloud-losses';
  const handle = await env.start(
    runId,
    tpuInput(env, image, { metricCache: { env: { RECOGDRIVE_SIM_DURATION_MS: '12000' }, compute: { spot: true, failover: { maxNodeLosses: 0 } } } }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const [node] = cloud.nodesOf(runId);
  cloud.fake.preemptAt(node!.name);
  await vmGone(bed, cloud.slotOf(node!.name)!, runId);
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'TpuPreempted');
  assert.match(failure.message, /more than maxNodeLosses 0/);
  assert.deepEqual(cloud.nodesOf(runId), [], 'the preempted node was deleted');
});
