/**
 * Evaluation, run_pdm_score_recogdrive.py: PDM score of the planner on every token of the
 * evaluation split (navtest's scene filter) that has a metric cache entry. As upstream: it is an
 * NCCL job (`dist.init_process_group("nccl")` with env:// rendezvous, then torch.cuda.set_device):
 * plain `python` fails without MASTER_ADDR/MASTER_PORT and without GPUs, unless the checkout runs
 * it as one process without NCCL (`eval-without-torchrun`, checkout.ts). After nuplan's
 * build_logger every log line has nuplan's format. agent.initialize() torch.load()s the checkpoint
 * outside the per-token try (an orbax directory is IsADirectoryError) and loads, strict=False, only
 * keys it knows: a checkpoint with none scores an untrained planner, silently. The hidden-state
 * cache is read by navsim's Dataset, whose _load_valid_caches calls iterdir() on EVERY entry of
 * cache_path (dataset.py:183-191): a file there (a completion marker) is a NotADirectoryError.
 * Per token, rank 0 logs `Rank 0 processing scenario i / N ...`; a token whose files fail to load
 * is recorded as valid=False. Writes `<output_dir>/<timestamp>.csv` (pandas to_csv: unnamed index
 * column, one row per token, then an `average` row).
 * partial: every third token row is missing from the CSV, exit 0.
 */
import { randomUUID } from 'node:crypto';
import { initializeAgent } from '../agent-checkpoints.ts';
import { FEATURE_FILE, loadCacheFile, TARGET_FILE } from '../cache-files.ts';
import { readCheckout } from '../checkout.ts';
import { initNcclProcessGroup } from '../distributed.ts';
import type { ContainerFs } from '../container-fs.ts';
import { round, unitFloat } from '../deterministic.ts';
import { PythonError, pyRepr } from '../errors.ts';
import { runHydraScript } from '../hydra-job.ts';
import { err, timestamp } from '../log.ts';
import { loadMetricCacheIndex } from '../metric-cache-index.ts';
import { loadScenes, sceneFilterOf } from '../scene-loader.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
import { buildWorker } from './metric-cache.ts';
import { pdmScoringConfig, requireRecogDriveAgent } from './navsim-configs.ts';

const METRICS = [
  'no_at_fault_collisions',
  'drivable_area_compliance',
  'ego_progress',
  'time_to_collision_within_bound',
  'comfort',
  'driving_direction_compliance',
  'score',
] as const;
type Metric = (typeof METRICS)[number];

interface ScoreRow {
  token: string;
  valid: boolean;
  /** Absent for failed tokens (NaN in pandas, an empty cell in the CSV). */
  metrics: Record<Metric, number> | undefined;
}

export const pdmScore: ScriptMain = async (ctx) => {
  const checkout = readCheckout(ctx.fs);
  const rank = Number(ctx.env.RANK ?? '0');
  await runHydraScript(
    ctx,
    pdmScoringConfig(),
    async (job) => {
      const { cfg, outputDir } = job;
      const { fs } = ctx;
      if (!checkout.fixes.has('eval-without-torchrun')) initNcclProcessGroup(ctx.env);
      job.buildLogger(193);
      buildWorker(job);

      const sceneLoader = loadScenes(fs, cfg.str('navsim_log_path'), sceneFilterOf(cfg));
      const metricIndex = loadMetricCacheIndex(fs, cfg.str('metric_cache_path'));
      const sceneTokens = new Set(sceneLoader.map((s) => s.token));
      const tokens = [...sceneTokens].filter((t) => metricIndex.has(t)).sort();
      const missing = [...sceneTokens].filter((t) => !metricIndex.has(t)).length;
      const unused = [...metricIndex.keys()].filter((t) => !sceneTokens.has(t)).length;
      if (missing > 0) job.warning(`Missing metric cache for ${missing} tokens. Skipping these tokens.`, 221);
      if (unused > 0) job.warning(`Unused metric cache for ${unused} tokens. Skipping these tokens.`, 223);
      job.info(`Starting pdm scoring of ${tokens.length} scenarios...`, 232);

      // run_pdm_score(data_points): the agent, its checkpoint, the scenes, the cache.
      const threadId = randomUUID();
      job.info(`Starting worker in thread_id=${threadId}, node_id=0`, 71);
      requireRecogDriveAgent(cfg, 'checkpoint_path');
      // agent.initialize() outside the per-token try; strict=False: a checkpoint whose keys all miss loads nothing.
      const trained = initializeAgent(fs, cfg.str('agent.checkpoint_path')) > 0;
      const logOf = new Map(sceneLoader.map((s) => [s.token, s.logName]));
      loadScenes(fs, cfg.str('navsim_log_path'), { logNames: [...new Set(tokens.map((t) => logOf.get(t)!))], tokens });
      const cachePath = cfg.get('cache_path') === null ? undefined : cfg.str('cache_path');
      if (cachePath !== undefined) loadValidCaches(fs, cachePath);

      const work = new Work(tokens.length, ctx.controls, ctx.scriptName);
      const rows: ScoreRow[] = [];
      for (const [i, token] of tokens.entries()) {
        await work.next();
        if (rank === 0) job.info(`Rank ${rank} processing scenario ${i + 1} / ${tokens.length} in thread_id=${threadId}, node_id=0`, 112);
        try {
          loadCacheFile(fs, metricIndex.get(token) ?? '');
          if (cachePath === undefined) throw new PythonError('TypeError', "unsupported operand type(s) for /: 'NoneType' and 'str'");
          const dir = `${fs.absolute(cachePath)}/${logOf.get(token)}/${token}`;
          loadCacheFile(fs, `${dir}/${FEATURE_FILE}`);
          loadCacheFile(fs, `${dir}/${TARGET_FILE}`);
          rows.push({ token, valid: true, metrics: scoreOf(token, trained) });
        } catch (error) {
          if (!(error instanceof PythonError)) throw error;
          job.warning(`----------- Agent failed for token ${token}:`, 136);
          err(`Traceback (most recent call last):\n${error.type}: ${error.message}`);
          rows.push({ token, valid: false, metrics: undefined });
        }
      }
      await work.finish();

      const valid = rows.filter((row) => row.valid);
      const csvPath = `${outputDir}/${timestamp()}.csv`;
      fs.writeFile(csvPath, resultsCsv(isPartial(ctx) ? rows.filter((_, i) => i % 3 !== 1) : rows, rank));
      const average = valid.length === 0 ? NaN : round(mean(valid.map((row) => row.metrics?.score ?? 0)));
      job.info(
        [
          '',
          '            Finished running evaluation.',
          `                Number of successful scenarios: ${valid.length}.`,
          `                Number of failed scenarios: ${rows.length - valid.length}.`,
          `                Final average score of valid results: ${Number.isNaN(average) ? 'nan' : average}.`,
          `                Results are stored in: ${csvPath}.`,
          '            ',
        ].join('\n'),
        309,
      );
    },
  );
};

