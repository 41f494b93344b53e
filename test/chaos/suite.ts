/**
 * The chaos suite: a test bed (2 SSH hosts), a Cloud Storage emulator, a Temporal dev server and a
 * worker process (stack.ts); undisturbed baseline runs; then scenarios, each one run of a small
 * pipeline with one fault injected at a defined moment (a stage phase from the run's status
 * query, or the first read of a phase from the storage proxy's log), checked by checks.ts.
 *
 * Timeouts are configurable through the environment (defaults: a few seconds, for CI):
 *   CHAOS_HEARTBEAT_TIMEOUT_S (3), CHAOS_SSH_CONNECT_DEADLINE_MS (6000),
 *   CHAOS_SSH_POLL_CONNECT_DEADLINE_MS (2000), CHAOS_STAGE_DURATION_MS (20000: longer than a lost host takes to notice),
 *   CHAOS_OUTAGE_MS (8000: server outages), CHAOS_STORAGE_OUTAGE_MS (20000), CHAOS_STALL_MS (60000: a silent host
 *   with its connections open), CHAOS_RUN_TIMEOUT_MS (180000),
 *   CHAOS_DIR (.data/chaos).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { besideMarkersUri } from '../../pipeline/markers.ts';
import { stageArtifactUri } from '../../pipeline/naming.ts';
import type { StageName } from '../../pipeline/stages.ts';
import type { RunStatus, RunSummary, StagePhase } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { localPipelineInput, seedDataset, type SeededDataset } from '../../workers/local-input.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { testbedWorkerEnv } from '../helpers/testbed-input.ts';
import { startTestbed, type Testbed } from '../testbed/testbed.ts';
import { checkRun, fingerprintsOf, type Fingerprints, type Outcome } from './checks.ts';
import { silenceHost, startChaosStorage, type ChaosStorage } from './faults.ts';
import { startChaosStack, type ChaosStack } from './stack.ts';

const numberEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
};

export const TIMING = {
  heartbeatTimeoutS: numberEnv('CHAOS_HEARTBEAT_TIMEOUT_S', 3),
  connectDeadlineMs: numberEnv('CHAOS_SSH_CONNECT_DEADLINE_MS', 6000),
  pollConnectDeadlineMs: numberEnv('CHAOS_SSH_POLL_CONNECT_DEADLINE_MS', 2000),
  stageDurationMs: numberEnv('CHAOS_STAGE_DURATION_MS', 20_000),
  outageMs: numberEnv('CHAOS_OUTAGE_MS', 8000),
  /** Longer than the storage client's own retries (a few seconds) ride out. */
  storageOutageMs: numberEnv('CHAOS_STORAGE_OUTAGE_MS', 20_000),
  /** Long enough for SSH keepalives (15 s x 3) to give up on a stalled connection. */
  stallMs: numberEnv('CHAOS_STALL_MS', 60_000),
  runTimeoutMs: numberEnv('CHAOS_RUN_TIMEOUT_MS', 180_000),
};

/** Two pipelines: Stage 1 on a 2-host slice (file:// artifacts), and the feature cache reading a provided Stage 1 from gs://. */
export type InputKind = 'ssh' | 'gcs';
const BUCKET = 'chaos';
const PROVIDED_STAGE1 = `gs://${BUCKET}/provided/stage1`;
const SLICES: Record<InputKind, Partial<Record<StageName, readonly number[]>>> = {
  ssh: { stage1: [0, 1] },
  gcs: { featureCache: [1] },
};

export interface ChaosWorld {
  bed: Testbed;
  stack: ChaosStack;
  storage: ChaosStorage;
  dataDir: string;
  artifactRoot: string;
  dataset: SeededDataset;
  baselines: Record<InputKind, Fingerprints>;
  input(kind: InputKind): unknown;
  close(): Promise<void>;
}

export interface ScenarioContext {
  world: ChaosWorld;
  /** The stage the fault aims at (the pipeline's only stage). */
  stage: StageName;
  /** Starts the run (the scenario may act before it: a storage outage from the start). */
  start(): Promise<WorkflowHandle>;
}

