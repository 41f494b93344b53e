/**
 * `seed --dir D`: a scaled-down ReCogDrive checkout with the raw data every stage reads, to be
 * mounted at /recogdrive. Besides the raw data it holds the evaluation split's caches, which
 * evaluation reads as provided data (this pipeline builds caches for the training split only).
 * Log names and scene tokens are REAL ones from upstream's split and scene-filter lists
 * (upstream/log-splits.ts), so the scripts' filters, which keep only listed logs and tokens as
 * upstream's do, keep them. navtrain holds standard train logs and (`--val-logs`, default 1)
 * validation logs, as upstream's navtrain does; Stage 1's QA data covers the train logs. `--fixes` says which known upstream defects the checkout fixes
 * (checkout.ts; default none: the public fork). Idempotent: the generated folders are replaced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { featureFile, metricCacheFile, targetFile, FEATURE_FILE, METRIC_CACHE_FILE, SCENARIO_TYPE, TARGET_FILE } from './cache-files.ts';
import { encodeLog, type NavsimLog } from './dataset.ts';
import { SimulatorError } from './errors.ts';
import { out } from './log.ts';
import { formatMetadataCsv, metadataCsvPath } from './metric-cache-index.ts';
import { CHECKOUT_FILE, parseFixes, PUBLIC_FORK, type Defect } from './checkout.ts';
import { SCENE_FILTERS, TRAIN_LOGS, VAL_LOGS } from './upstream/log-splits.ts';

/** Where the stages see the checkout: the metadata CSV holds absolute container paths. */
const REPO_MOUNT = '/recogdrive';
const MODEL_DIR = 'models/InternVL3-2B';
const DATA_ROOT = 'tests/dummy_data';
const MAPS_ROOT = 'tests/dummy_maps';
const MAP_VERSION = 'nuplan-maps-v1.0';
const EVAL_FEATURE_CACHE = 'data/navtest_cache';
const EVAL_METRIC_CACHE = 'data/navtest_metric_cache';
/** A minimal JPEG (SOI, APP0, EOI): the simulated VLM only checks that the image exists. */
const TINY_JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000ffd9', 'hex');

export interface SeedSummary {
  /** Tokens of the standard train logs (train_logs). */
  trainTokens: number;
  /** Tokens of the validation logs (val_logs) that navtrain also holds. */
  valTokens: number;
  /** Every navtrain token of the seed: train + val (what the feature and metric caches cover). */
  navtrainTokens: number;
  testTokens: number;
  stage1Samples: number;
}

export function runSeed(args: readonly string[]): number {
  const { values } = parseArgs({
    args: [...args],
    options: {
      dir: { type: 'string' },
      logs: { type: 'string', default: '3' },
      'tokens-per-log': { type: 'string', default: '4' },
      'val-logs': { type: 'string', default: '1' },
      'test-logs': { type: 'string', default: '2' },
      fixes: { type: 'string', default: 'none' },
    },
    strict: true,
  });
  if (values.dir === undefined) throw new SimulatorError('seed needs --dir <host directory>');
  const summary = seed(path.resolve(values.dir), {
    logs: count(values.logs, '--logs'),
    tokensPerLog: count(values['tokens-per-log'], '--tokens-per-log'),
    valLogs: count(values['val-logs'], '--val-logs'),
    testLogs: count(values['test-logs'], '--test-logs'),
    fixes: parseFixes(values.fixes ?? 'none'),
  });
  out(JSON.stringify(summary));
  return 0;
}

export interface SeedSize {
  logs: number;
  tokensPerLog: number;
  /** navtrain logs that are validation logs (val_logs): Lightning's validation reads them. */
  valLogs?: number;
  testLogs: number;
  fixes?: readonly Defect[];
}

