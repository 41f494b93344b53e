/**
 * What the wrapper reads from its environment (names in pipeline/markers.ts WRAPPER_ENV): set by
 * the launch spec (stage, output folder, output check) and, per attempt and worker, by the executor.
 */
import type { OutputCheck } from '../../pipeline/contracts/types.ts';
import { WRAPPER_ENV, type MarkerLocation } from '../../pipeline/markers.ts';
import { DEFAULT_GROWTH_INTERVAL_MS, GROWTH_INTERVAL_ENV } from '../../pipeline/output-growth.ts';
import { parseOutputCheck } from './output-check.ts';

export const DEFAULT_PROGRESS_INTERVAL_MS = 30_000;

export interface WrapperConfig {
  stage: string;
  attempt: number;
  /** Index of this container's worker in the slice; only worker 0 writes markers. */
  worker: number;
  /** Absolute path of the stage's output folder as this process sees it. */
  outputDir: string;
  /** Where this process writes the markers: a folder beside the outputs, or (old launch specs) inside them. */
  markers: MarkerLocation;
  outputCheck: OutputCheck;
  progressIntervalMs: number;
  /** Milliseconds between walks of the output folder for growth (at least; slow walks back off). */
  growthIntervalMs: number;
}

/** The configuration, or every problem with the environment (each naming its variable). */
export function readWrapperEnv(env: Readonly<Record<string, string | undefined>>): { config: WrapperConfig } | { problems: string[] } {
  const problems: string[] = [];
  const required = (name: string): string | undefined => {
    const value = env[name];
    if (value === undefined || value.trim() === '') problems.push(`${name} is not set`);
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const integer = (name: string, text: string | undefined, min: number): number | undefined => {
    if (text === undefined) return undefined;
    const value = /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min) {
      problems.push(`${name} must be an integer >= ${min} (got ${JSON.stringify(text)})`);
      return undefined;
    }
    return value;
  };

  const stage = required(WRAPPER_ENV.stage);
  if (stage !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(stage)) {
    problems.push(`${WRAPPER_ENV.stage} must be a stage name (letters, digits, _ and -; got ${JSON.stringify(stage)})`);
  }
  const attempt = integer(WRAPPER_ENV.attempt, required(WRAPPER_ENV.attempt), 1);
  const worker = integer(WRAPPER_ENV.worker, env[WRAPPER_ENV.worker] ?? '0', 0);
  const outputDir = required(WRAPPER_ENV.outputDir);
  if (outputDir !== undefined && !outputDir.startsWith('/')) {
    problems.push(`${WRAPPER_ENV.outputDir} must be an absolute path (got ${JSON.stringify(outputDir)})`);
  }
  const markerDir = env[WRAPPER_ENV.markerDir]?.trim() || undefined;
  if (markerDir !== undefined && !markerDir.startsWith('/')) {
    problems.push(`${WRAPPER_ENV.markerDir} must be an absolute path (got ${JSON.stringify(markerDir)})`);
  }
  const checkText = required(WRAPPER_ENV.outputCheck);
  const parsed = checkText === undefined ? undefined : parseOutputCheck(checkText);
  if (parsed !== undefined && 'problem' in parsed) problems.push(`${WRAPPER_ENV.outputCheck} ${parsed.problem}`);
  const progressIntervalMs = integer(WRAPPER_ENV.progressInterval, env[WRAPPER_ENV.progressInterval] ?? String(DEFAULT_PROGRESS_INTERVAL_MS), 1);
  const growthIntervalMs = integer(GROWTH_INTERVAL_ENV, env[GROWTH_INTERVAL_ENV] ?? String(DEFAULT_GROWTH_INTERVAL_MS), 1);

  if (problems.length > 0) return { problems };
  const outputRoot = trimSlashes(outputDir!);
  return {
    config: {
      stage: stage!,
      attempt: attempt!,
      worker: worker!,
      outputDir: outputRoot,
      markers: markerDir === undefined ? { layout: 'inside', uri: outputRoot } : { layout: 'beside', uri: trimSlashes(markerDir) },
      outputCheck: (parsed as { check: OutputCheck }).check,
      progressIntervalMs: progressIntervalMs!,
      growthIntervalMs: growthIntervalMs!,
    },
  };
}

function trimSlashes(path: string): string {
  return path.replace(/\/+$/, '') || '/';
}
