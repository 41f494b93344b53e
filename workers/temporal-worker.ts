/** Builds the Temporal worker that runs the pipeline workflows and their activities. */
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { join } from 'node:path';
import { createActivities, type ActivityDependencies } from '../activities/index.ts';
import { PROJECT_ROOT } from './project-root.ts';

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

export interface RecogdriveWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  backend: ActivityDependencies;
  /** A prebuilt workflow bundle (tests build one per process); bundled from source when omitted. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Extra worker options (identity, concurrency limits). */
  options?: Partial<WorkerOptions>;
}

export async function createRecogdriveWorker(opts: RecogdriveWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.workflowBundle === undefined ? { workflowsPath: WORKFLOWS_PATH } : { workflowBundle: opts.workflowBundle }),
    activities: createActivities(opts.backend),
    // Bounded workflow cache: every cached run keeps its bundle context in memory.
    maxCachedWorkflows: 200,
    // Give a watcher time to return cleanly on deploy; a killed one is re-attached by its retry anyway.
    shutdownGraceTime: '10 seconds',
    ...opts.options,
  });
}
