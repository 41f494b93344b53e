/** Stage 2: DiT diffusion planner imitation learning on the cached hidden states, image :unified. */
import { cachedDatasetArgs, hydra, hydraOverrides, navsimEnv, plannerAgentArgs, REPO_MOUNT } from './args.ts';
import type { StageContract } from './types.ts';

export const STAGE2_OUTPUT = `${REPO_MOUNT}/work_dirs/stage2_output`;
export const FEATURE_CACHE_MOUNT = `${REPO_MOUNT}/data/cache_output`;

export const stage2: StageContract = {
  stage: 'stage2',
  title: 'Stage 2: DiT planner imitation learning',
  version: 1,
  image: 'unified',
  accelerator: 'tpu',
  script: 'navsim/planning/script/run_training_recogdrive_torchax.py',
  runtimeFixes: [],
  outputPath: () => STAGE2_OUTPUT,
  render(config) {
    const s = config.stage2;
    return {
      args: [
        ...plannerAgentArgs(config, s, false),
        hydra('trainer.params.max_epochs', s.epochs),
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
    };
  },
  verification: (config) => ({
    outputs: { kind: 'epoch-checkpoints', epochs: config.stage2.epochs },
    logMustContain: [],
    logMustNotContain: ['num_samples should be a positive integer value', 'Loss: nan'],
  }),
  retry:
    'A new attempt trains from scratch: the torchax loop starts at epoch 0, loads no parameters and keeps no optimizer state (no resume exists upstream), and rewrites checkpoint-epoch-<E>.pt.',
  notes: () => [
    'Checkpoints are orbax PyTrees (checkpoint-epoch-<E>.pt); Stage 3 and evaluation upstream load Lightning .ckpt files.',
  ],
};
