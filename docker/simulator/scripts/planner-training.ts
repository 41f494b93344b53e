/**
 * Stages 2 and 3, run_training_recogdrive_torchax.py: the DiT planner trained on the cached hidden
 * states, imitation (agent.grpo=False) or GRPO (agent.grpo=True), one unit of work per optimizer
 * step. As upstream: the agent is built first (GRPO: the metric cache's metadata and the reference
 * policy through torch.load, which raises IsADirectoryError on an orbax directory);
 * the cache is read by CacheOnlyDataset with log_names = train_logs (upstream's 13,180 standard
 * train logs by default; log folders not in it are not read) behind a `Loading Valid Caches` tqdm,
 * then `Epoch: E, Step: S, ...` is logged for the 0-based global step every 10 steps. The public
 * fork's torchax step passes tokens_list=None, which GRPO iterates: a TypeError on the first step
 * unless the checkout fixes it (`torchax-grpo`). agent.checkpoint_path is never read here (the
 * trainer never calls agent.initialize()). Writes `<output_dir>/checkpoint-epoch-<E>.pt/checkpoint_<global step>/`
 * per epoch; a retry starts from epoch 0 (nothing is resumed).
 * partial: the last epoch's checkpoint is not written, exit 0.
 */
import { FEATURE_FILE, loadCacheFile, TARGET_FILE } from '../cache-files.ts';
import { loadReferencePolicy } from '../agent-checkpoints.ts';
import { readCheckout } from '../checkout.ts';
import type { ContainerFs } from '../container-fs.ts';
import { lossAt } from '../curves.ts';
import { PythonError, type Frame } from '../errors.ts';
import type { HydraJob } from '../hydra-job.ts';
import { runHydraScript } from '../hydra-job.ts';
import { jaxDevices } from '../jax.ts';
import { err, out, tqdmLine } from '../log.ts';
import { loadMetricCacheIndex, metricCacheEntry } from '../metric-cache-index.ts';
import { saveCheckpoint } from '../orbax.ts';
import { PLANNER_PARAMS } from '../planner-params.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptContext, type ScriptMain } from './context.ts';
import { requireRecogDriveAgent, trainingConfig } from './navsim-configs.ts';

/** The trainer logs every this many global steps (`if global_step % 10 == 0`). */
const LOG_EVERY = 10;

export interface CachedSample {
  token: string;
  dir: string;
}

export const plannerTraining: ScriptMain = (ctx) => runHydraScript(ctx, trainingConfig(), (job) => train(ctx, job));

async function train(ctx: ScriptContext, job: HydraJob): Promise<void> {
  const { cfg, outputDir } = job;
  const { fs } = ctx;
  const checkout = readCheckout(fs);
  job.info(`Global Seed set to ${cfg.str('seed')}`);
  job.info(`Path where all results are stored: ${outputDir}`);
  job.info('Building Agent');
  requireRecogDriveAgent(cfg, 'grpo');
  const grpo = cfg.bool('agent.grpo');
  const epochs = cfg.int('trainer.params.max_epochs');
  const batchSize = Math.max(1, cfg.int('dataloader.params.batch_size'));

  // ReCogDriveDiffusionPlanner._init_grpo: the metric cache loader, then the reference policy.
  const metricIndex = grpo ? loadMetricCacheIndex(fs, cfg.str('agent.metric_cache_path')) : undefined;
  if (grpo) loadReferencePolicy(fs, cfg.str('agent.reference_policy_checkpoint'));

  if (!cfg.bool('use_cache_without_dataset')) {
    job.info('Building SceneLoader');
    // The 2-tuple Dataset meets the 3-tuple collate of the torchax script on the first batch.
    throw new PythonError('ValueError', 'not enough values to unpack (expected 3, got 2)');
  }
  job.info('Using cached data without building SceneLoader');
  const trainLogs = cfg.list('train_logs') ?? [];
  const valLogs = cfg.list('val_logs') ?? [];
  job.info(`train_logs type: <class 'omegaconf.listconfig.ListConfig'>, value: ${pyList(trainLogs, cfg.listCount('train_logs'))}`);
  job.info(`val_logs type: <class 'omegaconf.listconfig.ListConfig'>, value: ${pyList(valLogs, cfg.listCount('val_logs'))}`);
  const cachePath = cfg.str('cache_path');
  job.info(`Checking cache path: ${cachePath}`);
  if (trainLogs.length > 0) {
    const logDir = `${cachePath}/${trainLogs[0]}`;
    if (fs.exists(logDir)) job.info(`Files in ${logDir}: ${pyList(fs.listDir(logDir))}`);
    else job.info(`Log dir ${logDir} does not exist!`);
  }
  if (cfg.bool('force_cache_computation')) {
    throw new PythonError('AssertionError', 'force_cache_computation must be False when using cached data without building SceneLoader');
  }
  const samples = cacheOnlyDataset(fs, cachePath, trainLogs);
  const validation = cacheOnlyDataset(fs, cachePath, valLogs);
  job.info('Building Datasets');
  if (samples.length === 0) {
    // DataLoader(shuffle=True) builds a RandomSampler over the empty dataset.
    throw new PythonError('ValueError', 'num_samples should be a positive integer value, but got num_samples=0');
  }
  job.info(`Num training samples: ${samples.length}`);
  job.info(`Num validation samples: ${validation.length}`);
  job.info(`JAX Devices: ${jaxDevices()}`);
  job.info('Initializing optimizer state on TPU...');
  job.info('Starting Training Loop');

  const stepsPerEpoch = Math.ceil(samples.length / batchSize);
  const totalSteps = epochs * stepsPerEpoch;
  const work = new Work(totalSteps, ctx.controls, ctx.scriptName);
  let globalStep = 0;
  for (let epoch = 0; epoch < epochs; epoch += 1) {
    for (let s = 0; s < stepsPerEpoch; s += 1) {
      if (grpo && !checkout.fixes.has('torchax-grpo')) throw grpoWithoutTokens(ctx.scriptPath);
      const seconds = await work.next();
      for (const sample of samples.slice(s * batchSize, (s + 1) * batchSize)) {
        loadCacheFile(fs, `${sample.dir}/${FEATURE_FILE}`);
        loadCacheFile(fs, `${sample.dir}/${TARGET_FILE}`);
        // The reward scores sampled trajectories against the token's metric cache.
        if (metricIndex !== undefined) loadCacheFile(fs, metricCacheEntry(metricIndex, sample.token));
      }
      if (globalStep % LOG_EVERY === 0) {
        const loss = lossAt((globalStep + 1) / totalSteps, grpo ? 0.9 : 2.4);
        job.info(`Epoch: ${epoch}, Step: ${globalStep}, Loss: ${loss.toFixed(7)}, Time: ${seconds.toFixed(4)}s`);
      }
      globalStep += 1;
    }
    if (isPartial(ctx) && epoch === epochs - 1) continue;
    const dir = `${outputDir}/checkpoint-epoch-${epoch}.pt`;
    saveCheckpoint(fs, dir, { params: PLANNER_PARAMS, epoch, globalStep }, { commit: true });
    job.info(`Saved checkpoint to ${dir}`);
  }
  await work.finish();
}

