/**
 * `recogdrive local` (npm start / npm run demo): the whole pipeline on this machine. Starts
 * Temporal with its Web UI and a worker, seeds the small dataset, runs one pipeline on the
 * embedded default, prints the UI address, live stage states and the run summary.
 */
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { PortInUse } from '../infra/local/dev-server.ts';
import { defaultRunId } from '../pipeline/naming.ts';
import type { StageName } from '../pipeline/stages.ts';
import type { RunStatus, RunSummary } from '../pipeline/status.ts';
import { runStatusQuery } from '../workflows/messages.ts';
import { formatSummary } from './format.ts';
import { localPipelineInput, seedDataset } from './local-input.ts';
import { startLocalStack } from './local-stack.ts';

export interface LocalRunOptions {
  demo: boolean;
  dataDir: string;
  port?: number;
  uiPort?: number;
  /** Faults to inject into simulated stages (to see failure handling). */
  faults?: Partial<Record<StageName, 'crash' | 'hang' | 'oom' | 'partial'>>;
}

export async function runLocal(options: LocalRunOptions): Promise<boolean> {
  // The worker's lifecycle lines would drown the run's own output; warnings still show.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const say = (line: string) => console.log(`[recogdrive] ${line}`);
  const interrupted = new Promise<'interrupted'>((resolve) => {
    process.once('SIGINT', () => resolve('interrupted'));
    process.once('SIGTERM', () => resolve('interrupted'));
  });
  say(`starting Temporal dev server (data in ${options.dataDir})`);
  const stack = await startLocalStack({
    dataDir: options.dataDir,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.uiPort === undefined ? {} : { uiPort: options.uiPort }),
    persist: true,
    log: say,
  }).catch((error: Error) => {
    if (error instanceof PortInUse) throw new Error(`${error.message}: stop it or pass --port/--ui-port`, { cause: error });
    throw error;
  });
  let succeeded = false;
  try {
    say(`Temporal Web UI: ${stack.server.uiUrl}`);
    const dataset = await seedDataset(join(options.dataDir, 'dataset', 'recogdrive'));
    const simulate = Object.fromEntries(Object.entries(options.faults ?? {}).map(([stage, kind]) => [stage, { fault: { kind } }]));
    const input = localPipelineInput(options.dataDir, dataset, { simulate });
    const runId = defaultRunId(input.experiment, new Date());
    const handle = await stack.client.workflow.start('recogdrivePipeline', {
      workflowId: runId,
      taskQueue: stack.taskQueue,
      args: [input],
    });
    say(`run ${runId}: ${stack.server.uiUrl}/namespaces/${stack.server.namespace}/workflows/${encodeURIComponent(runId)}`);
    const stopWatching = watchStages(() => handle.query(runStatusQuery), say);
    const outcome = await Promise.race([
      handle.result().then(
        (summary) => ({ summary: summary as RunSummary }),
        (error: unknown) => ({ error }),
      ),
      interrupted,
    ]);
    await stopWatching();
    if (outcome === 'interrupted') {
      say(`interrupted: run ${runId} is kept in ${options.dataDir}/temporal and resumes when the stack starts again`);
      return false;
    }
    if ('summary' in outcome) {
      succeeded = true;
      console.log(formatSummary(outcome.summary));
    } else {
      const error = outcome.error;
      say(`run ${runId} failed: ${error instanceof WorkflowFailedError ? (error.cause?.message ?? error.message) : String(error)}`);
    }
    if (!options.demo) {
      say(`stack stays up: Temporal at ${stack.server.address}, UI ${stack.server.uiUrl}. Ctrl-C to stop.`);
      await interrupted;
    }
  } finally {
    await stack.stop();
  }
  return succeeded;
}

/**
 * Prints each stage's state change while the run goes. One query at a time, and stopping waits
 * for the one in flight: the client retries a query on a timer, and a retry that fires after the
 * connection closed throws "Channel has been shut down" out of the timer, killing the process.
 */
function watchStages(query: () => Promise<RunStatus>, say: (line: string) => void): () => Promise<void> {
  const last = new Map<string, string>();
  let inFlight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = query()
      .then((status) => {
        for (const s of status.stages) {
          const text = `${s.state}${s.phase ? ` (${s.phase})` : ''}`;
          if (last.get(s.stage) !== text) {
            last.set(s.stage, text);
            say(`${s.stage.padEnd(13)} ${text}${s.attempt > 1 ? ` attempt ${s.attempt}` : ''}`);
          }
        }
      })
      .catch(() => {})
      .finally(() => {
        inFlight = undefined;
      });
  }, 500);
  return async () => {
    clearInterval(timer);
    await inFlight;
  };
}