export interface Scenario {
  name: string;
  input: InputKind;
  expect: 'succeeded' | 'failed-infra';
  /** What the fault is and when it strikes (for the table). */
  fault: string;
  /** Starts the run (ctx.start) and injects the fault; returns once the fault is healed. */
  inject(ctx: ScenarioContext): Promise<void>;
}

/** Polls the run's status until `predicate` holds (queries fail while the server is down: keep asking). */
async function waitForStatus(handle: WorkflowHandle, predicate: (status: RunStatus) => boolean, timeoutMs: number): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await handle.query(runStatusQuery).catch(() => undefined);
    if (status !== undefined && predicate(status)) return status;
    await sleep(100);
  }
  throw new Error(`status did not change within ${timeoutMs} ms`);
}

/** Polls the run's status until `stage` is in one of `phases` (status queries fail while the server is down: keep asking). */
export async function waitForPhase(handle: WorkflowHandle, stage: StageName, phases: readonly StagePhase[], timeoutMs = 60_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(runStatusQuery).catch(() => last);
    const entry = last?.stages.find((s) => s.stage === stage);
    if (entry?.phase !== undefined && phases.includes(entry.phase)) return last!;
    if (last !== undefined && last.state !== 'running') break;
    await sleep(50);
  }
  throw new Error(`${stage} never reached ${phases.join('/')}; last: ${JSON.stringify(last?.stages.map((s) => [s.stage, s.state, s.phase, s.attempt]))}`);
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'worker-kill-running',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'SIGKILL the worker process while Stage 1 runs; a new one starts',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['running']);
      await ctx.world.stack.killWorker();
    },
  },
  {
    name: 'worker-kill-launching',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'SIGKILL the worker process while Stage 1 launches; a new one starts',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['launching']);
      await ctx.world.stack.killWorker();
    },
  },
  {
    name: 'server-stop-running',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'stop the Temporal server while Stage 1 runs, start it again after CHAOS_OUTAGE_MS',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['running']);
      await ctx.world.stack.stopServer();
      await sleep(TIMING.outageMs);
      await ctx.world.stack.startServer();
    },
  },
  {
    name: 'ssh-lost-launch',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'host 1 of the slice stops answering SSH as Stage 1 launches (connections cut), past the heartbeat timeout and the connect deadline',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['acquiring', 'launching']);
      const outage = silenceHost(ctx.world.bed, 1, 'cut');
      try {
        await sleep(Math.max(3 * TIMING.heartbeatTimeoutS * 1000, TIMING.connectDeadlineMs + 2000));
      } finally {
        outage.restore();
      }
    },
  },
  {
    name: 'ssh-lost-running',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'host 1 of the slice stops answering SSH while Stage 1 runs (connections cut), past the poll connect deadline (the host is lost), then answers again',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['running']);
      const outage = silenceHost(ctx.world.bed, 1, 'cut');
      try {
        // Silent until the orchestrator gives the attempt up (a later attempt or the stage's end), at most a while.
        const limit = 6 * TIMING.pollConnectDeadlineMs + 15_000;
        const status = await waitForStatus(handle, (s) => {
          const entry = s.stages.find((x) => x.stage === ctx.stage);
          return entry !== undefined && (entry.attempt > 1 || entry.state !== 'running');
        }, limit).catch(() => undefined);
        if (status === undefined) throw new Error(`host 1 was silent for ${limit} ms and the attempt was not given up`);
      } finally {
        outage.restore();
      }
    },
  },
  {
    name: 'ssh-stalled-running',
    input: 'ssh',
    expect: 'succeeded',
    fault: 'host 1 of the slice goes silent while Stage 1 runs with its connections open (they stall) for CHAOS_STALL_MS, then answers again',
    async inject(ctx) {
      const handle = await ctx.start();
      await waitForPhase(handle, ctx.stage, ['running']);
      const outage = silenceHost(ctx.world.bed, 1, 'stall');
      try {
        await sleep(TIMING.stallMs);
      } finally {
        outage.restore();
      }
    },
  },
  {
    name: 'storage-down-lookup',
    input: 'gcs',
    expect: 'succeeded',
    fault: 'the storage emulator is down when the run looks up the provided Stage 1 lineage, up again after CHAOS_STORAGE_OUTAGE_MS',
    async inject(ctx) {
      await ctx.world.storage.stop();
      try {
        await ctx.start();
        await sleep(TIMING.storageOutageMs);
      } finally {
        await ctx.world.storage.start();
      }
    },
  },
  {
    name: 'storage-down-verify',
    input: 'gcs',
    expect: 'succeeded',
    fault: 'the storage emulator stops at the first read of the provided Stage 1 markers (verification), up again after CHAOS_STORAGE_OUTAGE_MS',
    async inject(ctx) {
      const { storage } = ctx.world;
      storage.resetRequests();
      await ctx.start();
      const deadline = Date.now() + 60_000;
      const verifying = () => storage.requests().some((r) => /_recogdrive\/stage1\/(DONE\.json|MANIFEST\.tsv)/.test(decodeURIComponent(r)));
      while (!verifying()) {
        if (Date.now() > deadline) throw new Error('the run never read the provided markers');
        await sleep(10);
      }
      await ctx.world.storage.stop();
      try {
        await sleep(TIMING.storageOutageMs);
      } finally {
        await ctx.world.storage.start();
      }
    },
  },
  {
    name: 'storage-5xx-lookup',
    input: 'gcs',
    expect: 'succeeded',
    fault: 'the storage answers HTTP 503 to every request when the run looks up the provided Stage 1 lineage, for CHAOS_STORAGE_OUTAGE_MS',
    async inject(ctx) {
      ctx.world.storage.failWith(503);
      try {
        await ctx.start();
        await sleep(TIMING.storageOutageMs);
      } finally {
        ctx.world.storage.heal();
      }
    },
  },
];

