/**
 * The raw NAVSIM data as the scripts read it: splits, log files (`navsim_logs/<data split>/<log>.pkl`),
 * scene tokens and front-camera blobs. The simulator's .pkl files hold JSON instead of pickles.
 */
import path from 'node:path';
import type { ContainerFs } from './container-fs.ts';
import { hashHex } from './deterministic.ts';
import { PythonError } from './errors.ts';

/** train_test_split → the data split folder its scene filter reads (navtrain.yaml: data_split: trainval). */
const DATA_SPLIT_OF: Readonly<Record<string, string>> = { navtrain: 'trainval', navtest: 'test', navmini: 'mini' };
export const SPLITS = Object.keys(DATA_SPLIT_OF);

export function dataSplitOf(split: string): string {
  const folder = DATA_SPLIT_OF[split];
  if (folder === undefined) throw new PythonError('KeyError', `'${split}'`);
  return folder;
}

export interface NavsimLog {
  logName: string;
  tokens: string[];
}

/** A scene token: 16 hex characters, deterministic from the log name and the scene's index. */
export function tokenOf(logName: string, index: number): string {
  return hashHex(`${logName}/${index}`);
}

export function encodeLog(log: NavsimLog): string {
  return `${JSON.stringify({ log_name: log.logName, tokens: log.tokens })}\n`;
}

/** Every log of a split folder, like SceneLoader: a missing folder raises, a bad file fails to unpickle. */
export function readLogs(fs: ContainerFs, logDir: string): NavsimLog[] {
  return fs
    .listDir(logDir)
    .filter((name) => name.endsWith('.pkl'))
    .map((name) => {
      const file = path.posix.join(logDir, name);
      let parsed: { log_name?: unknown; tokens?: unknown };
      try {
        parsed = JSON.parse(fs.readText(file)) as typeof parsed;
      } catch (error) {
        if (error instanceof PythonError) throw error;
        throw new PythonError('_pickle.UnpicklingError', `invalid load key, '${fs.readText(file).slice(0, 1)}'.`);
      }
      const tokens = Array.isArray(parsed.tokens) ? parsed.tokens.map(String) : [];
      return { logName: typeof parsed.log_name === 'string' ? parsed.log_name : path.posix.basename(name, '.pkl'), tokens };
    });
}

/** Front camera image of a token: what the feature cache feeds the VLM. */
export function frontCameraPath(sensorBlobsDir: string, logName: string, token: string): string {
  return `${sensorBlobsDir}/${logName}/CAM_F0/${token}.jpg`;
}
