/** Cancelling a run stops every stage and releases all compute before the run ends. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { STAGES } from '../../pipeline/stages.ts';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { runStatusQuery } from '../../workflows/messages.ts';
import { assertNothingLeaked } from '../helpers/assertions.ts';
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
