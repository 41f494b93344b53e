/**
 * A partial rerun's input, the same for the HTTP API and the CLI: the input the source run was
 * started with (its first history event), patched with `overrides` (JSON Merge Patch, RFC 7396:
 * objects merge, arrays and values replace, null removes), plus the rerun's reuse settings.
 * A patch naming `__proto__`, `constructor` or `prototype` anywhere is refused, and the merge
 * itself only ever touches own keys (pipeline/safe-keys.ts).
 */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { applyMergePatch, prototypeKeyPaths } from '../pipeline/safe-keys.ts';
import type { StageName } from '../pipeline/stages.ts';

export const PIPELINE_WORKFLOW = 'recogdrivePipeline';
/** gRPC NOT_FOUND. */
const NOT_FOUND = 5;

/** Why a rerun cannot be built: the request is wrong, or the source run is not there / has no input. */
export class RerunRequestError extends Error {
  readonly kind: 'bad-request' | 'unknown-run' | 'no-input';
  readonly issues: readonly string[] | undefined;
  constructor(kind: RerunRequestError['kind'], message: string, issues?: readonly string[]) {
    super(message);
    this.name = 'RerunRequestError';
    this.kind = kind;
    this.issues = issues;
  }
}

export interface RerunRequest {
  fromStage?: StageName;
  force?: StageName[];
  overrides?: Record<string, unknown>;
}

/**
 * The input a run was started with: the first argument of its first history event. Reads one
 * event (not the whole history of a long run).
 */
export async function runInput(client: Client, runId: string): Promise<unknown> {
  let history;
  try {
    ({ history } = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId: runId },
      maximumPageSize: 1,
    }));
  } catch (error) {
    if (isGrpcServiceError(error) && error.code === NOT_FOUND) throw new RerunRequestError('unknown-run', `no run ${runId}`);
    throw error;
  }
  const started = history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (started?.workflowType?.name !== PIPELINE_WORKFLOW) throw new RerunRequestError('unknown-run', `no run ${runId}`);
  const payload = started.input?.payloads?.[0];
  if (payload === undefined) throw new RerunRequestError('no-input', `run ${runId} was started without an input`);
  return defaultPayloadConverter.fromPayload(payload);
}

/** The rerun's input: the source's input patched with the overrides, and the rerun's reuse settings. */
export function rerunInput(source: string, sourceInput: unknown, request: RerunRequest): Record<string, unknown> {
  const prototypeKeys = prototypeKeyPaths(request.overrides ?? {}).map((path) => `overrides.${path}`);
  if (prototypeKeys.length > 0) {
    throw new RerunRequestError(
      'bad-request',
      `${prototypeKeys.join(', ')}: keys named __proto__, constructor or prototype are not allowed`,
      prototypeKeys.map((path) => `${path}: keys named __proto__, constructor or prototype are not allowed`),
    );
  }
  if (request.overrides !== undefined && Object.hasOwn(request.overrides, 'reuse')) {
    throw new RerunRequestError('bad-request', 'overrides.reuse cannot be set: a rerun reuses verified outputs; use fromStage and force', [
      'overrides.reuse: not allowed in a rerun (use fromStage and force)',
    ]);
  }
  const base = typeof sourceInput === 'object' && sourceInput !== null && !Array.isArray(sourceInput) ? sourceInput : {};
  const merged = applyMergePatch(base, request.overrides ?? {}) as Record<string, unknown>;
  return {
    ...merged,
    reuse: {
      policy: 'verified',
      rerunOf: source,
      ...(request.fromStage === undefined ? {} : { fromStage: request.fromStage }),
      ...(request.force === undefined ? {} : { force: request.force }),
    },
  };
}
