/**
 * Everything the embedded default needs on one machine: a Temporal dev server (with its Web
 * UI), a worker with the local backend, and a client. Used by `npm start`, `npm run demo`,
 * the tests and the benchmark.
 */
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker, type WorkerOptions } from '@temporalio/worker';
import { DevServer } from '../infra/local/dev-server.ts';
import { ensureTemporalCli } from '../infra/local/temporal-cli.ts';
import { DEFAULT_TASK_QUEUE } from './config.ts';
import { createBackend } from './backend.ts';
import { createRecogdriveWorker } from './temporal-worker.ts';

export interface LocalStackOptions {
  dataDir: string;
  /** Fixed ports (npm start uses Temporal's defaults so the `temporal` CLI finds the server); free ports when omitted. */
  port?: number;
  uiPort?: number | false;
  /** Keep workflow history in <dataDir>/temporal/dev.db across restarts. */
  persist?: boolean;
  taskQueue?: string;
  workflowBundle?: WorkerOptions['workflowBundle'];
  log?: (line: string) => void;
  /** Worker configuration (SSH key, known hosts...); the process environment when omitted. */
  env?: NodeJS.ProcessEnv;
}

export interface LocalStack {
  server: DevServer;
  client: Client;
  worker: Worker;
  taskQueue: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const cli = await ensureTemporalCli(log);
  const server = await DevServer.start({
    cli,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.uiPort === undefined ? {} : { uiPort: options.uiPort }),
    ...(options.persist ? { dbFile: join(options.dataDir, 'temporal', 'dev.db') } : {}),
    logFile: join(options.dataDir, 'logs', 'temporal-server.log'),
  });
  const taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  try {
    const backend = await createBackend(options.env ?? process.env, options.dataDir);
    const nativeConnection = await NativeConnection.connect({ address: server.address });
    const worker = await createRecogdriveWorker({
      connection: nativeConnection,
      namespace: server.namespace,
      taskQueue,
      backend: backend.deps,
      ...(options.workflowBundle === undefined ? {} : { workflowBundle: options.workflowBundle }),
    });
    const running = worker.run();
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: server.namespace });
    return {
      server,
      client,
      worker,
      taskQueue,
      dataDir: options.dataDir,
      async stop() {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running.catch(() => {});
        backend.close();
        await nativeConnection.close();
        await connection.close();
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
