/**
 * Runs: start (idempotent by key), list by experiment and state, status, cancel.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Client } from '@temporalio/client';
import { defaultRunId } from '../../pipeline/naming.ts';
import type { RunState } from '../../pipeline/status.ts';
import { EXPERIMENT_ATTRIBUTE, RERUN_OF_ATTRIBUTE, STATUS_ATTRIBUTE } from '../../workflows/search-attributes.ts';
import { parseForWorker } from '../worker-roots.ts';
import { HttpError } from './errors.ts';
import { gpuHoursSoFar, tpuHoursSoFar } from './estimate.ts';
import { describeRun, PIPELINE_WORKFLOW, RunIdTaken, RunNotFound, runStatus, RunWithoutStatus, sameInput, startOnce } from '../runs.ts';
import { requestCancel } from '../cancel-request.ts';
import { Experiment, PipelineInputBody, RUN_STATES, RunId, RunParams } from './schemas.ts';

export interface RunsRoutesOptions {
  client: Client;
  taskQueue: string;
  /** The worker's allowed roots, when known (workers/worker-roots.ts). */
  allowedRoots: readonly string[];
}

/**
 * The run id an Idempotency-Key stands for: derived from the key alone, so the same key is always
 * the same run whatever the body says (a different body is then a 409, found by comparing it with
 * the run's first input), and the same across restarts of the API.
 */
export function idempotentRunId(key: string): string {
  return `key-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

/** Before the key alone named the run, its id also held the experiment; a key from then still finds its run. */
export function legacyIdempotentRunId(experiment: string, key: string): string {
  return `${experiment}-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** A run an Idempotency-Key started under the old id scheme: 'existing' with the same input; RunIdTaken with another; undefined when there is none. */
async function legacyRun(client: Client, experiment: string, key: string, input: unknown): Promise<{ runId: string } | undefined> {
  const runId = legacyIdempotentRunId(experiment, key);
  try {
    if (await sameInput(client, runId, input)) return { runId };
  } catch (error) {
    if (error instanceof RunNotFound) return undefined;
    throw error;
  }
  throw new RunIdTaken(runId, 'the Idempotency-Key was used for another request');
}

/**
 * The visibility query of a list. Filters are validated before they get here (experiment names
 * are [a-z0-9-], states an enum); checked again, so no value can end the quoted literal.
 */
export function listQuery(filters: { experiment?: string; state?: RunState }): string {
  const clauses = [`WorkflowType = '${PIPELINE_WORKFLOW}'`];
  const literal = (value: string): string => {
    if (!/^[a-z0-9-]+$/.test(value)) throw new HttpError(400, 'invalid filter value');
    return `"${value}"`;
  };
  if (filters.experiment !== undefined) clauses.push(`${EXPERIMENT_ATTRIBUTE.name} = ${literal(filters.experiment)}`);
  if (filters.state !== undefined) clauses.push(`${STATUS_ATTRIBUTE.name} = ${literal(filters.state)}`);
  return clauses.join(' AND ');
}

const IdempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, '1-255 printable ASCII characters')
  .describe('the same key returns the same run instead of starting another (409 when the body differs)');

