/**
 * Bridge 2, run_metric_caching.py: PDM metric cache (CPU) of every scene the split's scene filter
 * keeps. Reads the split's logs and the nuPlan maps; writes `<cache>/<log>/unknown/<token>/metric_cache.pkl`,
 * then the metadata CSV at the very end. As upstream (navsim/planning/metric_caching/caching.py,
 * nuplan-devkit v1.2): after `build_logger` every log line has nuplan's format; the work is one data
 * point per LOG, split by worker_map into one chunk per worker thread (np.array_split, empty chunks
 * dropped), the chunks running in parallel; the Ray worker shows a `Ray objects` tqdm whose total
 * is the number of chunks, printed at 0 and moved only when a whole chunk finishes (near the end);
 * per-scenario lines go to each Ray task's own log file under `<output_dir>/logs/`, not to the
 * console. A metric_cache.pkl that exists is kept unless cache.force_feature_computation
 * (MetricCacheProcessor.compute_metric_cache), so a rerun computes only the rest; the CSV lists them all.
 * partial: the CSV misses every third row, exit 0.
 */
import { randomUUID } from 'node:crypto';
import { metricCacheFile, METRIC_CACHE_FILE, SCENARIO_TYPE } from '../cache-files.ts';
import { PythonError } from '../errors.ts';
import { runHydraScript, SITE_PACKAGES, type HydraJob } from '../hydra-job.ts';
import { err, logRecord, tqdmLine } from '../log.ts';
import { formatMetadataCsv, metadataCsvPath } from '../metric-cache-index.ts';
import { loadScenes, sceneFilterOf, type Scene } from '../scene-loader.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
import { metricCachingConfig } from './navsim-configs.ts';

/** Hard-coded in navsim/planning/metric_caching/caching.py:54. */
const MAP_VERSION = 'nuplan-maps-v1.0';
/** psutil.cpu_count(logical=True) of the simulated VM: what a Ray worker without threads_per_node uses. */
export const SIMULATED_CPUS = 8;

interface Chunk {
  scenes: Scene[];
  done: number;
  log: string;
}

export const metricCache: ScriptMain = (ctx) =>
  runHydraScript(
    ctx,
    metricCachingConfig(),
    async (job) => {
      const { cfg } = job;
      const { fs } = ctx;
      const threads = buildWorker(job);
      job.info('Starting Metric Caching...', 29);
      const caching = job.logger('navsim.planning.metric_caching.caching', 'navsim/planning/metric_caching/caching.py');
      const cachePath = fs.absolute(cfg.str('cache.cache_path'));
      const force = cfg.bool('cache.force_feature_computation');

      const scenes = loadScenes(fs, cfg.str('navsim_log_path'), sceneFilterOf(cfg));
      const logs = [...new Set(scenes.map((s) => s.logName))];
      caching.info(`Starting metric caching of ${logs.length} files...`, 140);
      // caching.py reads os.environ["NUPLAN_MAPS_ROOT"] in each task: only once there is work.
      const mapsRoot = ctx.env.NUPLAN_MAPS_ROOT;
      if (logs.length > 0) {
        if (mapsRoot === undefined) throw new PythonError('KeyError', "'NUPLAN_MAPS_ROOT'");
        fs.readText(`${mapsRoot}/${MAP_VERSION}.json`);
      }

      const chunks = splitIntoChunks(logs, threads).map((chunkLogs): Chunk => ({
        scenes: scenes.filter((s) => chunkLogs.includes(s.logName)),
        done: 0,
        log: `${cfg.str('output_dir')}/logs/${randomUUID().replaceAll('-', '')}__cache_scenarios.log`,
      }));
      const ray = cfg.group('worker').startsWith('ray');
      const barName = ray ? 'Ray objects' : 'Worker';
      const started = performance.now();
      const bar = (n: number) => err(tqdmLine(barName, n, chunks.length, (performance.now() - started) / 1000));
      bar(0);

      // The chunks run in parallel: one scene of each unfinished chunk in turn.
      const work = new Work(scenes.length, ctx.controls, ctx.scriptName);
      const files: string[] = [];
      let finished = 0;
      const threadIds = chunks.map(() => randomUUID());
      for (const [c, chunk] of chunks.entries()) {
        fs.appendText(chunk.log, `${logRecord('navsim.planning.metric_caching.caching', 'INFO', `Extracted ${chunk.scenes.length} scenarios for thread_id=${threadIds[c]}, node_id=0.`)}\n`);
      }
      while (chunks.some((chunk) => chunk.done < chunk.scenes.length)) {
        for (const [c, chunk] of chunks.entries()) {
          if (chunk.done >= chunk.scenes.length) continue;
          await work.next();
          const { logName, token } = chunk.scenes[chunk.done]!;
          chunk.done += 1;
          fs.appendText(chunk.log, `${logRecord('navsim.planning.metric_caching.caching', 'INFO', `Processing scenario ${chunk.done} / ${chunk.scenes.length} in thread_id=${threadIds[c]}, node_id=0`)}\n`);
          const file = `${cachePath}/${logName}/${SCENARIO_TYPE}/${token}/${METRIC_CACHE_FILE}`;
          if (force || !fs.isFile(file)) fs.writeFile(file, metricCacheFile(token, logName));
          files.push(file);
          if (chunk.done === chunk.scenes.length) {
            finished += 1;
            bar(finished);
          }
        }
      }
      await work.finish();
      caching.info(`Completed dataset caching! All ${files.length} features and targets were cached successfully.`, 148);
      caching.info('Node 0: Storing metadata csv file containing cache paths for valid features and targets...', 167);
      const rows = isPartial(ctx) ? files.filter((_, i) => i % 3 !== 1) : files;
      fs.writeFile(metadataCsvPath(cachePath, ctx.env.NODE_RANK ?? '0'), formatMetadataCsv(rows));
      caching.info('Done storing metadata csv file.', 169);
    },
    { logging: 'nuplan' },
  );

