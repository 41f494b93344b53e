/** Shared checks of the workflow tests: nothing leaked, failures carry their stage and type. */
import assert from 'node:assert/strict';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import { ApplicationFailure } from '@temporalio/common';
import { processesMentioning, type TestEnv } from './local-env.ts';

/** No compute lease and no stage process is left behind by a run. */
export async function assertNothingLeaked(env: TestEnv): Promise<void> {
  assert.deepEqual(await env.compute.list(), [], 'no compute lease is left');
  assert.deepEqual(await processesMentioning(env.dataDir), [], 'no stage process is left running');
}

/** The run's failure, with the failed stage and the stage's failure type from StageFailed's details. */
export async function runFailure(result: Promise<unknown>): Promise<{ message: string; type: string | undefined; stage?: string; stageType?: string }> {
  const error = await result.then(
    () => assert.fail('the run succeeded'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(error)}`);
  const cause = error.cause;
  assert.ok(cause instanceof ApplicationFailure, `expected ApplicationFailure, got ${String(cause)}`);
  const detail = cause.details?.[0] as { stage?: string; type?: string } | undefined;
  return {
    message: cause.message,
    type: cause.type ?? undefined,
    ...(detail?.stage === undefined ? {} : { stage: detail.stage }),
    ...(detail?.type === undefined ? {} : { stageType: detail.type }),
  };
}

/** The stages of a run that had a stage workflow (`<runId>/<stage>`), i.e. that ran, in DAG order. */
export async function stageWorkflowsOf(env: TestEnv, runId: string): Promise<StageName[]> {
  const ran: StageName[] = [];
  for (const stage of STAGES) {
    try {
      await env.stack.client.workflow.getHandle(`${runId}/${stage}`).describe();
      ran.push(stage);
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
  return ran;
}
