/**
 * A real Temporal dev server + worker with the embedded default backend, for one test file.
 * The workflow bundle is built once per process; each environment gets its own data folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { LocalComputeProvider } from '../../activities/compute/local.ts';
import type { RunStatus } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { localComputeRoot } from '../../workers/local-backend.ts';
import { localPipelineInput, seedDataset, type LocalInputOptions, type SeededDataset } from '../../workers/local-input.ts';
import { startLocalStack, type LocalStack } from '../../workers/local-stack.ts';
import { WORKFLOWS_PATH } from '../../workers/temporal-worker.ts';

// Worker lifecycle lines and the SDK's warnings about the failures tests provoke would bury test output.
Runtime.install({ logger: new DefaultLogger('ERROR') });

let bundle: Promise<{ code: string }> | undefined;

export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string, meta?: unknown) {
    console.error(message, meta);
  },
};

export interface TestEnv {
  stack: LocalStack;
  dataset: SeededDataset;
  dataDir: string;
  compute: LocalComputeProvider;
  /** The embedded default's input for this environment, with per-test options. */
  input(options?: LocalInputOptions): ReturnType<typeof localPipelineInput>;
  start(runId: string, input: unknown): Promise<WorkflowHandle>;
  close(): Promise<void>;
}

/** `env`: worker configuration, e.g. the SSH key and known_hosts of a test bed. */
export async function startTestEnv(options: { env?: NodeJS.ProcessEnv } = {}): Promise<TestEnv> {
  const dataDir = await mkdtemp(join(tmpdir(), 'recogdrive-test-'));
  const [stack, dataset] = await Promise.all([
    workflowBundle().then((workflowBundle) =>
      startLocalStack({ dataDir, uiPort: false, workflowBundle, ...(options.env === undefined ? {} : { env: options.env }) }),
    ),
    seedDataset(join(dataDir, 'dataset', 'recogdrive')),
  ]);
  return {
    stack,
    dataset,
    dataDir,
    compute: new LocalComputeProvider(localComputeRoot(dataDir)),
    // Tests of execution must execute: runs of one file share an artifact root, so reuse is opt-in here.
    input: (options) => localPipelineInput(dataDir, dataset, { reuse: { policy: 'never' }, ...options }),
    start: (runId, input) =>
      stack.client.workflow.start('recogdrivePipeline', { workflowId: runId, taskQueue: stack.taskQueue, args: [input] }),
    async close() {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls the run's status query until `predicate` holds (or fails after `timeoutMs`). */
export async function waitForStatus(
  handle: WorkflowHandle,
  predicate: (status: RunStatus) => boolean,
  timeoutMs = 60_000,
): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: RunStatus | undefined;
  while (Date.now() < deadline) {
    last = await handle.query(runStatusQuery);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`status never matched; last: ${JSON.stringify(last?.stages.map((s) => [s.stage, s.state, s.phase]))}`);
}

/** Waits until each of `stages` has its container running (phase "running"). */
export function waitUntilRunning(handle: WorkflowHandle, ...stages: string[]): Promise<RunStatus> {
  return waitForStatus(handle, (s) => stages.every((stage) => s.stages.find((x) => x.stage === stage)?.phase === 'running'));
}

/** True when some process of this machine has `text` in its command line (leak check for stage processes). */
export async function processesMentioning(text: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}
