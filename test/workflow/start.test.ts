/** Starting runs: bad input and unusable backends start nothing; ids are deterministic and idempotent. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { assertNothingLeaked, runFailure } from '../helpers/assertions.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

async function eventTypes(workflowId: string): Promise<string[]> {
  const history = await env.stack.client.workflow.getHandle(workflowId).fetchHistory();
  return (history.events ?? []).map((e) => String(e.eventType));
}

test('an invalid input fails the run at once with the failing fields, and nothing is scheduled', async () => {
  const bad = { ...env.input(), experiment: 'Bad Name', stage2: { ditType: 'huge' } };
  const failure = await runFailure((await env.start('bad-input', bad)).result());
  assert.equal(failure.type, 'InvalidPipelineInput');
  assert.match(failure.message, /experiment: /);
  assert.match(failure.message, /stage2\.ditType: /);
  const events = await eventTypes('bad-input');
  assert.ok(!events.some((e) => /ACTIVITY_TASK_SCHEDULED|START_CHILD_WORKFLOW/.test(e)), events.join(','));
  await assertNothingLeaked(env);
});

test('a backend this worker does not have fails the run before any stage starts', async () => {
  const input = {
    ...env.input(),
    gcp: { project: 'my-project' },
    stage2: { compute: { backend: 'tpu-api', accelerator: 'v6e-4', zones: ['us-east5-b'] } },
  };
  const failure = await runFailure((await env.start('no-tpu-here', input)).result());
  assert.match(failure.message, /compute backend "tpu-api" is not available on this worker/);
  const events = await eventTypes('no-tpu-here');
  assert.ok(!events.some((e) => e.includes('START_CHILD_WORKFLOW')), 'no stage was started');
  await assertNothingLeaked(env);
});

test('the local backend refuses a gs:// artifact root before any stage starts', async () => {
  const failure = await runFailure((await env.start('local-gs', { ...env.input(), artifactRoot: 'gs://some-bucket/x' })).result());
  assert.match(failure.message, /artifactRoot must be file:\/\//);
  await assertNothingLeaked(env);
});

test('starting the same run id twice gives the same run; children are <runId>/<stage>; a finished id is not reused', async () => {
  const options = {
    workflowId: 'idem-run',
    taskQueue: env.stack.taskQueue,
    args: [env.input({ stages: ['metricCache'], durationMs: 1500 })],
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
  };
  const first = await env.stack.client.workflow.start('recogdrivePipeline', options);
  const second = await env.stack.client.workflow.start('recogdrivePipeline', options);
  assert.equal(second.firstExecutionRunId, first.firstExecutionRunId);
  await first.result();
  const child = await env.stack.client.workflow.getHandle('idem-run/metricCache').describe();
  assert.equal(child.status.name, 'COMPLETED');
  assert.equal(child.parentExecution?.workflowId, 'idem-run');
  await assert.rejects(env.stack.client.workflow.start('recogdrivePipeline', options), WorkflowExecutionAlreadyStartedError);
});

test('a second execution under a used run id (temporal workflow start allows it by default) is refused before any stage starts', async () => {
  const input = env.input({ stages: ['metricCache'], durationMs: 500 });
  const options = { workflowId: 'used-id', taskQueue: env.stack.taskQueue, args: [input] };
  await (await env.stack.client.workflow.start('recogdrivePipeline', options)).result();
  // Temporal's default reuse policy (ALLOW_DUPLICATE) lets a finished id start again: the run record says whose it is.
  const again = await env.stack.client.workflow.start('recogdrivePipeline', { ...options, args: [{ ...input, stage2: { epochs: 3 } }] });
  const failure = await runFailure(again.result());
  assert.match(failure.message, /run id used-id was already used by a run planned at .*start this run with another id/);
  const events = (await again.fetchHistory()).events ?? [];
  assert.ok(!events.some((e) => String(e.eventType).includes('START_CHILD_WORKFLOW')), 'no stage was started');
  await assertNothingLeaked(env);
});
