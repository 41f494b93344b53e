/**
 * What the input schema alone lets through but no run should get: numbers and durations beyond
 * what makes sense (1e9 epochs, a timeout of 10^20 days, a 1 ms hang timeout), environment
 * names that make a loader or runtime run code (pipeline/env-policy.ts), override values that
 * read as options, and paths that are never sensible (`/`, `.` segments). Each refusal names the
 * field and the bound. Pure; run by parsePipelineInput (the workflow skips it for runs started
 * before it existed, so their histories replay).
 */
import { DAY_MS, formatDuration, HOUR_MS, MINUTE_MS, SECOND_MS } from './duration.ts';
import { envNameProblem } from './env-policy.ts';
import type { PipelineConfig } from './input.ts';
import { OPTION_STYLE_OVERRIDE_STAGES, optionLikeValueProblem } from './overrides.ts';
import { STAGES } from './stages.ts';

export interface LimitRefusal {
  path: string;
  message: string;
}

/** Upper bounds of counts, by what they count (the message says "at most <n> <what>"). */
export const COUNT_LIMITS = {
  epochs: 1000,
  batch: 4096,
  gradientAccumulationSteps: 1024,
  imageSize: 4096,
  dynamicPatches: 64,
  loggingSteps: 1_000_000,
  sequenceLength: 131_072,
  dataLoaderWorkers: 64,
  cacheWorkers: 4096,
  tokens: 10_000_000,
  envEntries: 64,
  /** Characters of any text in the input (env values are bounded lower by the schema). */
  textLength: 4096,
  /** Characters of a path or URI. */
  pathLength: 1024,
  staticHosts: 256,
  zones: 32,
} as const;

/** Bounds of durations, in milliseconds. */
export const DURATION_LIMITS = {
  timeout: { min: SECOND_MS, max: 30 * DAY_MS },
  /** On local and static machines tests and small runs use seconds; a cloud machine takes minutes to get going. */
  hangTimeout: { min: SECOND_MS, cloudMin: MINUTE_MS, max: 7 * DAY_MS },
  heartbeatTimeout: { min: SECOND_MS, max: HOUR_MS },
  progressInterval: { min: SECOND_MS, max: DAY_MS },
  pollInterval: { min: SECOND_MS, max: HOUR_MS },
  failoverBackoff: { min: SECOND_MS, max: DAY_MS },
  healthCheckInterval: { min: SECOND_MS, max: HOUR_MS },
} as const;

type Refuse = (path: string, message: string) => void;

function checkCount(refuse: Refuse, path: string, value: number | undefined, max: number, what: string): void {
  // Thousands grouped by hand: the same text in the workflow sandbox as anywhere else.
  if (value !== undefined && value > max) refuse(path, `at most ${String(max).replace(/\B(?=(\d{3})+$)/g, ',')} ${what}`);
}

function checkDuration(refuse: Refuse, path: string, ms: number, bounds: { min: number; max: number }, why = ''): void {
  if (ms < bounds.min) refuse(path, `at least ${formatDuration(bounds.min)}${why}`);
  else if (ms > bounds.max) refuse(path, `at most ${formatDuration(bounds.max)}`);
}

/** Why a worker-host path can never be sensible, or undefined. Lexical: `.` and empty segments, the file system root. */
export function hostPathShapeProblem(path: string): string | undefined {
  if (path === '/' || /^\/+$/.test(path)) return 'must not be the file system root';
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '.' || s === '..')) return 'must not contain "." or ".." segments';
  if (segments.slice(0, -1).some((s) => s === '')) return 'must not contain empty segments ("//")';
  return undefined;
}

function checkArtifactUri(refuse: Refuse, path: string, uri: string): void {
  const match = /^[a-z]+:\/\/(.*)$/.exec(uri);
  const rest = match?.[1] ?? uri;
  const problem = uri.startsWith('file://') ? hostPathShapeProblem(rest) : rest.split('/').some((s) => s === '.' || s === '..') ? 'must not contain "." or ".." segments' : undefined;
  if (problem !== undefined) refuse(path, problem);
}

/** Every string of a parsed input with its dotted path. */
function strings(value: unknown, path: readonly string[] = []): Array<[string, string]> {
  if (typeof value === 'string') return [[path.join('.'), value]];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => strings(inner, [...path, key]));
}

