/** Cancelling a run stops every stage and releases all compute before the run ends. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { STAGES } from '../../pipeline/stages.ts';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { runStatusQuery } from '../../workflows/messages.ts';
import { requestCancel } from '../../workers/cancel-request.ts';
import { formatStatus } from '../../workers/format.ts';
import { runStatus } from '../../workers/runs.ts';
import { assertNothingLeaked, runFailure } from '../helpers/assertions.ts';
import { type TestEnv, processesMentioning, startTestEnv, waitUntilRunning } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

test('cancelling a run mid-stage stops the running stages and releases their compute', async () => {
  const handle = await env.start('cancel-run', env.input({ durationMs: 60_000 }));
  await waitUntilRunning(handle, 'stage1', 'metricCache');
  assert.equal((await env.compute.list()).length, 2, 'stage1 and metricCache hold compute');
  assert.ok((await processesMentioning(env.dataDir)).length > 0, 'their processes run');

  await handle.cancel();
  const error = await handle.result().then(
    () => assert.fail('a cancelled run returned a result'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, `got ${String(error)}`);
  assert.equal((await handle.describe()).status.name, 'CANCELLED');

  const status = await handle.query(runStatusQuery);
  assert.equal(status.state, 'cancelled');
  assert.deepEqual(
    status.stages.map((s) => s.state),
    STAGES.map(() => 'cancelled'),
  );
  // Every message says "cancelled" and why: the run was cancelled (never the SDK's "Child Workflow execution failed").
  assert.equal(status.error, 'run cancelled');
  assert.deepEqual(
    Object.fromEntries(status.stages.map((s) => [s.stage, s.error])),
    Object.fromEntries(STAGES.map((stage) => [stage, ['stage1', 'metricCache'].includes(stage) ? 'run cancelled' : 'not started: run cancelled'])),
  );
  // The clients add who asked, from the cancel request in the history (here: this test's client identity).
  const shown = await runStatus(env.stack.client, 'cancel-run');
  assert.equal(shown.cancelledBy, env.stack.client.options.identity);
  assert.equal(shown.error, `run cancelled by ${env.stack.client.options.identity}`);
  for (const stage of ['stage1', 'metricCache']) {
    const child = await env.stack.client.workflow.getHandle(`cancel-run/${stage}`).describe();
    assert.equal(child.status.name, 'CANCELLED');
  }
  await assertNothingLeaked(env);
});

test('terminating a run (no cleanup of its own) still makes every stage release its compute', async () => {
  const handle = await env.start('terminate-run', env.input({ durationMs: 60_000 }));
  await waitUntilRunning(handle, 'metricCache');
  await handle.terminate('operator terminated the run');
  // parentClosePolicy REQUEST_CANCEL: the stages are cancelled, not terminated, so their cleanup runs.
  for (const stage of ['stage1', 'metricCache']) {
    const child = env.stack.client.workflow.getHandle(`terminate-run/${stage}`);
    await child.result().catch(() => {});
    assert.equal((await child.describe()).status.name, 'CANCELLED');
  }
  await assertNothingLeaked(env);
});

test('a cancel request names who asked: the run status of the CLI and the API (runStatus) and its text say "run cancelled by" the requester', async () => {
  const handle = await env.start('cancel-named', env.input({ stages: ['metricCache'], durationMs: 60_000 }));
  await waitUntilRunning(handle, 'metricCache');
  await requestCancel(env.stack.client, 'cancel-named', 'recogdrive-api caller ops-team', 'POST /runs/:id/cancel');
  await handle.result().catch(() => {});
  const status = await runStatus(env.stack.client, 'cancel-named');
  assert.equal(status.state, 'cancelled');
  assert.equal(status.cancelledBy, 'recogdrive-api caller ops-team');
  const text = formatStatus(status);
  assert.match(text.split('\n')[0]!, /: cancelled — run cancelled by recogdrive-api caller ops-team: POST \/runs\/:id\/cancel$/);
  assert.doesNotMatch(text, /Child Workflow/);
  await assertNothingLeaked(env);
});

test('a stage failure cancels the other branches "because stage X failed"; a stage cancelled on its own is said so', async () => {
  const failing = await env.start(
    'cancel-by-failure',
    env.input({ durationMs: 500, simulate: { featureCache: { fault: { kind: 'crash', at: 0.3 } }, metricCache: { durationMs: 60_000 } } }),
  );
  await runFailure(failing.result());
  const afterFailure = await failing.query(runStatusQuery);
  const byStage = Object.fromEntries(afterFailure.stages.map((s) => [s.stage, s]));
  assert.equal(byStage.featureCache!.state, 'failed');
  assert.equal(byStage.metricCache!.state, 'cancelled');
  assert.equal(byStage.metricCache!.error, 'cancelled because stage featureCache failed');
  assert.equal(byStage.stage2!.error, 'not started: cancelled because stage featureCache failed');
  assert.doesNotMatch(JSON.stringify(afterFailure), /Child Workflow/);

  // Someone cancels one stage's workflow, not the run: the run fails, and says what happened.
  const handle = await env.start('cancel-one-stage', env.input({ stages: ['metricCache'], durationMs: 60_000 }));
  await waitUntilRunning(handle, 'metricCache');
  await env.stack.client.workflow.getHandle('cancel-one-stage/metricCache').cancel();
  const failure = await runFailure(handle.result());
  assert.match(failure.message, /^stage metricCache failed: cancelled from outside the run: its workflow cancel-one-stage\/metricCache got a cancel request of its own/);
  const status = await handle.query(runStatusQuery);
  const metric = status.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(metric.state, 'failed');
  assert.match(metric.error!, /^cancelled from outside the run/);
  assert.doesNotMatch(JSON.stringify(status), /Child Workflow/);
  await assertNothingLeaked(env);
});
