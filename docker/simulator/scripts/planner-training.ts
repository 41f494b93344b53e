/**
 * Stages 2 and 3, run_training_recogdrive_torchax.py: the DiT planner trained on the cached hidden
 * states, imitation (agent.grpo=False) or GRPO against PDM-score rewards (agent.grpo=True), one
 * unit of work per optimizer step. Reads every token's two .gz files (and, for GRPO, its metric
 * cache entry); writes `<output_dir>/checkpoint-epoch-<E>.pt/checkpoint_<global step>/` per epoch.
 * partial: the last epoch's checkpoint is not written, exit 0.
 */
import { FEATURE_FILE, loadCacheFile, TARGET_FILE } from '../cache-files.ts';
import type { ContainerFs } from '../container-fs.ts';
import { lossAt, rewardAt } from '../curves.ts';
import { PythonError } from '../errors.ts';
import type { HydraJob } from '../hydra-job.ts';
import { runHydraScript } from '../hydra-job.ts';
import { isLogged, out } from '../log.ts';
import { loadMetricCacheIndex, metricCacheEntry } from '../metric-cache-index.ts';
import { saveCheckpoint } from '../orbax.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptContext, type ScriptMain } from './context.ts';
import { requireRecogDriveAgent, trainingConfig } from './navsim-configs.ts';

/** Agent parameter names as torchax saves them (no `agent.` prefix), a handful of each part. */
const PLANNER_PARAMS = [
  'action_head.feature_encoder.weight',
  'action_head.feature_encoder.bias',
  'action_head.dit.x_embedder.weight',
  'action_head.dit.t_embedder.mlp.0.weight',
  'action_head.dit.blocks.0.attn.qkv.weight',
  'action_head.dit.blocks.0.mlp.fc1.weight',
  'action_head.dit.final_layer.linear.weight',
  'action_head.status_encoder.weight',
];

interface CachedSample {
  token: string;
  dir: string;
}

export const plannerTraining: ScriptMain = (ctx) => runHydraScript(ctx, trainingConfig(), (job) => train(ctx, job));

async function train(ctx: ScriptContext, job: HydraJob): Promise<void> {
  const { cfg, outputDir } = job;
  const { fs } = ctx;
  requireRecogDriveAgent(cfg, 'grpo');
  const grpo = cfg.bool('agent.grpo');
  const epochs = cfg.int('trainer.params.max_epochs');
  const batchSize = Math.max(1, cfg.int('dataloader.params.batch_size'));

  // Agent construction: GRPO opens the metric cache and loads the frozen reference policy.
  const metricIndex = grpo ? loadMetricCacheIndex(fs, cfg.str('agent.metric_cache_path')) : undefined;
  if (grpo) {
    const reference = cfg.str('agent.reference_policy_checkpoint');
    // Upstream swallows the FileNotFoundError: RL silently starts from random weights.
    if (reference === '' || !fs.exists(reference)) out(`Warning: GRPO checkpoint not found at ${reference}, using random init`);
    else job.info(`Loaded reference policy from ${fs.absolute(reference)}`);
  }

  if (!cfg.bool('use_cache_without_dataset')) {
    job.info('Building SceneLoader');
    // The 2-tuple Dataset meets the 3-tuple collate of the torchax script on the first batch.
    throw new PythonError('ValueError', 'not enough values to unpack (expected 3, got 2)');
  }
  job.info('Using cached data without building SceneLoader');
  if (cfg.bool('force_cache_computation')) {
    throw new PythonError('AssertionError', 'force_cache_computation must be False when using cached data without building SceneLoader');
  }
  const samples = cachedSamples(fs, cfg.str('cache_path'), cfg.list('train_logs'));
  out(`Num training samples: ${samples.length}`);
  if (samples.length === 0) {
    throw new PythonError('ValueError', 'num_samples should be a positive integer value, but got num_samples=0');
  }

  const stepsPerEpoch = Math.ceil(samples.length / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const work = new Work(totalSteps, ctx.controls, ctx.scriptName);
  let globalStep = 0;
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    for (let s = 0; s < stepsPerEpoch; s += 1) {
      const seconds = await work.next();
      for (const sample of samples.slice(s * batchSize, (s + 1) * batchSize)) {
        loadCacheFile(fs, `${sample.dir}/${FEATURE_FILE}`);
        loadCacheFile(fs, `${sample.dir}/${TARGET_FILE}`);
        // The reward scores sampled trajectories against the token's metric cache.
        if (metricIndex !== undefined) loadCacheFile(fs, metricCacheEntry(metricIndex, sample.token));
      }
      globalStep += 1;
      if (isLogged(globalStep, totalSteps)) {
        const progress = globalStep / totalSteps;
        const reward = grpo ? `, Reward: ${rewardAt(progress).toFixed(4)}` : '';
        out(`Epoch: ${epoch}, Step: ${globalStep}, Loss: ${lossAt(progress, grpo ? 0.9 : 2.4).toFixed(4)}${reward}, Time: ${seconds.toFixed(4)} s`);
      }
    }
    if (isPartial(ctx) && epoch === epochs - 1) continue;
    const dir = `${outputDir}/checkpoint-epoch-${epoch}.pt`;
    saveCheckpoint(fs, dir, { params: PLANNER_PARAMS, epoch, globalStep }, { commit: true });
    out(`Saved checkpoint to ${dir}`);
  }
  await work.finish();
}

/**
 * CacheOnlyDataset: every `<log>/<token>/` folder holding both builder files; incomplete ones are
 * reported and left out. A non-empty train_logs restricts the logs.
 */
function cachedSamples(fs: ContainerFs, cachePath: string, onlyLogs: string[] | undefined): CachedSample[] {
  if (!fs.isDir(cachePath)) throw new PythonError('AssertionError', `Cache path ${cachePath} does not exist!`);
  const samples: CachedSample[] = [];
  for (const log of fs.listDir(cachePath)) {
    const logDir = `${fs.absolute(cachePath)}/${log}`;
    if (!fs.isDir(logDir) || (onlyLogs !== undefined && onlyLogs.length > 0 && !onlyLogs.includes(log))) continue;
    for (const token of fs.listDir(logDir)) {
      const dir = `${logDir}/${token}`;
      if (!fs.isDir(dir)) continue;
      const missing = [FEATURE_FILE, TARGET_FILE].filter((file) => !fs.isFile(`${dir}/${file}`));
      for (const file of missing) out(`Missing cache file: ${dir}/${file}`);
      if (missing.length === 0) samples.push({ token, dir });
    }
  }
  return samples;
}
