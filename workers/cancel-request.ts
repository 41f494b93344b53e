/**
 * Who cancelled a run. Temporal keeps the identity and reason of a cancel request in the run's
 * history (WorkflowExecutionCancelRequested), but workflow code never sees them: the run's status
 * says "run cancelled", and the clients (`recogdrive status`, the API's run view) add by whom.
 * Our own cancels (CLI, API) name the requester; `temporal workflow cancel` sends the CLI's identity.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Client } from '@temporalio/client';
import type { RunStatus } from '../pipeline/status.ts';

export interface CancelRequest {
  /** The requester as the cancel request named it (e.g. "recogdrive-cli root@host", "recogdrive-api caller ops"). */
  identity: string;
  reason?: string;
}

/** Pages of history read backwards at most (the request sits near the end of a cancelled run's history). */
const MAX_PAGES = 5;

/** The cancel request of a run, newest first; undefined when none was made (or it is too far back). */
export async function cancelRequestOf(client: Client, runId: string): Promise<CancelRequest | undefined> {
  let nextPageToken: Uint8Array | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const response = await client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace,
      execution: { workflowId: runId },
      maximumPageSize: 200,
      ...(nextPageToken === undefined ? {} : { nextPageToken }),
    });
    for (const event of response.history?.events ?? []) {
      const request = event.workflowExecutionCancelRequestedEventAttributes;
      if (request === null || request === undefined) continue;
      const reason = request.cause ?? '';
      return { identity: request.identity || 'an unnamed client', ...(reason === '' ? {} : { reason }) };
    }
    if (response.nextPageToken === null || response.nextPageToken === undefined || response.nextPageToken.length === 0) return undefined;
    nextPageToken = response.nextPageToken;
  }
  return undefined;
}

/** "run cancelled by <who>[: <reason>]". */
export function cancelledByText(request: CancelRequest): string {
  return `run cancelled by ${request.identity}${request.reason === undefined ? '' : `: ${request.reason}`}`;
}

/** A cancelled run's status with the requester added (`cancelledBy`, and in `error`); other statuses unchanged. */
export async function withCancelRequester(client: Client, runId: string, status: RunStatus): Promise<RunStatus> {
  if (status.state !== 'cancelled') return status;
  const request = await cancelRequestOf(client, runId).catch(() => undefined);
  if (request === undefined) return status;
  return { ...status, cancelledBy: request.identity, error: cancelledByText(request) };
}

/** Cancels a run as `by` (kept in its history; `status` shows it). */
export async function requestCancel(client: Client, runId: string, by: string, reason: string): Promise<void> {
  await client.workflowService.requestCancelWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId: runId },
    identity: by,
    reason,
    requestId: randomUUID(),
  });
}

/** The CLI's identity in a cancel request: the OS user and host. */
export function cliRequester(): string {
  return `recogdrive-cli ${os.userInfo().username}@${os.hostname()}`;
}
