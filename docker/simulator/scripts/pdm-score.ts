/**
 * Evaluation, run_pdm_score_recogdrive.py: PDM score of the planner on every token of the
 * evaluation cache that has a metric cache entry, one unit of work per token. Reads the checkpoint,
 * the split's logs, the hidden-state cache and the metric cache; writes `<output_dir>/<timestamp>.csv`
 * (pandas to_csv: unnamed index column, one row per token, then an `average` row).
 * A token whose files fail to load is recorded as valid=False, never an error (as upstream).
 * partial: every third token row is missing from the CSV, exit 0.
 */
import { FEATURE_FILE, loadCacheFile, TARGET_FILE } from '../cache-files.ts';
import type { ContainerFs } from '../container-fs.ts';
import { round, unitFloat } from '../deterministic.ts';
import { fileNotFound, PythonError } from '../errors.ts';
import { runHydraScript } from '../hydra-job.ts';
import { err, isLogged, out, timestamp, tqdmLine } from '../log.ts';
import { loadMetricCacheIndex } from '../metric-cache-index.ts';
import { readLogs } from '../dataset.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
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

/** The process rank that scored the token: evaluation runs as a single process here. */
const RANK = '0';

interface ScoreRow {
  token: string;
  valid: boolean;
  /** Absent for failed tokens (NaN in pandas, an empty cell in the CSV). */
  metrics: Record<Metric, number> | undefined;
}

export const pdmScore: ScriptMain = (ctx) =>
  runHydraScript(
    ctx,
    pdmScoringConfig(),
    async (job) => {
      const { cfg, outputDir } = job;
      const { fs } = ctx;
      requireRecogDriveAgent(cfg, 'checkpoint_path');
      const checkpoint = cfg.str('agent.checkpoint_path');
      if (checkpoint === '' || !fs.exists(checkpoint)) throw fileNotFound(checkpoint === '' ? '' : fs.absolute(checkpoint));
      job.info(`Loaded planner checkpoint ${fs.absolute(checkpoint)}`);
      // Scenes are loaded to find each token's log, so the split's logs must be there.
      readLogs(fs, cfg.str('navsim_log_path'));

      const tokens = cacheTokens(fs, cfg.str('cache_path'));
      const metricIndex = loadMetricCacheIndex(fs, cfg.str('metric_cache_path'));
      const scored = tokens.filter(({ token }) => metricIndex.has(token));
      const missing = tokens.length - scored.length;
      if (missing > 0) job.print(`Missing metric cache for ${missing} tokens`);

      const work = new Work(scored.length, ctx.controls, ctx.scriptName);
      const started = performance.now();
      const rows: ScoreRow[] = [];
      for (const [i, { token, dir }] of scored.entries()) {
        await work.next();
        try {
          loadCacheFile(fs, `${dir}/${FEATURE_FILE}`);
          loadCacheFile(fs, `${dir}/${TARGET_FILE}`);
          loadCacheFile(fs, metricIndex.get(token) ?? '');
          rows.push({ token, valid: true, metrics: scoreOf(token) });
        } catch (error) {
          if (!(error instanceof PythonError)) throw error;
          job.warning(`----------- Agent failed for token ${token}:\n${error.type}: ${error.message}`);
          rows.push({ token, valid: false, metrics: undefined });
        }
        if (isLogged(i + 1, scored.length)) err(tqdmLine('Processing scenarios', i + 1, scored.length, (performance.now() - started) / 1000));
      }
      await work.finish();

      const valid = rows.filter((row) => row.valid);
      const csvPath = `${outputDir}/${timestamp()}.csv`;
      fs.writeFile(csvPath, resultsCsv(isPartial(ctx) ? rows.filter((_, i) => i % 3 !== 1) : rows));
      const average = valid.length === 0 ? NaN : round(mean(valid.map((row) => row.metrics?.score ?? 0)));
      out(
        `Finished running evaluation. Number of successful scenarios: ${valid.length}. ` +
          `Number of failed scenarios: ${rows.length - valid.length}. ` +
          `Final average score of valid results: ${Number.isNaN(average) ? 'nan' : average}. ` +
          `Results are stored in: ${csvPath}`,
      );
    },
    { extraLogFiles: ['log.txt'] },
  );

/** Every `<log>/<token>/` folder of the hidden-state cache (incomplete ones fail per token later). */
function cacheTokens(fs: ContainerFs, cachePath: string): { token: string; dir: string }[] {
  const root = fs.absolute(cachePath);
  return fs
    .listDir(root)
    .filter((log) => fs.isDir(`${root}/${log}`))
    .flatMap((log) => fs.listDir(`${root}/${log}`).map((token) => ({ token, dir: `${root}/${log}/${token}` })))
    .filter(({ dir }) => fs.isDir(dir));
}

/** Deterministic sub-scores; PDMS = NC × DAC × (5·TTC + 5·EP + 2·C) / 12 (navsim v1.1), always in (0, 1). */
function scoreOf(token: string): Record<Metric, number> {
  const ep = round(0.6 + 0.38 * unitFloat(`${token}/ep`));
  const ttc = unitFloat(`${token}/ttc`) < 0.1 ? 0 : 1;
  const comfort = unitFloat(`${token}/comfort`) < 0.05 ? 0 : 1;
  return {
    no_at_fault_collisions: 1,
    drivable_area_compliance: 1,
    ego_progress: ep,
    time_to_collision_within_bound: ttc,
    comfort,
    driving_direction_compliance: 1,
    score: round((5 * ttc + 5 * ep + 2 * comfort) / 12),
  };
}

/** pandas to_csv of the results frame plus the `average` row (column means over valid rows; valid = all valid). */
function resultsCsv(rows: readonly ScoreRow[]): string {
  const header = ['', 'token', 'valid', ...METRICS, 'rank'].join(',');
  const valid = rows.filter((row) => row.valid);
  const line = (index: number, token: string, isValid: boolean, metrics: Record<Metric, number> | undefined) =>
    [index, token, isValid ? 'True' : 'False', ...METRICS.map((m) => (metrics === undefined ? '' : String(metrics[m]))), RANK].join(',');
  const averages =
    valid.length === 0
      ? undefined
      : (Object.fromEntries(METRICS.map((m) => [m, round(mean(valid.map((row) => row.metrics?.[m] ?? 0)))])) as Record<Metric, number>);
  const body = rows.map((row, i) => line(i, row.token, row.valid, row.metrics));
  body.push(line(rows.length, 'average', valid.length === rows.length, averages));
  return `${[header, ...body].join('\n')}\n`;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}
