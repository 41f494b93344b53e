/**
 * Temporal glue of the API: a run is a `recogdrivePipeline` workflow whose id is the run id.
 * Starting (once per id), describing, and reading the input a run was started with.
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { canonicalJson } from '../../pipeline/fingerprint.ts';
import { PIPELINE_WORKFLOW, runInput } from '../rerun-input.ts';
import { HttpError, notFound } from './errors.ts';

export { PIPELINE_WORKFLOW, runInput } from '../rerun-input.ts';

/** The run's Temporal description; 404 when there is no such run (or the id is not a pipeline run). */
export async function describeRun(client: Client, runId: string): Promise<WorkflowExecutionDescription> {
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(runId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw notFound(runId);
    throw error;
  }
  if (description.type !== PIPELINE_WORKFLOW) throw notFound(runId);
  return description;
}

/**
 * Starts the run `runId` with `input` unless a run with that id exists (running or finished):
 * then it is the same run when it was started with the same input, and a conflict otherwise.
 */
export async function startOnce(client: Client, taskQueue: string, runId: string, input: unknown): Promise<'created' | 'existing'> {
  try {
    await client.workflow.start(PIPELINE_WORKFLOW, {
      workflowId: runId,
      taskQueue,
      args: [input],
      // FAIL tells a new run from an existing one atomically; a finished run's id is never reused.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
    return 'created';
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
  const existing = await runInput(client, runId);
  if (canonicalJson(existing) !== canonicalJson(input)) {
    throw new HttpError(409, `run ${runId} already exists with a different input (reuse of an Idempotency-Key or run id for another request)`);
  }
  return 'existing';
}
