/** Bridge 1: hidden-state cache of the frozen VLM, image :stage1, on TPU. */
import { hydra, hydraOverrides, navsimEnv, REPO_MOUNT } from './args.ts';
import { expectedTokens } from './splits.ts';
import type { StageContract } from './types.ts';
import type { PipelineConfig } from '../input.ts';

const CACHE_PATH = `${REPO_MOUNT}/data/cache_output`;

const expected = (config: PipelineConfig) => expectedTokens(config.featureCache.expectedTokens, config.featureCache.split);

export const featureCache: StageContract = {
  stage: 'featureCache',
  title: 'Bridge 1: VLM hidden-state feature cache',
  version: 2,
  image: 'stage1',
  script: 'navsim/planning/script/run_caching_recogdrive_torchax.py',
  // The :stage1 image pins hydra-core 1.2, which breaks on Python 3.11 (TPU guide).
  runtimeFixes: [['pip', 'install', '--upgrade', 'hydra-core==1.3.2', 'omegaconf', 'pytest']],
  outputPath: () => CACHE_PATH,
  render(config) {
    const s = config.featureCache;
    // A non-empty train_logs (the 13,180 standard train logs by default) REPLACES the split's logs
    // (run_caching_recogdrive_torchax.py:250-251): every other split would cache 0 tokens behind
    // "Caching Complete.", and navtrain would lose its 214 validation logs, which the GPU trainers
    // need (Lightning's ModelCheckpoint saves nothing without val/loss_epoch). So: the whole split.
    const allLogs = ['train_logs=[]'];
    return {
      args: [
        'agent=recogdrive_agent',
        hydra('agent.vlm_path', s.vlmPath ?? config.paths.model),
        hydra('agent.vlm_type', s.vlmType),
        hydra('train_test_split', s.split),
        hydra('cache_path', CACHE_PATH),
        hydra('experiment_name', s.experimentName),
        hydra('dataloader.params.batch_size', s.batchSize),
        hydra('dataloader.params.num_workers', s.numWorkers),
        ...hydraOverrides(s.overrides),
      ],
      addedArgs: allLogs,
      env: navsimEnv(config, { data: true, maps: true }),
      inputs: [{ stage: 'stage1', containerPath: `${REPO_MOUNT}/work_dirs/stage1_output` }],
      extraDockerFlags: [],
    };
  },
  verification: (config) => ({
    outputs: {
      kind: 'token-cache',
      files: ['internvl_feature.gz', 'trajectory_target.gz'],
      expectedTokens: expected(config),
    },
    logMustContain: ['Caching Complete.'],
    // The collate silently substitutes zero images when a path is missing: the cache is corrupt.
    logMustNotContain: ['Image path not found'],
  }),
  retry:
    'A new attempt caches every token again: the caching script builds its dataset with cache_path=None and rewrites both files of every token (run_caching_recogdrive_torchax.py:274-280); nothing already written is skipped.',
  notes: (config) => {
    const notes: string[] = [];
    if (config.featureCache.vlmPath === undefined) {
      notes.push(
        `Caches with the base VLM ${config.paths.model} as the TPU guide does: no orbax-to-HF export of the Stage 1 checkpoint exists yet.`,
      );
    }
    if (expected(config) === undefined) {
      notes.push(`No token count is known for split ${config.featureCache.split}: set featureCache.expectedTokens.`);
    }
    return notes;
  },
};
