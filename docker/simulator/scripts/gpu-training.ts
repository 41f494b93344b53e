/**
 * Stages 2 and 3 on GPUs, the upstream PyTorch Lightning scripts: run_training_recogdrive.py
 * (imitation, AgentLightningModule) and run_training_recogdrive_rl.py (GRPO, AgentLightningDiT).
 * As upstream: the script first calls `dist.init_process_group(backend='nccl')` with the env://
 * rendezvous and `torch.cuda.set_device(LOCAL_RANK)`, so it runs under torchrun on GPUs only;
 * the agent is built (GRPO: the metric cache's metadata and the reference policy, loaded strictly
 * into the planner: keys must be `agent.action_head.*`); the RL script then calls
 * agent.initialize() (agent.checkpoint_path, strict=False); both datasets are CacheOnlyDataset
 * (train_logs / val_logs); then pl.Trainer + ModelCheckpoint(val/loss_epoch, top 5), see
 * lightning.ts. Unlike the torchax trainer, GRPO gets its tokens (the Lightning step passes
 * tokens_list). Writes `<output_dir>/lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt`;
 * a retry starts from scratch in a new version_<V> (fit() is given no ckpt_path).
 * partial: the newest checkpoint is removed after fit, exit 0.
 */
import { initializeAgent, loadReferencePolicy } from '../agent-checkpoints.ts';
import { FEATURE_FILE, loadCacheFile, TARGET_FILE } from '../cache-files.ts';
import { initNcclProcessGroup } from '../distributed.ts';
import { PythonError, SimulatorError } from '../errors.ts';
import type { HydraJob } from '../hydra-job.ts';
import { runHydraScript } from '../hydra-job.ts';
import { buildTrainer, fit, fitUnits } from '../lightning.ts';
import { err } from '../log.ts';
import { loadMetricCacheIndex, metricCacheEntry } from '../metric-cache-index.ts';
import { LIGHTNING_PLANNER_KEYS } from '../planner-params.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptContext, type ScriptMain } from './context.ts';
import { requireRecogDriveAgent, trainingConfig } from './navsim-configs.ts';
import { cacheOnlyDataset } from './planner-training.ts';

type Flavour = 'imitation' | 'grpo';

export const gpuImitationTraining: ScriptMain = (ctx) => runHydraScript(ctx, trainingConfig(), (job) => train(ctx, job, 'imitation'));
export const gpuGrpoTraining: ScriptMain = (ctx) => runHydraScript(ctx, trainingConfig(), (job) => train(ctx, job, 'grpo'));

async function train(ctx: ScriptContext, job: HydraJob, flavour: Flavour): Promise<void> {
  const { cfg } = job;
  const { fs, env } = ctx;
  initNcclProcessGroup(env);
  const seed = cfg.str('seed');
  if (env.RANK === undefined || env.RANK === '0') err(`Seed set to ${seed}`);
  job.info(`Global Seed set to ${seed}`);
  job.info(`Path where all results are stored: ${cfg.str('output_dir')}`);
  job.info('Building Agent');
  requireRecogDriveAgent(cfg, 'grpo');
  const grpo = cfg.bool('agent.grpo');
  // ReCogDriveDiffusionPlanner._init_grpo, inside instantiate(cfg.agent).
  const metricIndex = grpo ? loadMetricCacheIndex(fs, cfg.str('agent.metric_cache_path')) : undefined;
  if (grpo) loadReferencePolicy(fs, cfg.str('agent.reference_policy_checkpoint'));
  if (flavour === 'grpo') initializeAgent(fs, cfg.str('agent.checkpoint_path'));
  job.info('Building Lightning Module');

  if (!cfg.bool('use_cache_without_dataset')) {
    throw new SimulatorError('use_cache_without_dataset=false (SceneLoader datasets that compute features with the VLM) is not simulated');
  }
  job.info('Using cached data without building SceneLoader');
  if (cfg.bool('force_cache_computation')) {
    throw new PythonError('AssertionError', 'force_cache_computation must be False when using cached data without building SceneLoader');
  }
  const cachePath = cfg.str('cache_path');
  const trainLogs = cfg.list('train_logs') ?? [];
  const valLogs = cfg.list('val_logs') ?? [];
  const train = cacheOnlyDataset(fs, cachePath, trainLogs);
  const val = cacheOnlyDataset(fs, cachePath, valLogs);

  job.info('Building Datasets');
  if (train.length === 0) {
    // DataLoader(shuffle=True) builds a RandomSampler over the empty dataset.
    throw new PythonError('ValueError', 'num_samples should be a positive integer value, but got num_samples=0');
  }
  job.info(`Num training samples: ${train.length}`);
  job.info(`Num validation samples: ${val.length}`);

  job.info('Building Trainer');
  const trainer = buildTrainer(cfg, env);
  job.info('Starting Training');
  const batchSize = Math.max(1, cfg.int('dataloader.params.batch_size'));
  const work = new Work(fitUnits(trainer, train.length, val.length, batchSize), ctx.controls, ctx.scriptName);
  const kept = await fit(fs, trainer, {
    train,
    val,
    batchSize,
    lossStart: grpo ? 0.9 : 2.4,
    stateDict: LIGHTNING_PLANNER_KEYS,
    work,
    loadBatch(samples, phase) {
      for (const sample of samples) {
        loadCacheFile(fs, `${sample.dir}/${FEATURE_FILE}`);
        loadCacheFile(fs, `${sample.dir}/${TARGET_FILE}`);
        // The GRPO reward scores sampled trajectories against the token's metric cache (validation is plain imitation loss).
        if (metricIndex !== undefined && phase === 'train') loadCacheFile(fs, metricCacheEntry(metricIndex, sample.token));
      }
    },
  });
  await work.finish();
  if (isPartial(ctx) && kept.length > 0) fs.remove(kept.at(-1)!);
}
