/**
 * Bridge 2, run_metric_caching.py: PDM metric cache (CPU) of every scene of the split, one unit of
 * work per token. Reads the split's logs and the nuPlan maps; writes
 * `<cache>/<log>/unknown/<token>/metric_cache.pkl`, then the metadata CSV at the very end.
 * Existing files are kept unless cache.force_feature_computation (resumable), but the CSV is
 * rewritten from this run's tokens. partial: the CSV misses every third row, exit 0.
 */
import { metricCacheFile, METRIC_CACHE_FILE, SCENARIO_TYPE } from '../cache-files.ts';
import { readLogs } from '../dataset.ts';
import { PythonError } from '../errors.ts';
import { runHydraScript } from '../hydra-job.ts';
import { err, isLogged, tqdmLine } from '../log.ts';
import { formatMetadataCsv, metadataCsvPath } from '../metric-cache-index.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
import { metricCachingConfig } from './navsim-configs.ts';

/** Hard-coded in navsim/planning/metric_caching/caching.py. */
const MAP_VERSION = 'nuplan-maps-v1.0';

export const metricCache: ScriptMain = (ctx) =>
  runHydraScript(
    ctx,
    metricCachingConfig(),
    async (job) => {
      const { cfg } = job;
      const { fs } = ctx;
      const mapsRoot = ctx.env.NUPLAN_MAPS_ROOT;
      // caching.py reads os.environ["NUPLAN_MAPS_ROOT"] directly.
      if (mapsRoot === undefined) throw new PythonError('KeyError', "'NUPLAN_MAPS_ROOT'");
      fs.readText(`${mapsRoot}/${MAP_VERSION}.json`);
      const cachePath = fs.absolute(cfg.str('cache.cache_path'));
      const force = cfg.bool('cache.force_feature_computation');
      const worker = cfg.group('worker');

      const logs = readLogs(fs, cfg.str('navsim_log_path'));
      const scenes = logs.flatMap((log) => log.tokens.map((token) => ({ logName: log.logName, token })));
      job.print(`Starting metric caching of ${logs.length} files...`);

      const work = new Work(scenes.length, ctx.controls, ctx.scriptName);
      const started = performance.now();
      const files: string[] = [];
      for (const [i, { logName, token }] of scenes.entries()) {
        await work.next();
        const file = `${cachePath}/${logName}/${SCENARIO_TYPE}/${token}/${METRIC_CACHE_FILE}`;
        if (force || !fs.isFile(file)) fs.writeFile(file, metricCacheFile(token, logName));
        files.push(file);
        if (isLogged(i + 1, scenes.length)) {
          err(tqdmLine(worker.startsWith('ray') ? 'Ray objects' : 'Worker', i + 1, scenes.length, (performance.now() - started) / 1000));
        }
      }
      await work.finish();
      job.print(`Completed dataset caching! All ${scenes.length} features and targets were cached successfully.`);

      const rows = isPartial(ctx) ? files.filter((_, i) => i % 3 !== 1) : files;
      fs.writeFile(metadataCsvPath(cachePath, ctx.env.NODE_RANK ?? '0'), formatMetadataCsv(rows));
      job.print('Done storing metadata csv file.');
    },
    // nuplan's build_logger also writes log.txt into the run dir (= <cache>/metadata).
    { extraLogFiles: ['log.txt'] },
  );