/**
 * CacheOnlyDataset (navsim/planning/training/dataset.py:36-118): the log folders named in
 * `log_names` that exist under the cache, read behind a `Loading Valid Caches` tqdm; a token folder
 * lacking a builder file is reported with print() and left out.
 */
export function cacheOnlyDataset(fs: ContainerFs, cachePath: string, logNames: readonly string[]): CachedSample[] {
  if (!fs.isDir(cachePath)) throw new PythonError('AssertionError', `Cache path ${cachePath} does not exist!`);
  const root = fs.absolute(cachePath);
  const logs = logNames.filter((log) => fs.isDir(`${root}/${log}`));
  const samples: CachedSample[] = [];
  const started = performance.now();
  for (const [i, log] of logs.entries()) {
    for (const token of fs.listDir(`${root}/${log}`)) {
      const dir = `${root}/${log}/${token}`;
      const missing = [FEATURE_FILE, TARGET_FILE].filter((file) => !fs.isFile(`${dir}/${file}`));
      for (const file of missing) out(`Missing cache file: ${dir}/${file}`);
      if (missing.length === 0) samples.push({ token, dir });
    }
    err(tqdmLine('Loading Valid Caches', i + 1, logs.length, (performance.now() - started) / 1000));
  }
  // tqdm over an empty list: no total, so no bar.
  if (logs.length === 0) err('Loading Valid Caches: 0it [00:00, ?it/s]');
  return samples;
}

/** GRPO's forward iterates tokens_list, which the torchax step passes as None. */
function grpoWithoutTokens(scriptPath: string): PythonError {
  const agent = '/recogdrive/navsim/agents/recogdrive';
  const frames: Frame[] = [
    { file: scriptPath, line: 329, fn: '<module>', code: 'main()' },
    { file: scriptPath, line: 297, fn: 'main', code: 'jax_trainable_params, opt_state, loss = train_step_jit(jax_trainable_params, jax_buffers, features_jax, targets_jax, opt_state)' },
    { file: scriptPath, line: 263, fn: 'train_step_jit', code: 'loss, grads = jax.value_and_grad(loss_fn)(jax_trainable_params, jax_buffers, features, targets)' },
    { file: scriptPath, line: 257, fn: 'loss_fn', code: 'predictions = torch.func.functional_call(agent, torch_params, args=(torch_features, torch_targets, None))' },
    { file: `${agent}/recogdrive_agent.py`, line: 191, fn: 'forward', code: 'return self.action_head.forward_grpo(last_hidden_state, action_inputs, tokens_list)' },
    { file: `${agent}/recogdrive_diffusion_planner.py`, line: 842, fn: 'forward_grpo', code: 'tokens_rep = [tok for tok in tokens_list for _ in range(G)]' },
  ];
  return new PythonError('TypeError', "'NoneType' object is not iterable", frames);
}

/** Python's repr of a list of str; a long list is shown by its first items and its length. */
export function pyList(items: readonly string[], count = items.length): string {
  const shown = items.slice(0, 3).map((s) => `'${s}'`);
  return `[${shown.join(', ')}${count > shown.length ? `, ... (${count} items)` : ''}]`;
}
