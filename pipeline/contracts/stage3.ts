/** Stage 3: GRPO reinforcement learning of the DiT planner against PDM-score rewards, image :unified. */
import { cachedDatasetArgs, hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, plannerAgentArgs, REPO_MOUNT } from './args.ts';
import { FEATURE_CACHE_MOUNT, STAGE2_OUTPUT } from './stage2.ts';
import { METRIC_CACHE_PATH } from './metric-cache.ts';
import type { StageContract } from './types.ts';

export const STAGE3_OUTPUT = `${REPO_MOUNT}/work_dirs/stage3_output`;

export const stage3: StageContract = {
  stage: 'stage3',
  title: 'Stage 3: GRPO reinforcement learning',
  version: 1,
  image: 'unified',
  accelerator: 'tpu',
  script: 'navsim/planning/script/run_training_recogdrive_torchax.py',
  runtimeFixes: [],
  outputPath: () => STAGE3_OUTPUT,
  render(config) {
    const s = config.stage3;
    // The Stage 2 checkpoint is both the starting point and the frozen reference policy (upstream RL recipe).
    const reference = lastEpochCheckpoint(STAGE2_OUTPUT, config.stage2.epochs);
    return {
      args: [
        ...plannerAgentArgs(config, s, true),
        hydra('agent.metric_cache_path', METRIC_CACHE_PATH),
        hydra('agent.reference_policy_checkpoint', reference),
        hydra('agent.checkpoint_path', reference),
        hydra('trainer.params.max_epochs', s.epochs),
        hydra('experiment_name', s.experimentName),
        ...cachedDatasetArgs(s, FEATURE_CACHE_MOUNT),
        hydra('dataloader.params.batch_size', s.batchSize),
        ...hydraOverrides(s.overrides),
      ],
      addedArgs: [hydra('output_dir', STAGE3_OUTPUT)],
      env: navsimEnv(config, {}),
      inputs: [
        { stage: 'featureCache', containerPath: FEATURE_CACHE_MOUNT },
        { stage: 'metricCache', containerPath: METRIC_CACHE_PATH },
        { stage: 'stage2', containerPath: STAGE2_OUTPUT },
      ],
      extraDockerFlags: [],
    };
  },
  verification: (config) => ({
    outputs: { kind: 'epoch-checkpoints', epochs: config.stage3.epochs },
    logMustContain: [],
    // Upstream swallows a missing reference checkpoint with a warning and trains from random weights.
    logMustNotContain: ['GRPO checkpoint not found', 'Loss: nan'],
  }),
  retry:
    'A new attempt trains from scratch (from the reference policy, not from its own last epoch): the torchax loop loads no earlier GRPO checkpoint and keeps no optimizer state, and rewrites checkpoint-epoch-<E>.pt.',
  notes: () => [
    'The Stage 2 checkpoint is both the starting point and the frozen reference policy (agent.reference_policy_checkpoint and agent.checkpoint_path).',
  ],
};
