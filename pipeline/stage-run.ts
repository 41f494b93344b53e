/** Input and result of one stage workflow: everything it needs, resolved by the planner. */
import { bringUpSpecFor, type BringUpSpec } from './bring-up.ts';
import type { VerificationSpec } from './contracts/index.ts';
import type { FingerprintComponents } from './fingerprint.ts';
import type { ComputeUsage } from './cost.ts';
import type { ComputeSpec, PipelineConfig } from './input.ts';
import type { LaunchSpec } from './launch.ts';
import type { PlannedStage, StageLimits } from './plan.ts';
import type { ProgressHints } from './progress.ts';
import { expectedTokens } from './contracts/splits.ts';
import { stageLogsUri } from './naming.ts';
import type { StageName } from './stages.ts';

export interface OrchestrationSettings {
  heartbeatTimeoutMs: number;
  progressIntervalMs: number;
  pollIntervalMs: number;
}

export interface StageRunInput {
  runId: string;
  stage: StageName;
  launch: LaunchSpec;
  /** Where each attempt's per-worker logs are kept (they outlive the compute). */
  logsUri: string;
  compute: ComputeSpec;
  /** gcp.project of the run (cloud backends). */
  project?: string;
  verification: VerificationSpec;
  limits: StageLimits;
  progressHints: ProgressHints;
  orchestration: OrchestrationSettings;
  /** On cloud compute: what makes its bare machines ready (absent in stages started before bring-up existed, and on local/static compute). */
  bringUp?: BringUpSpec;
  /** What the verified output is recorded as (lineage, fingerprint index). */
  artifact: {
    artifactRoot: string;
    fingerprint: string;
    components: FingerprintComponents;
    inputs: Partial<Record<StageName, { fingerprint: string; uri: string }>>;
    imageDigest: string;
  };
}

export interface StageResult {
  stage: StageName;
  artifactUri: string;
  attempts: number;
  computeName: string;
  /** Every machine the stage held, failed and preempted attempts included (the cost record). */
  compute?: ComputeUsage[];
  /** What verification counted (tokens, checkpoints, rows...). */
  outputs: Record<string, number | string>;
  /** Epoch milliseconds when the stage's process started and exited (as the watcher saw it). */
  startedAt: number;
  exitedAt: number;
}

/** Builds the input of a stage workflow from a RUN decision of the plan. */
export function stageRunInput(config: PipelineConfig, runId: string, planned: PlannedStage): StageRunInput {
  const { launch, compute, verification, limits, fingerprint, components, inputs, imageDigest } = planned;
  if (
    launch === undefined ||
    compute === undefined ||
    verification === undefined ||
    limits === undefined ||
    fingerprint === undefined ||
    components === undefined ||
    inputs === undefined ||
    imageDigest === undefined
  ) {
    throw new Error(`stage ${planned.stage} is not planned to run`);
  }
  // A bare VM pulls the image by the digest the plan fingerprinted, and the launch runs exactly that.
  const bringUp = bringUpSpecFor(config, planned.stage, launch, imageDigest, components.code);
  return {
    runId,
    stage: planned.stage,
    launch: bringUp === undefined ? launch : { ...launch, image: bringUp.image },
    ...(bringUp === undefined ? {} : { bringUp }),
    logsUri: stageLogsUri(config.artifactRoot, runId, planned.stage),
    compute: compute satisfies ComputeSpec,
    ...(config.gcp === undefined ? {} : { project: config.gcp.project }),
    verification,
    limits,
    progressHints: progressHintsFor(config, planned.stage),
    orchestration: {
      heartbeatTimeoutMs: config.orchestration.heartbeatTimeout,
      progressIntervalMs: config.orchestration.progressInterval,
      pollIntervalMs: config.orchestration.pollInterval,
    },
    artifact: { artifactRoot: config.artifactRoot, fingerprint, components, inputs, imageDigest },
  };
}

/** What the progress parser needs to turn step counts into a fraction. */
export function progressHintsFor(config: PipelineConfig, stage: StageName): ProgressHints {
  switch (stage) {
    case 'stage1':
      return {
        epochs: config.stage1.epochs,
        batchSize: config.stage1.perDeviceBatchSize,
        gradientAccumulation: config.stage1.gradientAccumulationSteps,
      };
    case 'stage2':
      // 16 is the dataloader default of default_training.yaml when batch_size is not passed.
      return { epochs: config.stage2.epochs, batchSize: config.stage2.batchSize ?? 16 };
    case 'stage3':
      return { epochs: config.stage3.epochs, batchSize: config.stage3.batchSize };
    case 'featureCache': {
      // Two files per token folder (internvl_feature.gz, trajectory_target.gz); batches from "Starting Inference on N samples".
      const tokens = expectedTokens(config.featureCache.expectedTokens, config.featureCache.split);
      return { batchSize: config.featureCache.batchSize, ...(tokens === undefined ? {} : { expectedFiles: 2 * tokens }) };
    }
    case 'metricCache': {
      // One metric_cache.pkl per token: the only progress a Ray run shows before its last chunks finish.
      const tokens = expectedTokens(config.metricCache.expectedTokens, config.metricCache.split);
      return tokens === undefined ? {} : { expectedFiles: tokens };
    }
    default:
      return {};
  }
}