export const runsRoutes: FastifyPluginAsyncZod<RunsRoutesOptions> = async (app, { client, taskQueue, allowedRoots }) => {
  app.post(
    '/runs',
    {
      schema: {
        summary: 'Start a run',
        description:
          'Validates the pipeline input (400 naming every failing field; nothing is started) and starts the run. ' +
          'With an Idempotency-Key header (or an explicit runId) a repeated request returns the same run: 201 the first time, 200 after; ' +
          'the same key (or runId) with another body is 409 and starts nothing.',
        tags: ['runs'],
        headers: z.looseObject({ 'idempotency-key': IdempotencyKey.optional() }),
        querystring: z.strictObject({ runId: RunId.optional().describe('explicit run id (instead of an Idempotency-Key)') }),
        body: PipelineInputBody,
      },
    },
    async (request, reply) => {
      const config = parseForWorker(request.body, allowedRoots);
      const key = request.headers['idempotency-key'];
      if (key !== undefined && request.query.runId !== undefined) throw new HttpError(400, 'give an Idempotency-Key or a runId, not both');
      const legacy = key === undefined ? undefined : await legacyRun(client, config.experiment, key, request.body);
      if (legacy !== undefined) {
        request.log.info({ runId: legacy.runId, caller: request.caller, outcome: 'existing' }, 'run start');
        return reply.code(200).header('location', `/v1/runs/${legacy.runId}`).send({ runId: legacy.runId, created: false });
      }
      const runId =
        request.query.runId ?? (key === undefined ? `${defaultRunId(config.experiment, new Date())}-${randomBytes(3).toString('hex')}` : idempotentRunId(key));
      const what = key === undefined ? 'the runId was used for another request' : 'the Idempotency-Key was used for another request';
      const outcome = await startOnce(client, taskQueue, runId, request.body, what);
      request.log.info({ runId, caller: request.caller, outcome }, 'run start');
      return reply
        .code(outcome === 'created' ? 201 : 200)
        .header('location', `/v1/runs/${runId}`)
        .send({ runId, created: outcome === 'created' });
    },
  );

  app.get(
    '/runs',
    {
      schema: {
        summary: 'List runs',
        description: 'Newest first, filtered by experiment and state (the runs\' RecogdriveExperiment / RecogdriveStatus search attributes).',
        tags: ['runs'],
        querystring: z.strictObject({
          experiment: Experiment.optional(),
          status: z.enum(RUN_STATES).optional(),
          pageSize: z.coerce.number().int().min(1).max(100).default(20),
        }),
      },
    },
    async (request) => {
      const { experiment, status, pageSize } = request.query;
      const query = listQuery({ ...(experiment === undefined ? {} : { experiment }), ...(status === undefined ? {} : { state: status }) });
      const runs = [];
      for await (const info of client.workflow.list({ query, pageSize })) {
        runs.push({
          runId: info.workflowId,
          experiment: info.typedSearchAttributes.get(EXPERIMENT_ATTRIBUTE) ?? null,
          status: info.typedSearchAttributes.get(STATUS_ATTRIBUTE) ?? null,
          rerunOf: info.typedSearchAttributes.get(RERUN_OF_ATTRIBUTE) ?? null,
          temporalStatus: info.status.name,
          startTime: info.startTime.toISOString(),
          closeTime: info.closeTime?.toISOString() ?? null,
        });
        if (runs.length >= pageSize) break;
      }
      return { query, runs };
    },
  );

  app.get(
    '/runs/:id',
    {
      schema: {
        summary: 'A run\'s status',
        description: 'Per stage: decision and reason, state, attempt, progress, artifacts (the run\'s status query); TPU-hours and GPU-hours so far (from the cost record: chips or GPUs × time each machine was held, preempted ones included); plus Temporal\'s view of the workflow.',
        tags: ['runs'],
        params: RunParams,
      },
    },
    async (request) => {
      const { id } = request.params;
      const description = await describeRun(client, id);
      let status = null;
      let statusError: string | undefined;
      try {
        status = await runStatus(client, id);
      } catch (error) {
        if (error instanceof RunNotFound) throw error;
        statusError = error instanceof RunWithoutStatus ? error.message : `the run's status query failed: ${(error as Error).message}`;
      }
      return {
        runId: id,
        ...(status === null ? {} : { tpuHours: tpuHoursSoFar(status.stages, Date.now()), gpuHours: gpuHoursSoFar(status.stages, Date.now()) }),
        temporal: {
          status: description.status.name,
          runId: description.runId,
          startTime: description.startTime.toISOString(),
          closeTime: description.closeTime?.toISOString() ?? null,
          historyLength: description.historyLength,
        },
        status,
        ...(statusError === undefined ? {} : { statusError }),
      };
    },
  );

  app.post(
    '/runs/:id/cancel',
    {
      schema: {
        summary: 'Cancel a run',
        description: 'Every stage stops and releases its compute. 202: cancellation requested; 409 when the run has already ended.',
        tags: ['runs'],
        params: RunParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const description = await describeRun(client, id);
      if (description.status.name !== 'RUNNING') throw new HttpError(409, `run ${id} has already ended (${description.status.name})`);
      await requestCancel(client, id, `recogdrive-api caller ${request.caller ?? 'unknown'}`, 'POST /runs/:id/cancel');
      request.log.info({ runId: id, caller: request.caller }, 'run cancel');
      return reply.code(202).send({ runId: id, cancellation: 'requested' });
    },
  );
};
