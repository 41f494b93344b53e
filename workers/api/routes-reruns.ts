/**
 * Partial reruns: the source run's input, patched with `overrides` (workers/rerun-input.ts, shared
 * with the CLI), rerun from `fromStage` / with `force`d stages, reusing every verified output
 * that still matches. `?dryRun=true` returns the plan and a token; the confirm starts the rerun
 * only if the plan is still the one the token was given for.
 */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Client } from '@temporalio/client';
import { UnknownRunError } from '../../activities/lineage/lineage-store.ts';
import { parsePipelineInput, type PipelineConfig } from '../../pipeline/input.ts';
import { buildPlan, type Plan } from '../../pipeline/plan.ts';
import { canonicalJson } from '../../pipeline/fingerprint.ts';
import type { StageStatus } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { lookupForPlan } from '../lineage-command.ts';
import { HttpError } from './errors.ts';
import { estimateTpuHours, totalTpuHours, type SourceRun } from './estimate.ts';
import { planToken, rerunId, sameToken } from './plan-token.ts';
import { rerunInput, RerunRequestError, runInput } from '../rerun-input.ts';
import { startOnce } from '../runs.ts';
import { parseForWorker } from '../worker-roots.ts';
import { QueryFlag, RunParams, Stage } from './schemas.ts';

export interface RerunsRoutesOptions {
  client: Client;
  taskQueue: string;
  /** The worker's allowed roots, when known (workers/worker-roots.ts). */
  allowedRoots: readonly string[];
  planSecret: string;
}

const RerunBody = z.strictObject({
  fromStage: Stage.optional().describe('this stage and every stage downstream of it run'),
  force: z.array(Stage).optional().describe('these stages run (downstream stages may still reuse)'),
  overrides: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('a partial pipeline input merged over the source run\'s input (JSON Merge Patch: objects merge, arrays and values replace, null removes)'),
  planToken: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'the planToken of a dry run')
    .optional()
    .describe('confirm: the planToken the dry run returned'),
});
type RerunBody = z.output<typeof RerunBody>;

async function planOf(config: PipelineConfig, placeholderRunId: string): Promise<Plan> {
  try {
    return buildPlan(config, placeholderRunId, await lookupForPlan(config));
  } catch (error) {
    if (error instanceof UnknownRunError) throw new HttpError(422, error.message);
    throw error;
  }
}

/** What the estimates are based on: the source run's configuration and per-stage wall times. */
async function sourceRun(client: Client, source: string, input: unknown): Promise<SourceRun> {
  let config: PipelineConfig | undefined;
  try {
    config = parsePipelineInput(input);
  } catch {
    config = undefined;
  }
  let stages: StageStatus[] | undefined;
  try {
    stages = (await client.workflow.getHandle(source).query(runStatusQuery)).stages;
  } catch {
    stages = undefined;
  }
  return { ...(config === undefined ? {} : { config }), ...(stages === undefined ? {} : { stages }) };
}

/** The run a confirm with this token already started, if any (a repeated confirm). */
async function existingInput(client: Client, runId: string): Promise<unknown> {
  try {
    return await runInput(client, runId);
  } catch (error) {
    if (error instanceof RerunRequestError && error.kind === 'unknown-run') return undefined;
    throw error;
  }
}

export const rerunsRoutes: FastifyPluginAsyncZod<RerunsRoutesOptions> = async (app, { client, taskQueue, planSecret, allowedRoots }) => {
  app.post(
    '/runs/:id/reruns',
    {
      schema: {
        summary: 'Plan (dryRun=true) or start a partial rerun of a run',
        description:
          'dryRun=true: per stage the decision (RUN / REUSE / PROVIDED / SKIP), reason, fingerprint and estimated TPU-hours, and a planToken. ' +
          'Confirm: the same request without dryRun and with the planToken; 409 if the plan changed since the dry run (nothing is started), ' +
          'else 201 with the new run id (200 and the same run for a repeated confirm).',
        tags: ['reruns'],
        params: RunParams,
        querystring: z.strictObject({ dryRun: QueryFlag }),
        body: RerunBody.optional(),
      },
    },
    async (request, reply) => {
      const source = request.params.id;
      const body = request.body ?? {};
      const dryRun = request.query.dryRun;
      if (!dryRun && body.planToken === undefined) {
        throw new HttpError(400, 'a rerun is started with the planToken of its dry run: POST with ?dryRun=true first, then again with "planToken"', [
          'planToken: required unless dryRun=true',
        ]);
      }
      const sourceInput = await runInput(client, source);
      const input = rerunInput(source, sourceInput, body);
      const config = parseForWorker(input, allowedRoots);

      if (!dryRun) {
        const runId = rerunId(source, body.planToken!);
        const existing = await existingInput(client, runId);
        if (existing !== undefined) {
          if (canonicalJson(existing) !== canonicalJson(input)) throw new HttpError(409, 'the plan changed since the dry run: this token was confirmed for another request');
          return reply.code(200).header('location', `/v1/runs/${runId}`).send({ runId, source, created: false });
        }
      }

      const plan = await planOf(config, `${source}-rerun`);
      const token = planToken(planSecret, {
        source,
        input,
        stages: plan.stages.map((s) => ({ stage: s.stage, decision: s.decision, fingerprint: s.fingerprint ?? null })),
      });

      if (dryRun) {
        const basis = await sourceRun(client, source, sourceInput);
        const stages = plan.stages.map((s) => ({
          stage: s.stage,
          decision: s.decision,
          reason: s.reason,
          fingerprint: s.fingerprint ?? null,
          estimatedTpuHours: estimateTpuHours(s, basis),
        }));
        return {
          source,
          dryRun: true,
          runId: rerunId(source, token),
          stages,
          estimatedTpuHours: totalTpuHours(stages.map((s) => s.estimatedTpuHours)),
          input,
          planToken: token,
        };
      }

      if (!sameToken(token, body.planToken!)) {
        throw new HttpError(409, 'the plan changed since the dry run (or the token is for another request): nothing was started; dry-run again');
      }
      const runId = rerunId(source, token);
      const outcome = await startOnce(client, taskQueue, runId, input, 'the plan token was confirmed for another request');
      request.log.info({ runId, source, caller: request.caller, outcome }, 'rerun start');
      return reply
        .code(outcome === 'created' ? 201 : 200)
        .header('location', `/v1/runs/${runId}`)
        .send({ runId, source, created: outcome === 'created' });
    },
  );
};
