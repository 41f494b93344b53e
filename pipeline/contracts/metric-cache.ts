/** Bridge 2: PDM metric cache (baselines for the GRPO reward), CPU only, image :unified. */
import { hydra, hydraOverrides, navsimEnv, REPO_MOUNT } from './args.ts';
import { expectedTokens } from './splits.ts';
import type { StageContract } from './types.ts';
import type { PipelineConfig } from '../input.ts';

export const METRIC_CACHE_PATH = `${REPO_MOUNT}/data/metric_cache`;
const expected = (config: PipelineConfig) => expectedTokens(config.metricCache.expectedTokens, config.metricCache.split);

export const metricCache: StageContract = {
  stage: 'metricCache',
  title: 'Bridge 2: PDM metric cache',
  version: 1,
  image: 'unified',
  script: 'navsim/planning/script/run_metric_caching.py',
  runtimeFixes: [],
  outputPath: () => METRIC_CACHE_PATH,
  render(config) {
    const s = config.metricCache;
    const worker =
      s.worker === 'single_machine_thread_pool'
        ? [
            hydra('worker', s.worker),
            ...(s.maxWorkers === undefined ? [] : [hydra('worker.max_workers', s.maxWorkers)]),
            hydra('worker.use_process_pool', true),
          ]
        : [hydra('worker', s.worker)];
    return {
      args: [hydra('train_test_split', s.split), hydra('cache.cache_path', METRIC_CACHE_PATH), ...worker, ...hydraOverrides(s.overrides)],
      addedArgs: [],
      env: navsimEnv(config, { data: true, maps: true }),
      inputs: [],
      // Ray keeps its object store in /dev/shm, which Docker caps at 64 MB (navsim #91).
      extraDockerFlags: ['--shm-size=16g'],
    };
  },
  verification: (config) => ({
    outputs: { kind: 'metric-cache', expectedTokens: expected(config) },
    logMustContain: ['Done storing metadata csv file.'],
    logMustNotContain: ['Starting metric caching of 0 files'],
  }),
  retry:
    'A new attempt skips every metric_cache.pkl already written (MetricCacheProcessor.compute_metric_cache returns early when the file exists and cache.force_feature_computation is false) and computes only the rest; the metadata CSV is written again at the end, listing all of them.',
  notes: (config) => [
    'Requires NumPy >= 1.26.4 in the image (NumPy 1.23 silently corrupts the cache, recogdrive #10).',
    ...(expected(config) === undefined
      ? [`No token count is known for split ${config.metricCache.split}: set metricCache.expectedTokens.`]
      : []),
  ],
};