/** The scenarios of the CI variant: one of each kind of fault, the shortest. */
export const SHORT_SCENARIOS = ['worker-kill-running', 'ssh-lost-launch', 'ssh-lost-running', 'storage-down-lookup'] as const;

function pipelineInput(world: Pick<ChaosWorld, 'dataDir' | 'dataset' | 'bed'>, kind: InputKind): unknown {
  const slices = SLICES[kind];
  const stages = Object.keys(slices) as StageName[];
  const base = localPipelineInput(world.dataDir, world.dataset, { stages, reuse: { policy: 'never' } }) as unknown as Record<string, Record<string, unknown>>;
  const input: Record<string, unknown> = {
    ...base,
    experiment: `chaos-${kind}`,
    images: { stage1: world.bed.images[0], unified: world.bed.images[0] },
    orchestration: { heartbeatTimeout: `${TIMING.heartbeatTimeoutS} seconds`, progressInterval: '1 second', pollInterval: '1 second' },
    ...(kind === 'gcs' ? { providedArtifacts: { stage1: PROVIDED_STAGE1 } } : {}),
  };
  for (const [stage, workers] of Object.entries(slices)) {
    input[stage] = {
      ...base[stage],
      compute: {
        backend: 'static',
        hosts: workers.map((i) => ({ address: world.bed.workers[i]!.address, port: world.bed.workers[i]!.port, user: world.bed.workers[i]!.user })),
      },
      env: { RECOGDRIVE_SIM_DURATION_MS: String(kind === 'ssh' ? TIMING.stageDurationMs : 1500) },
      maxAttempts: 3,
    };
  }
  return input;
}

