/**
 * Stage 3: GRPO reinforcement learning of the DiT planner against PDM-score rewards, image :unified.
 * `gpu` (default): the upstream run_training_recogdrive_rl.py (PyTorch Lightning) under torchrun,
 * the recipe of scripts/training/run_recogdrive_train_multi_node_rl_2b.sh. `torchax`: the TPU port's
 * trainer, which cannot run GRPO unless the checkout fixes it (pipeline/upstream.ts). Either way the
 * starting point and the frozen reference policy are Stage 2's checkpoint as exported to a torch
 * state dict (stage2Export: `agent.*` keys, what torch.load()ing agents expect).
 */
import { trainerOf } from '../trainers.ts';
import { cachedDatasetArgs, hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, plannerAgentArgs } from './args.ts';
import { exportedCheckpoint, STAGE2_EXPORT_MOUNT, TRAINER_OUTPUTS } from './exports.ts';
import { METRIC_CACHE_PATH } from './metric-cache.ts';
import { FEATURE_CACHE_MOUNT } from './stage2.ts';
import { lightningDeviceArgs, torchrunLaunch } from './torchrun.ts';
import type { StageContract } from './types.ts';

export const STAGE3_OUTPUT = TRAINER_OUTPUTS.stage3;
const GPU_SCRIPT = 'navsim/planning/script/run_training_recogdrive_rl.py';

export const stage3: StageContract = {
  stage: 'stage3',
  title: 'Stage 3: GRPO reinforcement learning',
  version: 2,
  image: 'unified',
  script: 'navsim/planning/script/run_training_recogdrive_torchax.py',
  runtimeFixes: [],
  outputPath: () => STAGE3_OUTPUT,
  render(config) {
    const s = config.stage3;
    const gpu = trainerOf(config, 'stage3') === 'gpu';
    // Runs started before the exports read Stage 2's last orbax checkpoint directly.
    const legacy = config.legacyDag === true;
    const reference = legacy ? lastEpochCheckpoint(TRAINER_OUTPUTS.stage2, config.stage2.epochs) : exportedCheckpoint(STAGE2_EXPORT_MOUNT);
    return {
      args: [
        ...plannerAgentArgs(config, s, true),
        hydra('agent.metric_cache_path', METRIC_CACHE_PATH),
        hydra('agent.reference_policy_checkpoint', reference),
        hydra('agent.checkpoint_path', reference),
        hydra('trainer.params.max_epochs', s.epochs),
        ...(gpu ? lightningDeviceArgs(config, 'stage3') : []),
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
        legacy ? { stage: 'stage2', containerPath: TRAINER_OUTPUTS.stage2 } : { stage: 'stage2Export', containerPath: STAGE2_EXPORT_MOUNT },
      ],
      extraDockerFlags: [],
      ...(gpu ? { script: GPU_SCRIPT, ...torchrunLaunch(config, 'stage3') } : {}),
    };
  },
  verification: (config) => ({
    outputs: trainerOf(config, 'stage3') === 'gpu' ? { kind: 'lightning-checkpoints' } : { kind: 'epoch-checkpoints', epochs: config.stage3.epochs },
    logMustContain: [],
    // Upstream swallows a missing reference checkpoint with a warning and trains from random weights.
    logMustNotContain: ['GRPO checkpoint not found', 'Loss: nan'],
  }),
  retry:
    'A new attempt trains from scratch (from the exported Stage 2 checkpoint, not from its own last epoch): no upstream trainer resumes (Lightning\'s trainer.fit() is called without a checkpoint; the torchax loop loads none).',
  notes: (config) => [
    `Starts from and is held to Stage 2's checkpoint exported to a torch state dict (${exportedCheckpoint(STAGE2_EXPORT_MOUNT)}).`,
    ...(trainerOf(config, 'stage3') === 'gpu'
      ? ['Lightning keeps the 5 best checkpoints by val/loss_epoch, so the feature cache must hold validation logs (it caches all of navtrain); stage3Export takes the newest kept one.']
      : []),
  ],
};
