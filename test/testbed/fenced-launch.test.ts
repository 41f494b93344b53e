/**
 * Launches that outlive their heartbeat timeout or their host, on the test bed (real sshd, real
 * podman, a real Temporal server): a superseded try creates nothing, a lost host is an
 * infrastructure failure, and an attempt declared failed keeps that verdict when its DONE.json
 * would arrive later; the host's stale container goes once the host answers again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.ts';
import type { ComputeLease, LaunchRequest, StopRequest } from '../../activities/types.ts';
import type { LaunchSpec } from '../../pipeline/launch.ts';
import { besideMarkersUri } from '../../pipeline/markers.ts';
import { containerName, stageArtifactUri } from '../../pipeline/naming.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { createBackend, type WorkerBackend } from '../../workers/backend.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { createRecogdriveWorker } from '../../workers/temporal-worker.ts';
import { runFailure } from '../helpers/assertions.ts';
import { startBlackholeProxy, type BlackholeProxy } from '../helpers/blackhole-proxy.ts';
import { type TestEnv, startTestEnv, waitUntilRunning, workflowBundle } from '../helpers/local-env.ts';
import { testbedInput, testbedWorkerEnv } from '../helpers/testbed-input.ts';
import { testbedSkip } from './requirements.ts';
import { CREATE_LOG, startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let env: TestEnv;
let proxy: BlackholeProxy;
let silent: BlackholeProxy;
let knownHosts: string;
const extraWorkers: Array<{ worker: Worker; running: Promise<void>; backend: WorkerBackend }> = [];

before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-fenced-launch'), logCreates: true });
  // Worker 1 reachable through ports that can swallow connections (one opens later, one never); known_hosts pins its key there too.
  proxy = await startBlackholeProxy({ host: bed.workers[1]!.address, port: bed.workers[1]!.port });
  silent = await startBlackholeProxy({ host: bed.workers[1]!.address, port: bed.workers[1]!.port });
  knownHosts = join(bed.dir, 'known_hosts_with_proxy');
  const pins = [proxy, silent].map((p) => `[127.0.0.1]:${p.port} ${bed.workers[1]!.hostKey}\n`).join('');
  await writeFile(knownHosts, `${(await readFile(bed.knownHostsFile, 'utf8')).trimEnd()}\n${pins}`);
  // The run's own worker gives up on a host after 8 s (the heartbeat timeout of these runs is 2 s).
  env = await startTestEnv({ env: workerEnv(8_000) });
});
after(async () => {
  for (const { worker, running, backend } of extraWorkers) {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => {});
    backend.close();
  }
  await env?.close();
  await proxy?.close();
  await silent?.close();
  await bed?.stop();
});

function workerEnv(connectDeadlineMs: number): NodeJS.ProcessEnv {
  return {
    ...testbedWorkerEnv(bed),
    RECOGDRIVE_KNOWN_HOSTS: knownHosts,
    RECOGDRIVE_SSH_CONNECT_DEADLINE_MS: String(connectDeadlineMs),
    RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS: '1000',
  };
}

/** Another worker on the run's Temporal server, with its own SSH settings (and the test workflow, or the real ones). */
async function extraWorker(taskQueue: string, connectDeadlineMs: number, workflows: 'probe' | 'real'): Promise<WorkerBackend> {
  const backend = await createBackend(workerEnv(connectDeadlineMs), env.dataDir);
  const connection = await NativeConnection.connect({ address: env.stack.server.address });
  const worker =
    workflows === 'real'
      ? await createRecogdriveWorker({ connection, namespace: env.stack.server.namespace, taskQueue, backend: backend.deps, workflowBundle: await workflowBundle() })
      : await Worker.create({
          connection,
          namespace: env.stack.server.namespace,
          taskQueue,
          workflowsPath: join(PROJECT_ROOT, 'test', 'testbed', 'fenced-launch-workflow.ts'),
          activities: createActivities(backend.deps),
        });
  extraWorkers.push({ worker, running: worker.run(), backend });
  return backend;
}

/** `docker run`/`create` calls a worker's host saw for a container, as their attempt labels. */
async function createsOn(worker: number, name: string): Promise<Array<{ at: string; attempt: string }>> {
  const file = join(bed.dir, `worker-${worker}`, CREATE_LOG);
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8'))
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([, n]) => n === name)
    .map(([at, , attempt]) => ({ at: at!, attempt: attempt! }));
}