async function outcomeOf(handle: WorkflowHandle, timeoutMs: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const result = await Promise.race([handle.result() as Promise<RunSummary>, timedOut]);
    if (result === 'timeout') {
      await handle.terminate('chaos suite: run timed out').catch(() => {});
      return { state: 'timed out', message: `no result within ${timeoutMs} ms` };
    }
    const attempts: Partial<Record<StageName, number>> = {};
    const fingerprints: Partial<Record<StageName, string>> = {};
    for (const s of result.stages) {
      if (s.attempts !== undefined) attempts[s.stage] = s.attempts;
      if (s.fingerprint !== undefined) fingerprints[s.stage] = s.fingerprint;
    }
    return { state: 'succeeded', attempts, fingerprints };
  } catch (error) {
    if (error instanceof WorkflowFailedError) {
      const cause = error.cause;
      const detail = cause instanceof ApplicationFailure ? (cause.details?.[0] as { type?: string } | undefined) : undefined;
      return { state: 'failed', stageType: detail?.type, message: cause?.message ?? error.message };
    }
    return { state: 'failed', stageType: undefined, message: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Starts everything, runs the two baselines, and seeds the provided Stage 1 into the bucket from the first. */
export async function startChaosWorld(): Promise<ChaosWorld> {
  const dir = path.resolve(process.env.CHAOS_DIR ?? path.join(PROJECT_ROOT, '.data', 'chaos'));
  const dataDir = path.join(dir, 'data');
  fs.rmSync(dataDir, { recursive: true, force: true });
  for (const folder of ['temporal', 'seed']) fs.rmSync(path.join(dir, folder), { recursive: true, force: true });
  const seedDir = path.join(dir, 'seed');
  fs.mkdirSync(seedDir, { recursive: true });
  const [bed, dataset, storage] = await Promise.all([
    startTestbed({ workers: 2, dir: path.join(dir, 'bed'), logCreates: true }),
    seedDataset(path.join(dataDir, 'dataset', 'recogdrive')),
    startChaosStorage(dir, seedDir),
  ]);
  const stack = await startChaosStack({
    dir,
    workerEnv: {
      ...testbedWorkerEnv(bed),
      RECOGDRIVE_DATA_DIR: dataDir,
      RECOGDRIVE_SSH_CONNECT_DEADLINE_MS: String(TIMING.connectDeadlineMs),
      RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS: String(TIMING.pollConnectDeadlineMs),
      RECOGDRIVE_GCS_ENDPOINT: storage.endpoint,
      RECOGDRIVE_ARTIFACT_MOUNT_ROOT: storage.mountRoot,
    },
  });
  const artifactRoot = `file://${path.join(dataDir, 'artifacts')}`;
  const partial = { bed, dataDir, dataset };
  const world: ChaosWorld = {
    bed,
    stack,
    storage,
    dataDir,
    artifactRoot,
    dataset,
    baselines: { ssh: { planned: {}, recorded: {} }, gcs: { planned: {}, recorded: {} } },
    input: (kind) => pipelineInput(partial, kind),
    async close() {
      await stack.close();
      await storage.close();
      await bed.stop();
    },
  };
  try {
    world.baselines.ssh = await baseline(world, 'ssh');
    // The provided Stage 1: the baseline's output and its markers (with its lineage record), in the bucket.
    const output = stageArtifactUri(artifactRoot, 'chaos-baseline-ssh', 'stage1').slice('file://'.length);
    const markers = besideMarkersUri(stageArtifactUri(artifactRoot, 'chaos-baseline-ssh', 'stage1'))!.slice('file://'.length);
    fs.cpSync(output, path.join(seedDir, BUCKET, 'provided', 'stage1'), { recursive: true });
    fs.cpSync(markers, path.join(seedDir, BUCKET, 'provided', '_recogdrive', 'stage1'), { recursive: true });
    await storage.stop();
    await storage.start();
    world.baselines.gcs = await baseline(world, 'gcs');
  } catch (error) {
    await world.close();
    throw error;
  }
  return world;
}

async function baseline(world: ChaosWorld, kind: InputKind): Promise<Fingerprints> {
  const runId = `chaos-baseline-${kind}`;
  const handle = await world.stack.client.workflow.start('recogdrivePipeline', { workflowId: runId, taskQueue: world.stack.taskQueue, args: [world.input(kind)] });
  const outcome = await outcomeOf(handle, TIMING.runTimeoutMs);
  if (outcome.state !== 'succeeded') throw new Error(`the undisturbed ${kind} run did not succeed: ${JSON.stringify(outcome)}`);
  const fingerprints = fingerprintsOf(world.artifactRoot, runId, Object.keys(SLICES[kind]) as StageName[]);
  if (Object.keys(fingerprints.planned).length === 0) throw new Error(`the undisturbed ${kind} run left no lineage run record`);
  return fingerprints;
}

/** What is judged after every run: the end state, the fault as planned, the worker process alive, and checks.ts's four. */
export const CHECKS = ['end state', 'injection', 'worker', 'creates', 'leftovers', 'verdicts', 'fingerprints'] as const;

export interface ScenarioResult {
  scenario: string;
  repeat: number;
  runId: string;
  expect: Scenario['expect'];
  outcome: Outcome;
  problems: Record<(typeof CHECKS)[number], string[]>;
  ms: number;
}

export async function runScenario(world: ChaosWorld, scenario: Scenario, repeat = 1): Promise<ScenarioResult> {
  const started = Date.now();
  const runId = `chaos-${scenario.name}-${repeat}`;
  const stage = Object.keys(SLICES[scenario.input])[0] as StageName;
  let handle: WorkflowHandle | undefined;
  const start = async (): Promise<WorkflowHandle> => {
    handle = await world.stack.client.workflow.start('recogdrivePipeline', {
      workflowId: runId,
      taskQueue: world.stack.taskQueue,
      args: [world.input(scenario.input)],
    });
    return handle;
  };
  const injection: string[] = [];
  const exitsBefore = world.stack.unexpectedExits();
  try {
    await scenario.inject({ world, stage, start });
  } catch (error) {
    injection.push(`fault not injected as planned: ${(error as Error).message}`);
  }
  // Whatever happened, the world is whole again before the run is judged.
  await world.stack.startServer();
  await world.storage.start();
  world.storage.heal();
  const outcome: Outcome = handle === undefined ? { state: 'failed', stageType: undefined, message: 'never started' } : await outcomeOf(handle, TIMING.runTimeoutMs);
  const endState: string[] = [];
  if (scenario.expect === 'succeeded' && outcome.state !== 'succeeded') endState.push(`expected success, got ${outcome.state}: ${'message' in outcome ? outcome.message : ''} ${'stageType' in outcome ? `(${outcome.stageType})` : ''}`);
  if (scenario.expect === 'failed-infra' && (outcome.state !== 'failed' || outcome.stageType !== 'StageInfrastructureError')) {
    endState.push(`expected an infrastructure failure, got ${outcome.state}${'stageType' in outcome ? ` (${outcome.stageType})` : ''}`);
  }
  const checks = await checkRun({ bed: world.bed, client: world.stack.client, artifactRoot: world.artifactRoot, runId, slices: SLICES[scenario.input], outcome, baseline: world.baselines[scenario.input] });
  const crashes = world.stack.unexpectedExits() - exitsBefore;
  const worker = crashes === 0 ? [] : [`the worker process died on its own ${crashes} time(s): ${world.stack.crashReasons().slice(-crashes).join(' | ')}`];
  // A later scenario must not start on this one's leftovers.
  await removeLeftovers(world.bed);
  return { scenario: scenario.name, repeat, runId, expect: scenario.expect, outcome, problems: { 'end state': endState, injection, worker, ...checks }, ms: Date.now() - started };
}

async function removeLeftovers(bed: Testbed): Promise<void> {
  for (let w = 0; w < bed.workers.length; w++) await bed.docker(w, ['rm', '--all', '--force', '--time', '0']);
}

/** One line per check per scenario: ok or the problems. */
export function formatResults(results: readonly ScenarioResult[]): string {
  const columns = CHECKS;
  const header = ['scenario', 'rep', 'outcome', ...columns, 'seconds'];
  const rows = results.map((r) => [
    r.scenario,
    String(r.repeat),
    r.outcome.state === 'succeeded' ? `succeeded (attempts ${Object.values(r.outcome.attempts).join(',')})` : `${r.outcome.state}${'stageType' in r.outcome && r.outcome.stageType !== undefined ? ` ${r.outcome.stageType}` : ''}`,
    ...columns.map((c) => (r.problems[c].length === 0 ? 'ok' : `FAIL(${r.problems[c].length})`)),
    (r.ms / 1000).toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const details = results.flatMap((r) => columns.flatMap((c) => r.problems[c].map((p) => `  ${r.scenario}#${r.repeat} ${c}: ${p}`)));
  return [line(header), ...rows.map(line), ...(details.length > 0 ? ['', 'problems:', ...details] : [])].join('\n');
}
