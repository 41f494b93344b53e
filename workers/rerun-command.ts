/**
 * `recogdrive rerun <run>`: a partial rerun from the command line, built exactly as the HTTP
 * API builds one (the source run's input from its history, patched with --overrides, then
 * fromStage/force): the plan is printed first (RUN/REUSE with reasons); --dry-run stops there.
 */
import type { Client } from '@temporalio/client';
import { buildPlan, type Plan } from '../pipeline/plan.ts';
import type { PipelineConfig } from '../pipeline/input.ts';
import { defaultRunId } from '../pipeline/naming.ts';
import type { StageName } from '../pipeline/stages.ts';
import { HttpError } from './api/errors.ts';
import { rerunInput } from './api/routes-reruns.ts';
import { runInput } from './api/runs.ts';
import { lookupForPlan } from './lineage-command.ts';

export interface RerunRequest {
  source: string;
  fromStage?: StageName;
  force: StageName[];
  overrides?: Record<string, unknown>;
}

export interface PreparedRerun {
  input: Record<string, unknown>;
  config: PipelineConfig;
  plan: Plan;
  runId: string;
}

/** What a problem with the request is, for the CLI's exit code: the user's (bad input) or the source's (not found). */
export class RerunRequestError extends Error {
  readonly badInput: boolean;
  constructor(message: string, badInput: boolean) {
    super(message);
    this.badInput = badInput;
  }
}

export async function prepareRerun(
  client: Client,
  request: RerunRequest,
  validate: (raw: unknown) => PipelineConfig,
  runId?: string,
): Promise<PreparedRerun> {
  let sourceInput: unknown;
  let input: Record<string, unknown>;
  try {
    sourceInput = await runInput(client, request.source);
    input = rerunInput(request.source, sourceInput, {
      ...(request.fromStage === undefined ? {} : { fromStage: request.fromStage }),
      ...(request.force.length === 0 ? {} : { force: request.force }),
      ...(request.overrides === undefined ? {} : { overrides: request.overrides }),
    });
  } catch (error) {
    if (error instanceof HttpError) throw new RerunRequestError(error.message, error.statusCode === 400);
    throw error;
  }
  const config = validate(input);
  const id = runId ?? defaultRunId(`${config.experiment}-rerun`.slice(0, 40).replace(/-+$/, ''), new Date());
  return { input, config, plan: buildPlan(config, id, await lookupForPlan(config)), runId: id };
}