/** navsim's build_worker (worker_pool_builder.py) and the WorkerPool lines; returns the number of worker threads. */
export function buildWorker(job: HydraJob): number {
  const { cfg } = job;
  const builder = job.logger('navsim.planning.script.builders.worker_pool_builder', 'navsim/planning/script/builders/worker_pool_builder.py');
  const ray = job.logger('navsim.planning.utils.multithreading.worker_ray_no_torch', 'navsim/planning/utils/multithreading/worker_ray_no_torch.py');
  const pool = job.logger('nuplan.planning.utils.multithreading.worker_pool', `${SITE_PACKAGES}/nuplan/planning/utils/multithreading/worker_pool.py`);
  builder.info('Building WorkerPool...', 20);
  const worker = cfg.group('worker');
  let threads: number;
  let name: string;
  if (worker.startsWith('ray')) {
    const perNode = cfg.get('worker.threads_per_node');
    threads = typeof perNode === 'number' && perNode > 0 ? perNode : SIMULATED_CPUS;
    name = worker === 'ray_distributed' ? 'RayDistributed' : 'RayDistributedNoTorch';
    if (worker === 'ray_distributed_no_torch') ray.info('Not using GPU in ray', 51);
    ray.info('Starting ray local!', 77);
  } else if (worker === 'single_machine_thread_pool') {
    const max = cfg.get('worker.max_workers');
    threads = typeof max === 'number' && max > 0 ? max : SIMULATED_CPUS;
    name = 'SingleMachineParallelExecutor';
  } else {
    threads = 1;
    name = 'Sequential';
  }
  pool.info(`Worker: ${name}`, 101);
  pool.info('Number of nodes: 1', 152);
  pool.info(`Number of CPUs per node: ${threads}`, 153);
  pool.info('Number of GPUs per node: 0', 154);
  pool.info(`Number of threads across all nodes: ${threads}`, 157);
  builder.info('Building WorkerPool...DONE!', 31);
  return threads;
}

/** nuplan's chunk_list: np.array_split(items, n), empty chunks dropped (the first len % n chunks get one more). */
export function splitIntoChunks<T>(items: readonly T[], n: number): T[][] {
  const size = Math.floor(items.length / n);
  const extra = items.length % n;
  const chunks: T[][] = [];
  let start = 0;
  for (let i = 0; i < n; i += 1) {
    const length = size + (i < extra ? 1 : 0);
    if (length > 0) chunks.push(items.slice(start, start + length));
    start += length;
  }
  return chunks;
}
