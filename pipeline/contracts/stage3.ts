/** Stage 3: GRPO reinforcement learning of the DiT planner against PDM-score rewards, image :unified. */
import { hydra, hydraOverrides, lastEpochCheckpoint, navsimEnv, REPO_MOUNT } from './args.ts';
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
        'agent=recogdrive_agent',
        hydra('agent.lr', s.learningRate),
        hydra('agent.grpo', true),
        hydra('agent.vlm_path', config.paths.model),
        hydra('agent.cam_type', s.camType),
        hydra('agent.cache_hidden_state', s.cacheHiddenState),
        hydra('agent.vlm_type', s.vlmType),
        hydra('agent.dit_type', s.ditType),
        hydra('agent.vlm_size', s.vlmSize),
        hydra('agent.sampling_method', s.samplingMethod),
        hydra('agent.metric_cache_path', METRIC_CACHE_PATH),
        hydra('agent.reference_policy_checkpoint', reference),
        hydra('agent.checkpoint_path', reference),
        hydra('trainer.params.max_epochs', s.epochs),
        hydra('dataloader.params.batch_size', s.batchSize),
        hydra('experiment_name', s.experimentName),
        hydra('train_test_split', s.split),
        hydra('cache_path', FEATURE_CACHE_MOUNT),
        hydra('use_cache_without_dataset', true),
        hydra('force_cache_computation', false),
        hydra('dataloader.params.num_workers', s.numWorkers),
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
  notes: () => [
    'The torchax trainer of the TPU port does not implement GRPO yet (tokens_list=None, scalar loss); this stage needs a GRPO-capable :unified image.',
    'reference_policy_checkpoint expects a Lightning .ckpt; Stage 2 on TPU writes orbax checkpoints.',
  ],
};
