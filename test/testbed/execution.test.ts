/**
 * Stage execution over SSH on the test bed: real sshd per worker, real podman behind `docker`,
 * the stage image built from the simulator, a real Temporal server and worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { containerName, stageLogsUri } from '../../pipeline/naming.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { runFailure } from '../helpers/assertions.ts';
import { type TestEnv, startTestEnv, waitForStatus, waitUntilRunning } from '../helpers/local-env.ts';
import { testbedInput, testbedWorkerEnv } from '../helpers/testbed-input.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let env: TestEnv;
before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 4, dir: join(PROJECT_ROOT, '.data', 'testbed-execution') });
  env = await startTestEnv({ env: testbedWorkerEnv(bed) });
});
after(async () => {
  await env?.close();
  await bed?.stop();
});

/** Containers of this orchestrator on a worker, as "ID NAME" lines. */
async function containersOn(worker: number): Promise<string[]> {
  const { stdout } = await bed.docker(worker, ['ps', '-a', '--filter', 'label=recogdrive.owner=recogdrive', '--format', '{{.ID}} {{.Names}}']);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

async function assertNoContainers(): Promise<void> {
  for (let w = 0; w < bed.workers.length; w++) assert.deepEqual(await containersOn(w), [], `no container left on worker ${w}`);
}

const logsDir = (runId: string, stage: 'stage1' | 'metricCache') =>
  stageLogsUri(`file://${env.dataDir}/artifacts`, runId, stage).slice('file://'.length);

test('a stage runs on a one-host slice and on a four-host slice, every worker logs, nothing is left', { skip }, async () => {
  const one = await env.start('bed-one', testbedInput(env, bed, { metricCache: { workers: [0] } }));
  const four = await env.start('bed-four', testbedInput(env, bed, { stage1: { workers: [0, 1, 2, 3] } }));
  const [oneSummary, fourSummary] = (await Promise.all([one.result(), four.result()])) as [RunSummary, RunSummary];
  assert.equal(oneSummary.stages.find((s) => s.stage === 'metricCache')!.outputs!.tokens, env.dataset.navtrainTokens);
  assert.ok(fourSummary.stages.find((s) => s.stage === 'stage1')!.outputs!.finalStep! as number > 0);

  assert.deepEqual((await readdir(logsDir('bed-four', 'stage1'))).sort(), [0, 1, 2, 3].map((w) => `attempt-1-worker-${w}.log`));
  const log = await readFile(join(logsDir('bed-one', 'metricCache'), 'attempt-1-worker-0.log'), 'utf8');
  assert.match(log, /Done storing metadata csv file\./);
  await assertNoContainers();
});

test('killing the worker process while it watches re-attaches to the same container instead of starting another', { skip }, async () => {
  const taskQueue = 'testbed-restart';
  const startWorker = (): ChildProcess =>
    spawn(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'worker'], {
      env: { ...testbedWorkerEnv(bed), TEMPORAL_ADDRESS: env.stack.server.address, RECOGDRIVE_TASK_QUEUE: taskQueue, RECOGDRIVE_DATA_DIR: env.dataDir },
      stdio: 'ignore',
    });
  const input = testbedInput(env, bed, { metricCache: { workers: [1], env: { RECOGDRIVE_SIM_DURATION_MS: '15000' } } }, {
    orchestration: { heartbeatTimeout: '3 seconds', progressInterval: '1 second', pollInterval: '1 second' },
  });
  let worker = startWorker();
  try {
    const handle = await env.stack.client.workflow.start('recogdrivePipeline', { workflowId: 'bed-restart', taskQueue, args: [input] });
    await waitUntilRunning(handle, 'metricCache');
    const before = await containersOn(1);
    assert.equal(before.length, 1);

    worker.kill('SIGKILL');
    await new Promise((resolve) => worker.once('exit', resolve));
    worker = startWorker();
    // The new worker's watcher takes over after the old one's heartbeat times out.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    assert.deepEqual(await containersOn(1), before, 'the same single container, not a second one');

    const summary = (await handle.result()) as RunSummary;
    const metric = summary.stages.find((s) => s.stage === 'metricCache')!;
    assert.equal(metric.attempts, 1, 'the attempt survived the worker restart');
    assert.equal(metric.outputs!.tokens, env.dataset.navtrainTokens);

    // The watcher itself was retried (on the new worker) and re-attached: its last try is not its first.
    const events = (await env.stack.client.workflow.getHandle('bed-restart/metricCache').fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'watchStage');
    const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled?.eventId));
    assert.ok((started?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2, 'watchStage ran again after the worker was killed');
  } finally {
    worker.kill('SIGTERM');
  }
  await assertNoContainers();
});

