/**
 * The plan of a run: for every stage its decision and, when it runs, the complete launch spec.
 * Pure: shared by the pipeline workflow, the CLI (`recogdrive plan`) and the API.
 */
import { CONTRACTS, type VerificationSpec } from './contracts/index.ts';
import { buildLaunchSpec, type LaunchSpec } from './launch.ts';
import { stageArtifactUri, stageWorkflowId } from './naming.ts';
import { STAGES, STAGE_DEPENDENCIES, type StageName } from './stages.ts';
import type { ComputeSpec, PipelineConfig } from './input.ts';

export type StageDecision = 'RUN' | 'PROVIDED' | 'SKIP';

export interface StageLimits {
  maxAttempts: number;
  timeoutMs: number;
  hangTimeoutMs: number;
}

export interface PlannedStage {
  stage: StageName;
  title: string;
  decision: StageDecision;
  reason: string;
  dependsOn: StageName[];
  /** Where the stage's outputs are (RUN: will be written; PROVIDED: already there). */
  artifactUri?: string;
  workflowId?: string;
  launch?: LaunchSpec;
  compute?: ComputeSpec;
  verification?: VerificationSpec;
  limits?: StageLimits;
  notes: string[];
}

export interface Plan {
  runId: string;
  experiment: string;
  artifactRoot: string;
  stages: PlannedStage[];
}

export function buildPlan(config: PipelineConfig, runId: string): Plan {
  const selected = new Set<StageName>(config.stages);
  const artifactUris: Partial<Record<StageName, string>> = {};
  for (const stage of STAGES) {
    const provided = config.providedArtifacts[stage];
    if (selected.has(stage)) artifactUris[stage] = stageArtifactUri(config.artifactRoot, runId, stage);
    else if (provided !== undefined) artifactUris[stage] = provided;
  }

  const stages = STAGES.map((stage): PlannedStage => {
    const contract = CONTRACTS[stage];
    const base = { stage, title: contract.title, dependsOn: [...STAGE_DEPENDENCIES[stage]] };
    if (!selected.has(stage)) {
      const uri = artifactUris[stage];
      return uri === undefined
        ? { ...base, decision: 'SKIP', reason: 'not in stages and not needed by a selected stage', notes: [] }
        : { ...base, decision: 'PROVIDED', reason: 'output given in providedArtifacts', artifactUri: uri, notes: [] };
    }
    const settings = config[stage];
    return {
      ...base,
      decision: 'RUN',
      reason: 'selected in stages',
      artifactUri: artifactUris[stage]!,
      workflowId: stageWorkflowId(runId, stage),
      launch: buildLaunchSpec(config, runId, stage, artifactUris),
      compute: settings.compute,
      verification: contract.verification(config),
      limits: { maxAttempts: settings.maxAttempts, timeoutMs: settings.timeout, hangTimeoutMs: settings.hangTimeout },
      notes: contract.notes(config),
    };
  });
  return { runId, experiment: config.experiment, artifactRoot: config.artifactRoot, stages };
}
