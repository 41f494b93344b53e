/**
 * The embedded default's pipeline input: every stage on the local backend (the stage
 * simulator), artifacts under the data folder, and a small seeded dataset standing in for the
 * NAVSIM checkout that a TPU VM mounts at /recogdrive.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PipelineInputRaw } from '../pipeline/input.ts';
import { STAGES, type StageName } from '../pipeline/stages.ts';
import { UPSTREAM_FIXES, type UpstreamFix } from '../pipeline/upstream.ts';
import { SIMULATOR_MAIN } from './local-backend.ts';

const run = promisify(execFile);

export interface SeededDataset {
  dir: string;
  /** Tokens of the standard train logs (Stage 1's QA data, Stage 2/3's training set). */
  trainTokens: number;
  /** Tokens of navtrain's validation logs (Lightning's validation set). */
  valTokens: number;
  /** Every navtrain token: what the feature and metric caches hold. */
  navtrainTokens: number;
  testTokens: number;
  stage1Samples: number;
}

/**
 * Writes (or rewrites) the scaled-down dataset checkout; idempotent. `fixes`: the upstream defects
 * the simulated checkout fixes (default all of them, matching localPipelineInput's upstreamFixes).
 */
export async function seedDataset(
  dir: string,
  size: { logs?: number; tokensPerLog?: number; valLogs?: number; testLogs?: number; fixes?: readonly UpstreamFix[] } = {},
): Promise<SeededDataset> {
  const args = [SIMULATOR_MAIN, 'seed', '--dir', dir, '--fixes', size.fixes === undefined ? 'all' : size.fixes.join(',') || 'none'];
  if (size.logs !== undefined) args.push('--logs', String(size.logs));
  if (size.tokensPerLog !== undefined) args.push('--tokens-per-log', String(size.tokensPerLog));
  if (size.valLogs !== undefined) args.push('--val-logs', String(size.valLogs));
  if (size.testLogs !== undefined) args.push('--test-logs', String(size.testLogs));
  const { stdout } = await run(process.execPath, args);
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as Omit<SeededDataset, 'dir'>;
  return { dir, ...summary };
}

type Simulate = { durationMs?: number; gpus?: number; fault?: { kind: 'crash' | 'hang' | 'oom' | 'partial'; at?: number; attempts?: number[] } };

export interface LocalInputOptions {
  experiment?: string;
  stages?: StageName[];
  /** Simulated work time of every stage, unless `simulate` says otherwise for a stage. */
  durationMs?: number;
  simulate?: Partial<Record<StageName, Simulate>>;
  /** Extra settings merged into each stage's section (e.g. hangTimeout, maxAttempts). */
  stageSettings?: Partial<Record<StageName, Record<string, unknown>>>;
  /** Reuse of verified outputs and reruns (default: reuse any verified output with the same fingerprint). */
  reuse?: PipelineInputRaw['reuse'];
  /** Upstream defects the seeded checkout fixes (default: all of them, as `seedDataset` seeds it). */
  upstreamFixes?: UpstreamFix[];
}

/** GPUs the local machine plays for the stages whose default trainer is the upstream GPU script (Stage 3, evaluation). */
export const LOCAL_GPUS = 2;
const GPU_STAGES: readonly StageName[] = ['stage3', 'eval'];

export function localPipelineInput(dataDir: string, dataset: SeededDataset, options: LocalInputOptions = {}): PipelineInputRaw {
  const stageSection = (stage: StageName, extra: Record<string, unknown>) => ({
    ...extra,
    compute: {
      backend: 'local',
      simulate: { durationMs: options.durationMs ?? 1500, ...(GPU_STAGES.includes(stage) ? { gpus: LOCAL_GPUS } : {}), ...options.simulate?.[stage] },
    },
    ...options.stageSettings?.[stage],
  });
  const sections = Object.fromEntries(
    STAGES.map((stage) => {
      const extra: Record<string, unknown> =
        stage === 'featureCache' || stage === 'metricCache'
          ? { expectedTokens: dataset.navtrainTokens }
          : stage === 'eval'
            ? { expectedTokens: dataset.testTokens }
            : stage === 'stage3'
              ? { epochs: 2, batchSize: 4 }
              : stage === 'stage2'
                ? { batchSize: 4 }
                : {};
      return [stage, stageSection(stage, extra)];
    }),
  );
  return {
    experiment: options.experiment ?? 'local-demo',
    ...(options.stages === undefined ? {} : { stages: options.stages }),
    artifactRoot: `file://${join(dataDir, 'artifacts')}`,
    paths: { hostRepoDir: dataset.dir },
    ...(options.reuse === undefined ? {} : { reuse: options.reuse }),
    // The seeded checkout plays one that fixes every known upstream defect (docker/simulator/README.md).
    upstreamFixes: options.upstreamFixes ?? [...UPSTREAM_FIXES],
    orchestration: { heartbeatTimeout: '30 seconds', progressInterval: '1 second', pollInterval: '1 second' },
    ...sections,
  } as PipelineInputRaw;
}
