/**
 * The per-token cache files the stages exchange, scaled down: the feature cache's
 * internvl_feature.gz / trajectory_target.gz (gzip level 1, like navsim's dump_feature_target_to_pickle)
 * and the metric cache's metric_cache.pkl. Real files are pickles; these hold JSON with the same keys
 * and tiny arrays (last_hidden_state keeps its real shape as metadata only).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ContainerFs } from './container-fs.ts';
import { floats } from './deterministic.ts';
import { PythonError } from './errors.ts';

export const FEATURE_FILE = 'internvl_feature.gz';
export const TARGET_FILE = 'trajectory_target.gz';
export const METRIC_CACHE_FILE = 'metric_cache.pkl';
/** navsim writes metric caches under <log>/<scenario type>/<token>; the type is "unknown" in practice. */
export const SCENARIO_TYPE = 'unknown';

export function featureFile(token: string): Buffer {
  return pack({
    history_trajectory: rows(floats(`${token}/history`, 12, 10), 3),
    high_command_one_hot: [0, 0, 1, 0],
    status_feature: floats(`${token}/status`, 8, 5),
    last_hidden_state: { shape: [2800, 1536], dtype: 'float32', sample: floats(`${token}/hidden`, 16) },
  });
}

export function targetFile(token: string): Buffer {
  return pack({ trajectory: rows(floats(`${token}/trajectory`, 24, 20), 3) });
}

export function metricCacheFile(token: string, logName: string): Buffer {
  return pack({
    file_path: `${logName}/${SCENARIO_TYPE}/${token}`,
    trajectory: rows(floats(`${token}/pdm_closed`, 24, 20), 3),
    ego_state: floats(`${token}/ego`, 6, 5),
    centerline: rows(floats(`${token}/centerline`, 20, 50), 2),
    route_lane_ids: [`lane_${token.slice(0, 6)}`],
  });
}

/** gzip.open + pickle.load: a truncated file raises EOFError, garbage raises like the real loaders. */
export function loadCacheFile(fs: ContainerFs, file: string): unknown {
  const bytes = fs.readBytes(file);
  let text: string;
  try {
    text = gunzipSync(bytes).toString('utf8');
  } catch {
    if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
      throw new PythonError('EOFError', 'Compressed file ended before the end-of-stream marker was reached');
    }
    throw new PythonError('gzip.BadGzipFile', `Not a gzipped file (b'${bytes.subarray(0, 2).toString('latin1')}')`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new PythonError('_pickle.UnpicklingError', 'pickle data was truncated');
  }
}

function pack(value: unknown): Buffer {
  return gzipSync(JSON.stringify(value), { level: 1 });
}

function rows(values: number[], width: number): number[][] {
  return Array.from({ length: values.length / width }, (_, i) => values.slice(i * width, (i + 1) * width));
}
