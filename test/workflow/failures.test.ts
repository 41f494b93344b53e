/** How stage failures end a run: typed, readable, retried only when a new attempt can help, nothing leaked. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunSummary } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { assertNothingLeaked, runFailure } from '../helpers/assertions.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

test('a crashing stage fails the run with its error, cancels the other branch and releases everything', async () => {
  const handle = await env.start(
    'crash-run',
    env.input({ durationMs: 500, simulate: { featureCache: { fault: { kind: 'crash', at: 0.3 } }, metricCache: { durationMs: 60_000 } } }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.type, 'StageFailed');
  assert.equal(failure.stage, 'featureCache');
  assert.equal(failure.stageType, 'StageCodeError');
  assert.match(failure.message, /stage featureCache failed: featureCache exited with code 1/);
  assert.match(failure.message, /simulated crash/, 'the last log lines are in the error');

  const status = await handle.query(runStatusQuery);
  const state = Object.fromEntries(status.stages.map((s) => [s.stage, s.state]));
  assert.deepEqual(state, {
    stage1: 'succeeded',
    featureCache: 'failed',
    stage2: 'cancelled',
    stage2Export: 'cancelled',
    metricCache: 'cancelled',
    stage3: 'cancelled',
    stage3Export: 'cancelled',
    eval: 'cancelled',
  });
  assert.equal(status.state, 'failed');
  const metric = await env.stack.client.workflow.getHandle('crash-run/metricCache').describe();
  assert.equal(metric.status.name, 'CANCELLED', 'the parallel branch was cancelled, not left running');
  await assertNothingLeaked(env);
});

test('exit 137 fails the stage as out-of-memory without a second attempt', async () => {
  const handle = await env.start('oom-run', env.input({ stages: ['stage1'], simulate: { stage1: { fault: { kind: 'oom' } } } }));
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageOutOfMemory');
  assert.match(failure.message, /killed for memory \(exit 137\)/);
  const stage1 = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'stage1')!;
  assert.equal(stage1.attempt, 1);
  await assertNothingLeaked(env);
});

test('partial output that exits 0 fails verification, naming what is missing, and is not retried', async () => {
  const handle = await env.start(
    'partial-run',
    env.input({ stages: ['stage1', 'featureCache'], simulate: { featureCache: { fault: { kind: 'partial' } } } }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageVerificationFailed');
  assert.match(failure.message, /token folders are incomplete/);
  assert.match(failure.message, /lacks trajectory_target\.gz/);
  const stage = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'featureCache')!;
  assert.equal(stage.attempt, 1);
  await assertNothingLeaked(env);
});

test('a hang is detected, the attempt stopped, and a fresh attempt on new compute completes the stage', async () => {
  const handle = await env.start(
    'hang-once',
    env.input({
      stages: ['metricCache'],
      simulate: { metricCache: { fault: { kind: 'hang', at: 0.2, attempts: [1] } } },
      stageSettings: { metricCache: { hangTimeout: '2 seconds', maxAttempts: 2 } },
    }),
  );
  const summary = (await handle.result()) as RunSummary;
  const metric = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(metric.attempts, 2);
  assert.equal(metric.computeName, 'rd-hang-once-metric-cache-2');
  await assertNothingLeaked(env);
});

test('a stage that hangs on every attempt fails as a hang after maxAttempts', async () => {
  const handle = await env.start(
    'hang-always',
    env.input({
      stages: ['metricCache'],
      simulate: { metricCache: { fault: { kind: 'hang', at: 0.1 } } },
      stageSettings: { metricCache: { hangTimeout: '1500ms', maxAttempts: 2 } },
    }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageHang');
  assert.match(failure.message, /made no progress/);
  const stage = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(stage.attempt, 2);
  await assertNothingLeaked(env);
});

test('a stage that outruns its timeout fails as a timeout (not a hang), is stopped and releases its compute', async () => {
  const handle = await env.start(
    'timeout-run',
    env.input({ stages: ['metricCache'], simulate: { metricCache: { durationMs: 60_000 } }, stageSettings: { metricCache: { timeout: '3 seconds' } } }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageTimeout');
  assert.match(failure.message, /ran longer than its timeout/);
  await assertNothingLeaked(env);
});
