/**
 * What the wrapper reads from its environment (names in pipeline/markers.ts WRAPPER_ENV): set by
 * the launch spec (stage, output folder, output check) and, per attempt and worker, by the executor.
 */
import type { OutputCheck } from '../../pipeline/contracts/types.ts';
import { WRAPPER_ENV } from '../../pipeline/markers.ts';
import { parseOutputCheck } from './output-check.ts';

export const DEFAULT_PROGRESS_INTERVAL_MS = 30_000;

export interface WrapperConfig {
  stage: string;
  attempt: number;
  /** Index of this container's worker in the slice; only worker 0 writes markers. */
  worker: number;
  /** Absolute path of the stage's output folder as this process sees it. */
  outputDir: string;
  outputCheck: OutputCheck;
  progressIntervalMs: number;
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
  const checkText = required(WRAPPER_ENV.outputCheck);
  const parsed = checkText === undefined ? undefined : parseOutputCheck(checkText);
  if (parsed !== undefined && 'problem' in parsed) problems.push(`${WRAPPER_ENV.outputCheck} ${parsed.problem}`);
  const progressIntervalMs = integer(WRAPPER_ENV.progressInterval, env[WRAPPER_ENV.progressInterval] ?? String(DEFAULT_PROGRESS_INTERVAL_MS), 1);

  if (problems.length > 0) return { problems };
  return {
    config: {
      stage: stage!,
      attempt: attempt!,
      worker: worker!,
      outputDir: outputDir!.replace(/\/+$/, '') || '/',
      outputCheck: (parsed as { check: OutputCheck }).check,
      progressIntervalMs: progressIntervalMs!,
    },
  };
}
