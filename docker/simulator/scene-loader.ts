/**
 * navsim's SceneLoader / filter_scenes (navsim/common/dataloader.py:14-66): the scenes of a split
 * folder that the scene filter keeps. Logs not in `log_names` and tokens not in `tokens` are dropped
 * (a null list keeps all), with the `Loading logs` tqdm over the kept log files. The lists come from
 * the config as upstream's samples (upstream/log-splits.ts), so a scene kept here is kept upstream.
 */
import type { ContainerFs } from './container-fs.ts';
import { readLogs } from './dataset.ts';
import type { HydraConfig } from './hydra-config.ts';
import { err, tqdmLine } from './log.ts';

export interface SceneFilter {
  /** undefined: every log of the folder. */
  logNames: readonly string[] | undefined;
  /** undefined: every token of the kept logs. */
  tokens: readonly string[] | undefined;
}

export interface Scene {
  logName: string;
  token: string;
}

/** `instantiate(cfg.train_test_split.scene_filter)`: its log_names and tokens lists. */
export function sceneFilterOf(cfg: HydraConfig): SceneFilter {
  return {
    logNames: cfg.list('train_test_split.scene_filter.log_names'),
    tokens: cfg.list('train_test_split.scene_filter.tokens'),
  };
}

export function loadScenes(fs: ContainerFs, dataPath: string, filter: SceneFilter): Scene[] {
  const started = performance.now();
  const logs = readLogs(fs, dataPath).filter((log) => filter.logNames === undefined || filter.logNames.includes(log.logName));
  const keep = filter.tokens === undefined ? undefined : new Set(filter.tokens);
  const scenes: Scene[] = [];
  for (const [i, log] of logs.entries()) {
    for (const token of log.tokens) if (keep === undefined || keep.has(token)) scenes.push({ logName: log.logName, token });
    err(tqdmLine('Loading logs', i + 1, logs.length, (performance.now() - started) / 1000));
  }
  // tqdm over an empty list: no total, so no bar.
  if (logs.length === 0) err('Loading logs: 0it [00:00, ?it/s]');
  return scenes;
}
