/**
 * `recogdrive rerun <run>`: a partial rerun from the command line, built as the HTTP API builds
 * one (workers/rerun-input.ts): the plan is printed first (RUN/REUSE with reasons); --dry-run stops there.
 */
import type { Client } from '@temporalio/client';
import { buildPlan, type Plan } from '../pipeline/plan.ts';
import type { PipelineConfig } from '../pipeline/input.ts';
import { defaultRunId } from '../pipeline/naming.ts';
import type { StageName } from '../pipeline/stages.ts';
import { rerunInput, runInput } from './rerun-input.ts';
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

export { RerunRequestError } from './rerun-input.ts';

export async function prepareRerun(
  client: Client,
  request: RerunRequest,
  validate: (raw: unknown) => PipelineConfig,
  runId?: string,
): Promise<PreparedRerun> {
  const input = rerunInput(request.source, await runInput(client, request.source), {
    ...(request.fromStage === undefined ? {} : { fromStage: request.fromStage }),
    ...(request.force.length === 0 ? {} : { force: request.force }),
    ...(request.overrides === undefined ? {} : { overrides: request.overrides }),
  });
  const config = validate(input);
  const id = runId ?? defaultRunId(`${config.experiment}-rerun`.slice(0, 40).replace(/-+$/, ''), new Date());
  return { input, config, plan: buildPlan(config, id, await lookupForPlan(config)), runId: id };
}