async function containersOn(worker: number, name: string): Promise<string[]> {
  const { stdout } = await bed.docker(worker, ['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.ID}} {{.Labels}}']);
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

const hostOf = (worker: number) => ({ address: '127.0.0.1', port: worker === 1 ? proxy.port : bed.workers[0]!.port, user: bed.workers[worker]!.user });

test('a launch retried while its first try still waits for a silent host creates one container per host, and none after the stop', { skip }, async () => {
  const backend = await extraWorker('fence-probe', 60_000, 'probe');
  const name = 'rd-fence-probe-metric';
  const lease: ComputeLease = {
    name: 'fence-probe',
    backend: 'static',
    workers: [0, 1].map((w) => ({ kind: 'ssh' as const, host: '127.0.0.1', port: hostOf(w).port, user: bed.workers[w]!.user, hostKeys: [bed.workers[w]!.hostKey] })),
  };
  const launch = {
    stage: 'metricCache',
    contractVersion: 1,
    image: bed.images[0]!,
    containerName: name,
    workdir: '/',
    dockerFlags: [],
    mounts: [],
    env: {},
    command: ['sleep', '300'],
    addedArgs: [],
    output: { uri: `file://${bed.dir}/probe-output`, containerPath: '/out' },
  } as unknown as LaunchSpec;
  const compute = { backend: 'static', hosts: [hostOf(0), hostOf(1)] } as unknown as LaunchRequest['compute'];
  const request: LaunchRequest = { lease, launch, attempt: 1, compute };
  const stop: StopRequest = { lease, launch, attempt: 1, logsUri: `file://${bed.dir}/probe-logs` };

  // Each try has 8 s; the silent host answers after 19 s: tries 1 and 2 time out waiting for it, try 3 launches.
  const opening = setTimeout(() => proxy.open(), 19_000);
  try {
    const handle = await env.stack.client.workflow.start('fencedLaunchProbe', {
      workflowId: 'fence-probe',
      taskQueue: 'fence-probe',
      args: [{ launch: request, stop, startToCloseMs: 8_000 }],
    });
    assert.equal(await handle.result(), 'launched');
    const events = (await handle.fetchHistory()).events ?? [];
    const started = events.filter((e) => e.activityTaskStartedEventAttributes !== undefined && e.activityTaskStartedEventAttributes !== null);
    assert.ok((started[0]?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2, 'launchStage was retried while an earlier try still ran');
  } finally {
    clearTimeout(opening);
  }
  const stoppedAt = new Date().toISOString();
  for (const worker of [0, 1]) {
    assert.deepEqual((await createsOn(worker, name)).map((c) => c.attempt), ['1'], `exactly one container created on worker ${worker}`);
    assert.deepEqual(await containersOn(worker, name), [], `the stop removed worker ${worker}'s container`);
  }

  // A try that comes back after the stop (as the superseded ones might): the tombstone refuses it, on every host.
  const executor = backend.deps.executors.ssh!;
  for (const tryNumber of [2, 9]) {
    await assert.rejects(executor.launch(request, { heartbeat: () => {}, cancelled: new AbortController().signal, tryNumber }), (error: Error & { type?: string }) => {
      assert.equal(error.type, 'StageLaunchSuperseded');
      return true;
    });
  }
  for (const worker of [0, 1]) {
    assert.deepEqual((await createsOn(worker, name)).filter((c) => c.at > stoppedAt), [], `nothing created on worker ${worker} after the stop`);
    assert.deepEqual(await containersOn(worker, name), []);
  }
});

test('a host that never answers during launch fails the attempt as infrastructure, heartbeating past the heartbeat timeout, creating nothing', { skip }, async () => {
  const runId = 'fence-silent';
  const input = testbedInput(env, bed, { metricCache: { workers: [0, 1], settings: { maxAttempts: 1 } } }, {
    orchestration: { heartbeatTimeout: '2 seconds', progressInterval: '1 second', pollInterval: '1 second' },
  }) as Record<string, Record<string, unknown>>;
  input.metricCache!.compute = { backend: 'static', hosts: [hostOf(0), { ...hostOf(1), port: silent.port }] };
  const failure = await runFailure((await env.start(runId, input)).result());
  assert.equal(failure.stageType, 'StageInfrastructureError');
  assert.match(failure.message, /lost during launch/);
  assert.ok(silent.accepted() >= 1, 'the launch did try the silent host');
  const events = (await env.stack.client.workflow.getHandle(`${runId}/metricCache`).fetchHistory()).events ?? [];
  const launchScheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'launchStage');
  const launchStarts = events.filter((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === String(launchScheduled?.eventId));
  assert.deepEqual(launchStarts.map((e) => e.activityTaskStartedEventAttributes?.attempt), [1], 'one try: it heartbeated for 8 s against a 2 s heartbeat timeout');
  const name = containerName(runId, 'metricCache');
  for (const worker of [0, 1]) assert.deepEqual(await createsOn(worker, name), [], `nothing created on worker ${worker} before every host answered`);
});

test('an attempt declared failed keeps its verdict when its DONE.json would come later, and the stale container goes once its host answers', { skip }, async () => {
  // This worker waits up to 45 s for a host at launch: the lost host comes back during attempt 2's launch.
  await extraWorker('fence-slow', 45_000, 'real');
  const runId = 'fence-verdict';
  const input = testbedInput(
    env,
    bed,
    // Worker 0 of the slice (the one that writes DONE.json) is on bed worker 1, the host that gets lost.
    { metricCache: { workers: [1, 0], env: { RECOGDRIVE_SIM_DURATION_MS: '25000' }, settings: { maxAttempts: 2 } } },
    { orchestration: { heartbeatTimeout: '3 seconds', progressInterval: '1 second', pollInterval: '1 second' } },
  );
  const handle = await env.stack.client.workflow.start('recogdrivePipeline', { workflowId: runId, taskQueue: 'fence-slow', args: [input] });
  await waitUntilRunning(handle, 'metricCache');
  const name = containerName(runId, 'metricCache');
  const markers = besideMarkersUri(stageArtifactUri(`file://${env.dataDir}/artifacts`, runId, 'metricCache'))!.slice('file://'.length);
  await bed.stopWorker(1);
  try {
    // The orchestrator declares attempt 1 failed (host lost) while worker 0's container still runs there.
    await waitFor(() => existsSync(join(markers, 'attempt-1', 'FAILED.json')), 60_000, 'attempt-1/FAILED.json');
    // Then that container finishes: its wrapper would write DONE.json for attempt 1.
    await waitFor(async () => (await bed.docker(1, ['inspect', '--format', '{{.State.Status}}', name])).stdout.trim() === 'exited', 60_000, 'the lost host\'s container to exit');
    const failed = JSON.parse(await readFile(join(markers, 'attempt-1', 'FAILED.json'), 'utf8')) as { writer: string; reason: string };
    assert.equal(failed.writer, 'orchestrator');
    assert.match(failed.reason, /StageInfrastructureError/);
    const doneNow = await readFile(join(markers, 'DONE.json'), 'utf8').catch(() => undefined);
    assert.equal(doneNow, undefined, 'no DONE.json for an attempt declared failed');
  } finally {
    await bed.startWorker(1);
  }
  const summary = (await handle.result()) as RunSummary;
  const metric = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(metric.attempts, 2, 'the stage succeeded on attempt 2, not on the failed attempt 1');
  const done = JSON.parse(await readFile(join(markers, 'DONE.json'), 'utf8')) as { attempt: number };
  assert.equal(done.attempt, 2);
  for (const worker of [0, 1]) {
    assert.deepEqual((await createsOn(worker, name)).map((c) => c.attempt), ['1', '2'], `one container per attempt on worker ${worker}`);
    assert.deepEqual(await containersOn(worker, name), [], `no container left on worker ${worker}, the stale attempt-1 one included`);
  }
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('a container replaced under the watcher fails the attempt as infrastructure, not as the exit 143 of a code error', { skip }, async () => {
  const runId = 'fence-replaced';
  const handle = await env.start(
    runId,
    testbedInput(env, bed, { metricCache: { workers: [0], env: { RECOGDRIVE_SIM_DURATION_MS: '120000' }, settings: { maxAttempts: 1 } } }, {
      orchestration: { heartbeatTimeout: '3 seconds', progressInterval: '1 second', pollInterval: '1 second' },
    }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const name = containerName(runId, 'metricCache');
  // What a second launch used to do: the old container killed (exit 143 to its `docker wait`), a new one under the same name.
  await bed.docker(0, ['rm', '-f', '-t', '1', name]);
  await bed.docker(0, ['run', '-d', '--name', name, '--label', 'recogdrive.owner=recogdrive', '--label', 'recogdrive.attempt=1', bed.images[0]!, 'sleep', '120']);
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageInfrastructureError');
  assert.match(failure.message, /container was (replaced by another launch|disappeared)/);
  assert.deepEqual(await containersOn(0, name), [], 'the stop removed the replacement too');
});
