/**
 * The metric cache's metadata CSV: written by metric caching (nuplan's save_cache_metadata), read by
 * GRPO and evaluation through navsim's MetricCacheLoader.
 */
import path from 'node:path';
import type { ContainerFs } from './container-fs.ts';
import { fileNotFound, PythonError } from './errors.ts';

/** `<cache>/metadata/<basename(cache)>_metadata_node_<rank>.csv`. */
export function metadataCsvPath(cachePath: string, nodeRank: string): string {
  return `${cachePath}/metadata/${path.posix.basename(cachePath)}_metadata_node_${nodeRank}.csv`;
}

/** Header `file_name`, then one absolute (container) path of a metric_cache.pkl per row. */
export function formatMetadataCsv(pklPaths: readonly string[]): string {
  return ['file_name', ...pklPaths].map((line) => `${line}\n`).join('');
}

/**
 * MetricCacheLoader: reads only the first file in metadata/ whose name contains ".csv" (multi-node
 * CSVs are not merged), and maps each token (the path's second-to-last component) to its file.
 */
export function loadMetricCacheIndex(fs: ContainerFs, cachePath: string): Map<string, string> {
  const metadataDir = `${cachePath}/metadata`;
  if (!fs.isDir(metadataDir)) throw fileNotFound(fs.absolute(metadataDir));
  const csv = fs.listDir(metadataDir).find((name) => name.includes('.csv'));
  if (csv === undefined) {
    throw new PythonError('FileNotFoundError', `No metric cache metadata csv found in '${fs.absolute(metadataDir)}'`);
  }
  const index = new Map<string, string>();
  for (const row of fs.readText(`${metadataDir}/${csv}`).split('\n').slice(1)) {
    const file = row.trim();
    const token = file.split('/').at(-2);
    if (file !== '' && token !== undefined) index.set(token, file);
  }
  return index;
}

/** The token's entry; a token the CSV does not list raises KeyError, as the loader's dict lookup does. */
export function metricCacheEntry(index: ReadonlyMap<string, string>, token: string): string {
  const file = index.get(token);
  if (file === undefined) throw new PythonError('KeyError', `'${token}'`);
  return file;
}