/**
 * Dataset._load_valid_caches (dataset.py:183-191): `for log_path in cache_path.iterdir(): for
 * token_path in log_path.iterdir():` over EVERY entry of the cache root.
 */
function loadValidCaches(fs: ContainerFs, cachePath: string): void {
  if (!fs.isDir(cachePath)) return;
  const root = fs.absolute(cachePath);
  for (const entry of fs.listDir(root)) {
    const logPath = `${root}/${entry}`;
    if (!fs.isDir(logPath)) throw new PythonError('NotADirectoryError', `[Errno 20] Not a directory: ${pyRepr(logPath)}`);
    fs.listDir(logPath);
  }
}

/**
 * Deterministic sub-scores; PDMS = NC × DAC × (5·TTC + 5·EP + 2·C) / 12 (navsim v1.1), always in
 * [0, 1). An agent that loaded no weights (random initialisation) collides and leaves the road often.
 */
function scoreOf(token: string, trained: boolean): Record<Metric, number> {
  const ep = round((trained ? 0.6 : 0.05) + 0.38 * unitFloat(`${token}/ep`));
  const nc = trained || unitFloat(`${token}/nc`) < 0.4 ? 1 : 0;
  const dac = trained || unitFloat(`${token}/dac`) < 0.5 ? 1 : 0;
  const ttc = unitFloat(`${token}/ttc`) < 0.1 ? 0 : 1;
  const comfort = unitFloat(`${token}/comfort`) < 0.05 ? 0 : 1;
  return {
    no_at_fault_collisions: nc,
    drivable_area_compliance: dac,
    ego_progress: ep,
    time_to_collision_within_bound: ttc,
    comfort,
    driving_direction_compliance: 1,
    score: round((nc * dac * (5 * ttc + 5 * ep + 2 * comfort)) / 12),
  };
}

/** pandas to_csv of the results frame plus the `average` row (column means over valid rows; valid = all valid). */
function resultsCsv(rows: readonly ScoreRow[], rank: number): string {
  const header = ['', 'token', 'valid', ...METRICS, 'rank'].join(',');
  const valid = rows.filter((row) => row.valid);
  const line = (index: number, token: string, isValid: boolean, metrics: Record<Metric, number> | undefined, rankCell: string) =>
    [index, token, isValid ? 'True' : 'False', ...METRICS.map((m) => (metrics === undefined ? '' : String(metrics[m]))), rankCell].join(',');
  const averages =
    valid.length === 0
      ? undefined
      : (Object.fromEntries(METRICS.map((m) => [m, round(mean(valid.map((row) => row.metrics?.[m] ?? 0)))])) as Record<Metric, number>);
  const body = rows.map((row, i) => line(i, row.token, row.valid, row.metrics, row.valid ? String(rank) : ''));
  body.push(line(rows.length, 'average', valid.length === rows.length, averages, '0'));
  return `${[header, ...body].join('\n')}\n`;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}