test('one failing worker of four fails the attempt and stops the containers on all four', { skip }, async () => {
  const handle = await env.start(
    'bed-gang',
    testbedInput(env, bed, {
      metricCache: {
        workers: [0, 1, 2, 3],
        env: { RECOGDRIVE_SIM_DURATION_MS: '60000', RECOGDRIVE_SIM_FAULT: 'crash', RECOGDRIVE_SIM_FAULT_AT: '0.05', RECOGDRIVE_SIM_FAULT_WORKER: '2' },
        settings: { maxAttempts: 1 },
      },
    }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageCodeError');
  assert.match(failure.message, /metricCache \(worker 2\) exited with code 1/);
  assert.match(failure.message, /simulated crash/);
  await assertNoContainers();
  const logs = (await readdir(logsDir('bed-gang', 'metricCache'))).sort();
  assert.deepEqual(logs, [0, 1, 2, 3].map((w) => `attempt-1-worker-${w}.log`), 'every worker\'s log was kept');
});

test('a hang over SSH is detected and fails as a hang', { skip }, async () => {
  const handle = await env.start(
    'bed-hang',
    testbedInput(env, bed, {
      metricCache: {
        workers: [2],
        env: { RECOGDRIVE_SIM_FAULT: 'hang', RECOGDRIVE_SIM_FAULT_AT: '0.1' },
        settings: { hangTimeout: '3 seconds', maxAttempts: 1 },
      },
    }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageHang');
  await assertNoContainers();
});

test('exit 137 over SSH is classified as out-of-memory', { skip }, async () => {
  const handle = await env.start('bed-oom', testbedInput(env, bed, { metricCache: { workers: [3], env: { RECOGDRIVE_SIM_FAULT: 'oom' } } }));
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageOutOfMemory');
  assert.match(failure.message, /exit 137/);
  await assertNoContainers();
});

test('a dropped SSH connection mid-watch is survived: the watcher reconnects and the stage completes', { skip }, async () => {
  const handle = await env.start('bed-drop', testbedInput(env, bed, { metricCache: { workers: [0], env: { RECOGDRIVE_SIM_DURATION_MS: '8000' } } }));
  await waitUntilRunning(handle, 'metricCache');
  await bed.dropConnections(0);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await bed.dropConnections(0);
  const summary = (await handle.result()) as RunSummary;
  assert.equal(summary.stages.find((s) => s.stage === 'metricCache')!.attempts, 1);
  await assertNoContainers();
});

test('override and env values full of shell syntax reach the container literally and run nothing', { skip }, async () => {
  const nasty = '; touch /tmp/rd-pwned `touch /tmp/rd-pwned2` $(touch /tmp/rd-pwned3)';
  const handle = await env.start(
    'bed-inject',
    testbedInput(env, bed, {
      metricCache: {
        workers: [1],
        env: { RECOGDRIVE_SIM_DURATION_MS: '4000', EXTRA_FLAGS: '$(touch /tmp/rd-pwned4) && touch /tmp/rd-pwned5' },
        settings: { overrides: { 'cache.force_feature_computation': nasty } },
      },
    }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const name = containerName('bed-inject', 'metricCache');
  const args = JSON.parse((await bed.docker(1, ['inspect', '--format', '{{json .Args}}', name])).stdout) as string[];
  assert.ok(args.includes(`cache.force_feature_computation='${nasty}'`), JSON.stringify(args));
  const envs = JSON.parse((await bed.docker(1, ['inspect', '--format', '{{json .Config.Env}}', name])).stdout) as string[];
  assert.ok(envs.includes('EXTRA_FLAGS=$(touch /tmp/rd-pwned4) && touch /tmp/rd-pwned5'));
  await handle.result();
  const pwned = (await readdir('/tmp')).filter((f) => f.startsWith('rd-pwned'));
  assert.deepEqual(pwned, [], 'nothing in the values was executed');
});

test('the status query shows progress parsed from the container log over SSH', { skip }, async () => {
  const handle = await env.start('bed-progress', testbedInput(env, bed, { stage1: { workers: [3], env: { RECOGDRIVE_SIM_DURATION_MS: '6000' } } }, {
    orchestration: { heartbeatTimeout: '30 seconds', progressInterval: '1 second', pollInterval: '1 second' },
  }));
  const status = await waitForStatus(handle, (s) => (s.stages.find((x) => x.stage === 'stage1')!.progress?.step ?? 0) > 1);
  const progress = status.stages.find((s) => s.stage === 'stage1')!.progress!;
  assert.ok(progress.fraction! > 0 && progress.fraction! <= 1);
  await handle.result();
  assert.equal((await handle.query(runStatusQuery)).state, 'succeeded');
});

test('a worker whose host stops answering fails the attempt as infrastructure and stops the rest of the slice', { skip }, async () => {
  const handle = await env.start(
    'bed-lost',
    testbedInput(env, bed, { metricCache: { workers: [2, 3], env: { RECOGDRIVE_SIM_DURATION_MS: '300000' }, settings: { maxAttempts: 1 } } }),
  );
  await waitUntilRunning(handle, 'metricCache');
  await bed.stopWorker(3);
  try {
    const failure = await runFailure(handle.result());
    assert.equal(failure.stageType, 'StageInfrastructureError');
    assert.match(failure.message, /metricCache \(worker 1\) was lost: host 127\.0\.0\.1 stopped answering SSH/);
    assert.deepEqual(await containersOn(2), [], 'the reachable worker was stopped');
  } finally {
    await bed.startWorker(3);
    // The unreachable host kept its container (a deleted TPU VM would take it along).
    for (const line of await containersOn(3)) await bed.docker(3, ['rm', '-f', line.split(' ')[0]!]);
  }
});

test('on static hosts the image tag is resolved to its id on the host, and an unchanged input reuses the verified output', { skip }, async () => {
  const { FileArtifactStore } = await import('../../activities/artifacts/file-store.ts');
  const { LineageStore } = await import('../../activities/lineage/lineage-store.ts');
  const input = testbedInput(env, bed, { metricCache: { workers: [1] } }, { reuse: { policy: 'verified' } });
  const first = (await (await env.start('bed-reuse-1', input)).result()) as RunSummary;
  const uri = first.stages.find((s) => s.stage === 'metricCache')!.artifactUri!;
  const record = await new LineageStore(() => new FileArtifactStore()).producedBy(uri);
  const { stdout } = await bed.docker(1, ['image', 'inspect', '--format', '{{.Id}}', bed.images[0]!]);
  assert.equal(record?.imageDigest, `sha256:${stdout.trim().replace(/^sha256:/, '')}`);

  const second = (await (await env.start('bed-reuse-2', input)).result()) as RunSummary;
  const metric = second.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(metric.decision, 'REUSE');
  assert.equal(metric.artifactUri, uri);
  await assertNoContainers();
});
