/** Stage 1: VLM (InternVL3-2B) vision-language finetune on TPU, image :stage1. */
import { hfBool, hfFloat, hfOverrides, PYTHONPATH_INTERNVL, absoluteInContainer } from './args.ts';
import type { StageContract } from './types.ts';

const OUTPUT_DIR = 'work_dirs/stage1_output';

export const stage1: StageContract = {
  stage: 'stage1',
  title: 'Stage 1: VLM finetune (InternVL, torchax)',
  version: 1,
  image: 'stage1',
  script: 'internvl_chat/internvl/train/internvl_chat_finetune_torchax.py',
  runtimeFixes: [],
  outputPath: () => absoluteInContainer(OUTPUT_DIR),
  render(config) {
    const s = config.stage1;
    return {
      args: [
        '--model_name_or_path', config.paths.model,
        '--conv_style', s.convStyle,
        '--output_dir', OUTPUT_DIR,
        '--meta_path', config.paths.metaPath,
        '--force_image_size', String(s.forceImageSize),
        '--max_dynamic_patch', String(s.maxDynamicPatch),
        '--down_sample_ratio', hfFloat(s.downSampleRatio),
        '--bf16', hfBool(s.bf16),
        '--num_train_epochs', String(s.epochs),
        '--per_device_train_batch_size', String(s.perDeviceBatchSize),
        '--gradient_accumulation_steps', String(s.gradientAccumulationSteps),
        '--learning_rate', hfFloat(s.learningRate),
        '--weight_decay', hfFloat(s.weightDecay),
        '--warmup_ratio', hfFloat(s.warmupRatio),
        '--logging_steps', String(s.loggingSteps),
        '--max_seq_length', String(s.maxSeqLength),
        '--do_train', 'True',
        '--grad_checkpoint', hfBool(s.gradCheckpoint),
        '--group_by_length', hfBool(s.groupByLength),
        '--dynamic_image_size', hfBool(s.dynamicImageSize),
        '--use_thumbnail', hfBool(s.useThumbnail),
        '--ps_version', s.psVersion,
        ...hfOverrides(s.overrides),
      ],
      addedArgs: [],
      env: { PYTHONPATH: PYTHONPATH_INTERNVL },
      inputs: [],
      extraDockerFlags: [],
    };
  },
  verification: () => ({
    outputs: { kind: 'final-checkpoint', dir: 'final_checkpoint.pt' },
    logMustContain: ['Saved final checkpoint'],
    // The final save sits in a `finally:`, so a crashed loop still writes a checkpoint.
    logMustNotContain: ['An error occurred during training', 'Loss: nan'],
  }),
  retry:
    'A new attempt starts again from the base model: the torchax finetune loads no checkpoint (no resume exists upstream) and rewrites checkpoint-<S>.pt and final_checkpoint.pt.',
  notes: (config) => {
    const notes = [
      'The torchax trainer is single-host.',
      'The checkpoint is an orbax PyTree (no HF config/tokenizer); the feature cache reads an HF directory.',
    ];
    const compute = config.stage1.compute;
    if (compute.backend === 'tpu-api') {
      const chips = Number(compute.accelerator.split('-')[1]);
      if (chips > 8) notes.push(`${compute.accelerator} is multi-host; the torchax trainer uses worker 0 only.`);
      if (config.stage1.perDeviceBatchSize % Math.min(chips, 8) !== 0) {
        notes.push('perDeviceBatchSize is not a multiple of the chip count: arrays are replicated, not sharded.');
      }
    }
    return notes;
  },
};
