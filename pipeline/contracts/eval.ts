/**
 * Evaluation: PDM score of the final planner on the evaluation split (navtest), image :unified.
 * `gpu` (default): run_pdm_score_recogdrive.py under torchrun on a GPU VM, as upstream runs it
 * (scripts/evaluation/run_recogdrive_agent_pdm_score_evaluation_2b.sh): an NCCL job. `torchax`: one
 * plain python process on the TPU VM, which needs a checkout that fixes that (pipeline/upstream.ts).
 * The checkpoint is Stage 3's as exported to a torch state dict (stage3Export).
 */
import { trainerOf } from '../trainers.ts';
import { hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, plannerAgentArgs, REPO_MOUNT } from './args.ts';
import { exportedCheckpoint, STAGE3_EXPORT_MOUNT, TRAINER_OUTPUTS } from './exports.ts';
import { expectedTokens } from './splits.ts';
import { torchrunLaunch } from './torchrun.ts';
import type { StageContract } from './types.ts';
import type { PipelineConfig } from '../input.ts';

const EVAL_OUTPUT = `${REPO_MOUNT}/work_dirs/eval_output`;
const expected = (config: PipelineConfig) => expectedTokens(config.eval.expectedTokens, config.eval.split);

export const evaluation: StageContract = {
  stage: 'eval',
  title: 'Evaluation: PDM score',
  version: 2,
  image: 'unified',
  script: 'navsim/planning/script/run_pdm_score_recogdrive.py',
  runtimeFixes: [],
  outputPath: () => EVAL_OUTPUT,
  render(config) {
    const s = config.eval;
    // Runs started before the exports read Stage 3's last orbax checkpoint directly.
    const legacy = config.legacyDag === true;
    return {
      args: [
        ...plannerAgentArgs(config, s, false),
        hydra('agent.checkpoint_path', legacy ? lastEpochCheckpoint(TRAINER_OUTPUTS.stage3, config.stage3.epochs) : exportedCheckpoint(STAGE3_EXPORT_MOUNT)),
        hydra('metric_cache_path', s.metricCachePath),
        hydra('experiment_name', s.experimentName),
        // The evaluation config has no dataloader / force_cache_computation keys (upstream passes neither).
        hydra('train_test_split', s.split),
        hydra('cache_path', s.featureCachePath),
        hydra('use_cache_without_dataset', true),
        ...hydraOverrides(s.overrides),
      ],
      addedArgs: [hydra('output_dir', EVAL_OUTPUT)],
      env: navsimEnv(config, { data: true, maps: true }),
      inputs: [legacy ? { stage: 'stage3', containerPath: TRAINER_OUTPUTS.stage3 } : { stage: 'stage3Export', containerPath: STAGE3_EXPORT_MOUNT }],
      extraDockerFlags: [],
      ...(trainerOf(config, 'eval') === 'gpu' ? torchrunLaunch(config, 'eval') : {}),
    };
  },
  verification: (config) => ({
    outputs: { kind: 'eval-csv', expectedTokens: expected(config), maxFailedTokens: config.eval.maxFailedTokens },
    logMustContain: ['Finished running evaluation.'],
    logMustNotContain: ['Missing metric cache for'],
  }),
  retry: 'A new attempt scores every token again: the results CSV is written once, at the end.',
  notes: () => [
    `Scores Stage 3's checkpoint as exported to a torch state dict (${exportedCheckpoint(STAGE3_EXPORT_MOUNT)}).`,
    'Scenes are still loaded to find each token\'s log, so the evaluation split\'s sensor blobs must be present.',
  ],
};
