/**
 * Runs as the CLI and the HTTP API see them: a `recogdrivePipeline` workflow whose id is the run
 * id. Starting once per id, describing, and reading the status, with the three ways a request
 * about a run goes wrong as their own errors (no such run, the id is taken, no status to show).
 */
import {
  QueryNotRegisteredError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { canonicalJson } from '../pipeline/fingerprint.ts';
import type { RunStatus } from '../pipeline/status.ts';
import { runStatusQuery } from '../workflows/messages.ts';
import { withCancelRequester } from './cancel-request.ts';
import { PIPELINE_WORKFLOW, RerunRequestError, runInput } from './rerun-input.ts';

export { PIPELINE_WORKFLOW } from './rerun-input.ts';

/** There is no run with this id (or the workflow with this id is not a pipeline run). */
export class RunNotFound extends Error {
  readonly runId: string;
  constructor(runId: string) {
    super(`no run ${runId}`);
    this.name = 'RunNotFound';
    this.runId = runId;
  }
}

/** The run id is taken by a run started with another input. */
export class RunIdTaken extends Error {
  readonly runId: string;
  constructor(runId: string, what: string) {
    super(`run ${runId} already exists with a different input (${what})`);
    this.name = 'RunIdTaken';
    this.runId = runId;
  }
}

/** The run ended before it had a status to show: it failed (or was stopped) before planning, e.g. on an invalid input or run id. */
export class RunWithoutStatus extends Error {
  readonly runId: string;
  readonly temporalStatus: string;
  constructor(runId: string, temporalStatus: string, failure: string | undefined) {
    super(`run ${runId} ended (${temporalStatus}) before any stage was planned${failure === undefined ? '' : `: ${oneLine(failure)}`}`);
    this.name = 'RunWithoutStatus';
    this.runId = runId;
    this.temporalStatus = temporalStatus;
  }
}

/** The run has no such log: the stage is not run by it, the run ended before it had stages, or the attempt / worker wrote none (yet). */
export class LogNotFound extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogNotFound';
  }
}

/** "invalid pipeline input:\n  - a: x\n  - b: y" → "invalid pipeline input: a: x; b: y". */
export function oneLine(message: string): string {
  return message.replace(/:\n\s*-\s*/g, ': ').replace(/\n\s*-\s*/g, '; ').replace(/\s*\n\s*/g, ' ');
}

/** The run's Temporal description; RunNotFound when there is no such run (or the id is not a pipeline run). */
export async function describeRun(client: Client, runId: string): Promise<WorkflowExecutionDescription> {
  let description: WorkflowExecutionDescription;
  try {
    description = await client.workflow.getHandle(runId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new RunNotFound(runId);
    throw error;
  }
  if (description.type !== PIPELINE_WORKFLOW) throw new RunNotFound(runId);
  return description;
}

/**
 * The run's status query. A run that ended before registering its status (refused input or run
 * id) is RunWithoutStatus naming why it failed; any other query failure is the server's.
 */
export async function runStatus(client: Client, runId: string): Promise<RunStatus> {
  const handle = client.workflow.getHandle(runId);
  try {
    // A cancelled run's status names who cancelled it (from the cancel request in its history).
    return await withCancelRequester(client, runId, await handle.query(runStatusQuery));
  } catch (error) {
    const description = await describeRun(client, runId);
    if (!(error instanceof QueryNotRegisteredError) || description.status.name === 'RUNNING') throw error;
    const failure = await handle.result().then(
      () => undefined,
      (failed: unknown) => (failed instanceof WorkflowFailedError ? (failed.cause?.message ?? failed.message) : undefined),
    );
    throw new RunWithoutStatus(runId, description.status.name, failure);
  }
}

/**
 * Starts the run `runId` with `input` unless a run with that id exists (running or finished):
 * then it is the same run when it was started with the same input (compared with the input in
 * its first history event, so this holds across restarts of the caller), and RunIdTaken otherwise.
 */
export async function startOnce(client: Client, taskQueue: string, runId: string, input: unknown, what = 'reuse of a run id for another request'): Promise<'created' | 'existing'> {
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
  let same: boolean;
  try {
    same = await sameInput(client, runId, input);
  } catch (error) {
    if (error instanceof RunNotFound) throw new RunIdTaken(runId, 'a workflow that is not a pipeline run has this id');
    throw error;
  }
  if (!same) throw new RunIdTaken(runId, what);
  return 'existing';
}

/** True when the run `runId` exists and was started with `input` (key order aside); false when it has another input; RunNotFound when there is none. */
export async function sameInput(client: Client, runId: string, input: unknown): Promise<boolean> {
  let existing: unknown;
  try {
    existing = await runInput(client, runId);
  } catch (error) {
    // Also a workflow of another type under this id.
    if (error instanceof RerunRequestError && error.kind === 'unknown-run') throw new RunNotFound(runId);
    throw error;
  }
  return canonicalJson(existing) === canonicalJson(input);
}