export function seed(dir: string, size: SeedSize): SeedSummary {
  const navtrainTokens = SCENE_FILTERS.navtrain.tokens?.sample ?? [];
  const train = realLogs('train', TRAIN_LOGS.sample, navtrainTokens, size.logs, size.tokensPerLog);
  // navtrain also holds validation logs (upstream's val_logs ∩ navtrain); their tokens follow the train ones.
  const val = realLogs('val', VAL_LOGS.sample, navtrainTokens.slice(size.logs * size.tokensPerLog), size.valLogs ?? 0, size.tokensPerLog);
  const test = realLogs('test', SCENE_FILTERS.navtest.logNames?.sample ?? [], SCENE_FILTERS.navtest.tokens?.sample ?? [], size.testLogs, size.tokensPerLog);
  const write = (file: string, data: string | Uint8Array) => {
    const target = path.join(dir, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, data);
  };
  for (const generated of ['data/images', `${DATA_ROOT}/navsim_logs`, `${DATA_ROOT}/sensor_blobs`, EVAL_FEATURE_CACHE, EVAL_METRIC_CACHE]) {
    fs.rmSync(path.join(dir, generated), { recursive: true, force: true });
  }

  // What code the checkout stands for: the public fork, with the fixes this seed was asked for.
  write(CHECKOUT_FILE, json({ upstream: PUBLIC_FORK, fixes: [...(size.fixes ?? [])] }));

  // The base VLM, as an HF directory (the caching step loads it with from_pretrained).
  write(`${MODEL_DIR}/config.json`, json({
    architectures: ['InternVLChatModel'],
    model_type: 'internvl_chat',
    template: 'internvl2_5',
    downsample_ratio: 0.5,
    force_image_size: 448,
    llm_config: { architectures: ['Qwen2ForCausalLM'], hidden_size: 1536, num_hidden_layers: 28 },
    vision_config: { architectures: ['InternVisionModel'], image_size: 448, patch_size: 14 },
  }));
  write(`${MODEL_DIR}/tokenizer_config.json`, json({ tokenizer_class: 'Qwen2Tokenizer', model_max_length: 12288, padding_side: 'right' }));

  // Stage 1 data: one QA sample per training scene, in InternVL's meta + jsonl format.
  const samples = train.flatMap((log) => log.tokens.map((token) => ({ log, token })));
  const qa = samples.map(({ log, token }) => JSON.stringify({
    image: `${log.logName}/${token}.jpg`,
    conversations: [
      { from: 'human', value: '<image>\nYou are driving the ego vehicle. Predict the trajectory for the next 4 seconds.' },
      { from: 'gpt', value: `Trajectory: [${[1, 2, 3, 4].map((s) => `(${(s * 2.5).toFixed(2)}, 0.00)`).join(', ')}]` },
    ],
  }));
  for (const { log, token } of samples) write(`data/images/${log.logName}/${token}.jpg`, TINY_JPEG);
  write('data/navsim_qa.jsonl', qa.map((line) => `${line}\n`).join(''));
  write('data/meta.json', json({
    navsim: { root: 'data/images', annotation: 'data/navsim_qa.jsonl', data_augment: false, repeat_time: 1, length: samples.length },
  }));

  // Raw NAVSIM: logs and front-camera blobs of both splits, and the maps.
  for (const [folder, logs] of [['trainval', [...train, ...val]], ['test', test]] as const) {
    for (const log of logs) {
      write(`${DATA_ROOT}/navsim_logs/${folder}/${log.logName}.pkl`, encodeLog(log));
      for (const token of log.tokens) write(`${DATA_ROOT}/sensor_blobs/${folder}/${log.logName}/CAM_F0/${token}.jpg`, TINY_JPEG);
    }
  }
  // nuplan's maps DB reads <NUPLAN_MAPS_ROOT>/<version>.json; the map archive unpacks a folder of the same name.
  const mapIndex = json({ version: MAP_VERSION, available_locations: ['us-nv-las-vegas-strip'] });
  write(`${MAPS_ROOT}/${MAP_VERSION}.json`, mapIndex);
  write(`${MAPS_ROOT}/${MAP_VERSION}/${MAP_VERSION}.json`, mapIndex);

  // The evaluation split's provided caches: hidden states and metric cache with its metadata CSV.
  const metricFiles: string[] = [];
  for (const log of test) {
    for (const token of log.tokens) {
      write(`${EVAL_FEATURE_CACHE}/${log.logName}/${token}/${FEATURE_FILE}`, featureFile(token));
      write(`${EVAL_FEATURE_CACHE}/${log.logName}/${token}/${TARGET_FILE}`, targetFile(token));
      const pkl = `${EVAL_METRIC_CACHE}/${log.logName}/${SCENARIO_TYPE}/${token}/${METRIC_CACHE_FILE}`;
      write(pkl, metricCacheFile(token, log.logName));
      metricFiles.push(`${REPO_MOUNT}/${pkl}`);
    }
  }
  write(metadataCsvPath(EVAL_METRIC_CACHE, '0'), formatMetadataCsv(metricFiles));

  const testTokens = test.reduce((n, log) => n + log.tokens.length, 0);
  const valTokens = val.reduce((n, log) => n + log.tokens.length, 0);
  return { trainTokens: samples.length, valTokens, navtrainTokens: samples.length + valTokens, testTokens, stage1Samples: samples.length };
}

/**
 * Logs with real names and real scene tokens of a split's lists (samples of upstream's): the
 * scripts keep only scenes whose log and token those lists name, as upstream's SceneFilter does.
 * Which token sits in which log is made up (the lists do not say); only membership matters.
 */
function realLogs(split: string, names: readonly string[], tokens: readonly string[], logs: number, tokensPerLog: number): NavsimLog[] {
  if (logs > names.length || logs * tokensPerLog > tokens.length) {
    throw new SimulatorError(`the ${split} split has ${names.length} sample logs and ${tokens.length} sample tokens: ${logs} logs x ${tokensPerLog} tokens is too many`);
  }
  return names.slice(0, logs).map((logName, i) => ({ logName, tokens: tokens.slice(i * tokensPerLog, (i + 1) * tokensPerLog) }));
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function count(raw: string | undefined, flag: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new SimulatorError(`${flag} must be a non-negative integer`);
  return n;
}
