/**
 * Progress survives a watcher retry: Stage 1 prints its dataset length (the only line its total
 * steps come from) once, at the start. The worker is replaced mid-stage, so a new watcher on
 * another worker resumes mid-log from the heartbeat; `status` must still show the total steps,
 * the bar and an ETA, and keep them to the end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { RunStatus, StageStatus } from '../../pipeline/status.ts';
import { createBackend } from '../../workers/backend.ts';
import { createRecogdriveWorker } from '../../workers/temporal-worker.ts';
import { assertNothingLeaked } from '../helpers/assertions.ts';
import { startTestEnv, waitForStatus, workflowBundle, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
let replacement: { worker: Worker; running: Promise<void>; close(): Promise<void> } | undefined;

before(async () => {
  env = await startTestEnv();
});
after(async () => {
  if (replacement !== undefined) {
    replacement.worker.shutdown();
    await replacement.running.catch(() => {});
    await replacement.close();
  }
  await env?.close();
});

/** A second worker on the same server and task queue, as after a deploy or a crash. */
async function startReplacementWorker(): Promise<NonNullable<typeof replacement>> {
  const connection = await NativeConnection.connect({ address: env.stack.server.address });
  const backend = await createBackend(process.env, env.dataDir);
  const worker = await createRecogdriveWorker({
    connection,
    namespace: env.stack.server.namespace,
    taskQueue: env.stack.taskQueue,
    backend: backend.deps,
    workflowBundle: await workflowBundle(),
  });
  return {
    worker,
    running: worker.run(),
    async close() {
      backend.close();
      await connection.close();
    },
  };
}

const stage1 = (status: RunStatus): StageStatus => status.stages.find((s) => s.stage === 'stage1')!;

/** temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED (the proto package is no direct dependency). */
const PENDING_ACTIVITY_STATE_STARTED = 2;

/** Waits until Stage 1's watcher runs as a retry (attempt 2 or later). */
async function watcherRetried(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { raw } = await env.stack.client.workflow.getHandle('progress-retry/stage1').describe();
    const watch = raw.pendingActivities?.find((a) => a.activityType?.name === 'watchStage');
    if ((watch?.attempt ?? 1) > 1 && watch?.state === PENDING_ACTIVITY_STATE_STARTED) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.fail('the watcher was not retried within 60 s of the worker shutdown');
}

/** The last heartbeat details of Stage 1's running watcher (polled until it has heartbeated). */
async function watcherHeartbeat(): Promise<{ tracker?: { current?: { totalSteps?: number } } } | undefined> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { raw } = await env.stack.client.workflow.getHandle('progress-retry/stage1').describe();
    const watch = raw.pendingActivities?.find((a) => a.activityType?.name === 'watchStage');
    const payload = watch?.heartbeatDetails?.payloads?.[0];
    if (payload !== undefined) {
      const details = defaultPayloadConverter.fromPayload<{ tracker?: { current?: { totalSteps?: number } } }>(payload);
      if (details.tracker?.current?.totalSteps !== undefined) return details;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return undefined;
}

test('after the watcher is retried on another worker, status still shows total steps, bar and ETA', { timeout: 180_000 }, async () => {
  // Many epochs over the small seeded dataset: a step line every fraction of a second, for 40 s. A
  // short heartbeat timeout: the old worker's watcher, stopped at its shutdown, is retried soon after.
  const input = env.input({ stages: ['stage1'], durationMs: 40_000, stageSettings: { stage1: { epochs: 20 } } });
  const handle = await env.start('progress-retry', { ...input, orchestration: { heartbeatTimeout: '5 seconds', progressInterval: '1 second', pollInterval: '1 second' } });
  const before = stage1(await waitForStatus(handle, (s) => (stage1(s).progress?.step ?? 0) > 0 && stage1(s).progress?.totalSteps !== undefined));
  const total = before.progress!.totalSteps!;
  // The watcher heartbeats what it learned, for whichever watcher comes next.
  const checkpoint = await watcherHeartbeat();
  assert.equal(checkpoint?.tracker?.current?.totalSteps, total, JSON.stringify(checkpoint));

  // Replace the worker: the new one polls, the old one stops; its watcher is cancelled after the
  // shutdown grace time and Temporal retries it on the new worker, which reads on mid-log.
  replacement = await startReplacementWorker();
  env.stack.worker.shutdown();
  await watcherRetried();
  const retriedAt = Date.now();

  // Progress from a line the retried watcher read still has the total, the bar and an ETA.
  const after = stage1(
    await waitForStatus(handle, (s) => (stage1(s).progress?.updatedAt ?? 0) > retriedAt + 1_500 && stage1(s).state === 'running', 60_000),
  );
  assert.equal(after.progress!.totalSteps, total, JSON.stringify(after.progress));
  assert.ok(after.progress!.fraction !== undefined && after.progress!.fraction > before.progress!.fraction!, JSON.stringify(after.progress));
  assert.ok(after.progress!.etaSeconds !== undefined, `an ETA: ${JSON.stringify(after.progress)}`);

  await handle.result();
  // The watcher did run more than once: the stage's history says so.
  const history = await env.stack.client.workflow.getHandle('progress-retry/stage1').fetchHistory();
  const watchAttempts = (history.events ?? [])
    .filter((e) => e.activityTaskStartedEventAttributes !== undefined && e.activityTaskStartedEventAttributes !== null)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
  assert.ok(watchAttempts.some((attempt) => attempt > 1), `activity attempts ${JSON.stringify(watchAttempts)}: the watcher was retried`);
  await assertNothingLeaked(env);
});