export function inputLimitRefusals(config: PipelineConfig): LimitRefusal[] {
  const refusals: LimitRefusal[] = [];
  const refuse: Refuse = (path, message) => refusals.push({ path, message });

  for (const [path, text] of strings(config)) {
    const pathLike = path === 'artifactRoot' || path.startsWith('providedArtifacts.') || path.startsWith('paths.');
    const max = pathLike ? COUNT_LIMITS.pathLength : COUNT_LIMITS.textLength;
    if (text.length > max) refuse(path, `at most ${max} characters`);
  }

  checkArtifactUri(refuse, 'artifactRoot', config.artifactRoot);
  for (const [stage, uri] of Object.entries(config.providedArtifacts)) if (uri !== undefined) checkArtifactUri(refuse, `providedArtifacts.${stage}`, uri);
  const repoProblem = hostPathShapeProblem(config.paths.hostRepoDir);
  if (repoProblem !== undefined) refuse('paths.hostRepoDir', repoProblem);

  const o = config.orchestration;
  checkDuration(refuse, 'orchestration.heartbeatTimeout', o.heartbeatTimeout, DURATION_LIMITS.heartbeatTimeout);
  checkDuration(refuse, 'orchestration.progressInterval', o.progressInterval, DURATION_LIMITS.progressInterval);
  checkDuration(refuse, 'orchestration.pollInterval', o.pollInterval, DURATION_LIMITS.pollInterval);

  for (const stage of STAGES) {
    const s = config[stage];
    const at = (field: string) => `${stage}.${field}`;
    const cloud = s.compute.backend === 'tpu-api' || s.compute.backend === 'compute-engine';
    checkDuration(refuse, at('timeout'), s.timeout, DURATION_LIMITS.timeout);
    const hang = DURATION_LIMITS.hangTimeout;
    checkDuration(refuse, at('hangTimeout'), s.hangTimeout, { min: cloud ? hang.cloudMin : hang.min, max: hang.max }, cloud ? ' on cloud compute' : '');

    const envNames = Object.keys(s.env);
    checkCount(refuse, at('env'), envNames.length, COUNT_LIMITS.envEntries, 'variables');
    for (const name of envNames) {
      const problem = envNameProblem(name);
      if (problem !== undefined) refuse(at(`env.${name}`), problem);
    }
    if (OPTION_STYLE_OVERRIDE_STAGES.includes(stage)) {
      for (const [key, value] of Object.entries(s.overrides)) {
        const problem = optionLikeValueProblem(value);
        if (problem !== undefined) refuse(at(`overrides.${key}`), problem);
      }
    }

    const compute = s.compute;
    if (compute.backend === 'static') checkCount(refuse, at('compute.hosts'), compute.hosts.length, COUNT_LIMITS.staticHosts, 'hosts');
    if (compute.backend === 'tpu-api' || compute.backend === 'compute-engine') {
      checkCount(refuse, at('compute.zones'), compute.zones.length, COUNT_LIMITS.zones, 'zones');
      const f = compute.failover;
      checkDuration(refuse, at('compute.failover.backoff'), f.backoff, DURATION_LIMITS.failoverBackoff);
      checkDuration(refuse, at('compute.failover.backoffMax'), f.backoffMax, DURATION_LIMITS.failoverBackoff);
      if (f.backoffMax < f.backoff) refuse(at('compute.failover.backoffMax'), `at least backoff (${formatDuration(f.backoff)})`);
      checkDuration(refuse, at('compute.failover.healthCheckInterval'), f.healthCheckInterval, DURATION_LIMITS.healthCheckInterval);
    }
  }

  const L = COUNT_LIMITS;
  const s1 = config.stage1;
  checkCount(refuse, 'stage1.epochs', s1.epochs, L.epochs, 'epochs');
  checkCount(refuse, 'stage1.perDeviceBatchSize', s1.perDeviceBatchSize, L.batch, 'samples per device');
  checkCount(refuse, 'stage1.gradientAccumulationSteps', s1.gradientAccumulationSteps, L.gradientAccumulationSteps, 'steps');
  checkCount(refuse, 'stage1.forceImageSize', s1.forceImageSize, L.imageSize, 'pixels');
  checkCount(refuse, 'stage1.maxDynamicPatch', s1.maxDynamicPatch, L.dynamicPatches, 'patches');
  checkCount(refuse, 'stage1.loggingSteps', s1.loggingSteps, L.loggingSteps, 'steps');
  checkCount(refuse, 'stage1.maxSeqLength', s1.maxSeqLength, L.sequenceLength, 'tokens');

  const fc = config.featureCache;
  checkCount(refuse, 'featureCache.batchSize', fc.batchSize, L.batch, 'samples');
  checkCount(refuse, 'featureCache.numWorkers', fc.numWorkers, L.dataLoaderWorkers, 'DataLoader workers');
  checkCount(refuse, 'featureCache.expectedTokens', fc.expectedTokens, L.tokens, 'tokens');

  for (const stage of ['stage2', 'stage3'] as const) {
    checkCount(refuse, `${stage}.epochs`, config[stage].epochs, L.epochs, 'epochs');
    checkCount(refuse, `${stage}.batchSize`, config[stage].batchSize, L.batch, 'samples');
    checkCount(refuse, `${stage}.numWorkers`, config[stage].numWorkers, L.dataLoaderWorkers, 'DataLoader workers');
  }

  checkCount(refuse, 'metricCache.maxWorkers', config.metricCache.maxWorkers, L.cacheWorkers, 'workers');
  checkCount(refuse, 'metricCache.expectedTokens', config.metricCache.expectedTokens, L.tokens, 'tokens');
  checkCount(refuse, 'eval.expectedTokens', config.eval.expectedTokens, L.tokens, 'tokens');
  checkCount(refuse, 'eval.maxFailedTokens', config.eval.maxFailedTokens, L.tokens, 'tokens');
  return refusals;
}
