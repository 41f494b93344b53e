/** Evaluation: PDM score of the final planner on the evaluation split (navtest), image :unified. */
import { hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, REPO_MOUNT } from './args.ts';
import { STAGE3_OUTPUT } from './stage3.ts';
import type { StageContract } from './types.ts';
import type { PipelineConfig } from '../input.ts';

const EVAL_OUTPUT = `${REPO_MOUNT}/work_dirs/eval_output`;
const EXPECTED_TOKENS: Readonly<Record<string, number>> = { navtest: 12_146 };

function expectedTokens(config: PipelineConfig): number | undefined {
  return config.eval.expectedTokens ?? EXPECTED_TOKENS[config.eval.split];
}

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
        'agent=recogdrive_agent',
        hydra('agent.checkpoint_path', lastEpochCheckpoint(STAGE3_OUTPUT, config.stage3.epochs)),
        hydra('agent.vlm_path', config.paths.model),
        hydra('agent.cam_type', s.camType),
        hydra('agent.cache_hidden_state', s.cacheHiddenState),
        hydra('agent.vlm_type', s.vlmType),
        hydra('agent.dit_type', s.ditType),
        hydra('agent.vlm_size', s.vlmSize),
        hydra('agent.grpo', false),
        hydra('agent.sampling_method', s.samplingMethod),
        hydra('train_test_split', s.split),
        hydra('cache_path', s.featureCachePath),
        hydra('metric_cache_path', s.metricCachePath),
        hydra('use_cache_without_dataset', true),
        hydra('experiment_name', s.experimentName),
        ...hydraOverrides(s.overrides),
      ],
      addedArgs: [hydra('output_dir', EVAL_OUTPUT)],
      env: navsimEnv(config, { data: true, maps: true }),
      inputs: [{ stage: 'stage3', containerPath: STAGE3_OUTPUT }],
      extraDockerFlags: [],
    };
  },
  verification: (config) => ({
    outputs: { kind: 'eval-csv', expectedTokens: expectedTokens(config), maxFailedTokens: config.eval.maxFailedTokens },
    logMustContain: ['Finished running evaluation.'],
    logMustNotContain: ['Missing metric cache for'],
  }),
  notes: () => [
    'Upstream evaluation hard-codes NCCL and torch.cuda; on TPU VMs it needs the CPU/gloo port of the :unified image.',
    'Scenes are still loaded to find each token\'s log, so the evaluation split\'s sensor blobs must be present.',
  ],
};
