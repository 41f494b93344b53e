/** Evaluation: PDM score of the final planner on the evaluation split (navtest), image :unified. */
import { hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, plannerAgentArgs, REPO_MOUNT } from './args.ts';
import { STAGE3_OUTPUT } from './stage3.ts';
import { expectedTokens } from './splits.ts';
import type { StageContract } from './types.ts';
import type { PipelineConfig } from '../input.ts';

const EVAL_OUTPUT = `${REPO_MOUNT}/work_dirs/eval_output`;
const expected = (config: PipelineConfig) => expectedTokens(config.eval.expectedTokens, config.eval.split);

export const evaluation: StageContract = {
  stage: 'eval',
  title: 'Evaluation: PDM score',
  version: 1,
  image: 'unified',
  accelerator: 'tpu',
  script: 'navsim/planning/script/run_pdm_score_recogdrive.py',
  runtimeFixes: [],
  outputPath: () => EVAL_OUTPUT,
  render(config) {
    const s = config.eval;
    return {
      args: [
        ...plannerAgentArgs(config, s, false),
        hydra('agent.checkpoint_path', lastEpochCheckpoint(STAGE3_OUTPUT, config.stage3.epochs)),
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
      inputs: [{ stage: 'stage3', containerPath: STAGE3_OUTPUT }],
      extraDockerFlags: [],
    };
  },
  verification: (config) => ({
    outputs: { kind: 'eval-csv', expectedTokens: expected(config), maxFailedTokens: config.eval.maxFailedTokens },
    logMustContain: ['Finished running evaluation.'],
    logMustNotContain: ['Missing metric cache for'],
  }),
  retry: 'A new attempt scores every token again: the results CSV is written once, at the end.',
  notes: () => [
    'Scenes are still loaded to find each token\'s log, so the evaluation split\'s sensor blobs must be present.',
  ],
};
