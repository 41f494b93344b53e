/**
 * Stage 2: DiT diffusion planner imitation learning on the cached hidden states, image :unified.
 * `torchax` (default, the TPU guide): run_training_recogdrive_torchax.py on the TPU VM, orbax
 * checkpoints per epoch. `gpu`: the upstream run_training_recogdrive.py (PyTorch Lightning) under
 * torchrun, Lightning checkpoints.
 */
import { trainerOf } from '../trainers.ts';
import { cachedDatasetArgs, hydra, hydraOverrides, navsimEnv, plannerAgentArgs, REPO_MOUNT } from './args.ts';
import { TRAINER_OUTPUTS } from './exports.ts';
import { lightningDeviceArgs, torchrunLaunch } from './torchrun.ts';
import type { StageContract } from './types.ts';

export const STAGE2_OUTPUT = TRAINER_OUTPUTS.stage2;
export const FEATURE_CACHE_MOUNT = `${REPO_MOUNT}/data/cache_output`;
const GPU_SCRIPT = 'navsim/planning/script/run_training_recogdrive.py';

export const stage2: StageContract = {
  stage: 'stage2',
  title: 'Stage 2: DiT planner imitation learning',
  version: 1,
  image: 'unified',
  script: 'navsim/planning/script/run_training_recogdrive_torchax.py',
  runtimeFixes: [],
  outputPath: () => STAGE2_OUTPUT,
  render(config) {
    const s = config.stage2;
    const gpu = trainerOf(config, 'stage2') === 'gpu';
    return {
      args: [
        ...plannerAgentArgs(config, s, false),
        hydra('trainer.params.max_epochs', s.epochs),
        ...(gpu ? lightningDeviceArgs(config, 'stage2') : []),
        hydra('experiment_name', s.experimentName),
        ...cachedDatasetArgs(s, FEATURE_CACHE_MOUNT),
        ...(s.batchSize === undefined ? [] : [hydra('dataloader.params.batch_size', s.batchSize)]),
        ...hydraOverrides(s.overrides),
      ],
      // hydra's default output_dir embeds a timestamp; checkpoints must land where we look.
      addedArgs: [hydra('output_dir', STAGE2_OUTPUT)],
      env: navsimEnv(config, {}),
      inputs: [{ stage: 'featureCache', containerPath: FEATURE_CACHE_MOUNT }],
      extraDockerFlags: [],
      ...(gpu ? { script: GPU_SCRIPT, ...torchrunLaunch(config, 'stage2') } : {}),
    };
  },
  verification: (config) => ({
    outputs: trainerOf(config, 'stage2') === 'gpu' ? { kind: 'lightning-checkpoints' } : { kind: 'epoch-checkpoints', epochs: config.stage2.epochs },
    logMustContain: [],
    logMustNotContain: ['num_samples should be a positive integer value', 'Loss: nan'],
  }),
  retry:
    'A new attempt trains from scratch: the torchax loop starts at epoch 0, loads no parameters and keeps no optimizer state (no resume exists upstream), and rewrites checkpoint-epoch-<E>.pt; on GPU, Lightning\'s trainer.fit() is called without a checkpoint and writes a new lightning_logs/version_<V>.',
  notes: (config) => [
    trainerOf(config, 'stage2') === 'gpu'
      ? 'Lightning checkpoints (lightning_logs/version_<V>/checkpoints/*.ckpt, the 5 best by val/loss_epoch); stage2Export takes the newest to the file Stage 3 loads.'
      : 'Checkpoints are orbax PyTrees (checkpoint-epoch-<E>.pt) with "action_head.*" keys; stage2Export turns the last one into the torch state dict Stage 3 loads.',
  ],
};
