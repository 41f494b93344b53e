/**
 * The Temporal side of the chaos suite: a real dev server whose history lives in a SQLite file
 * (so it can be stopped and started again at the same address), a worker in a child process of
 * its own (so it can be SIGKILLed) that a supervisor restarts when it exits unexpectedly, as a
 * service manager would, and a client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { DevServer, freePort } from '../../infra/local/dev-server.ts';
import { ensureTemporalCli } from '../../infra/local/temporal-cli.ts';
import { workflowBundle } from '../helpers/local-env.ts';

const WORKER_MAIN = new URL('./worker-main.ts', import.meta.url).pathname;

export interface ChaosStack {
  client: Client;
  taskQueue: string;
  /** SIGKILLs the worker process and starts a new one (the old one's activities are left to their timeouts). */
  killWorker(): Promise<void>;
  /** Stops the dev server (SIGTERM; its SQLite file stays). */
  stopServer(): Promise<void>;
  /** Starts the dev server again at the same address on the same database. */
  startServer(): Promise<void>;
  /** Worker process exits the supervisor saw (killWorker's own excluded). */
  unexpectedExits(): number;
  /** The error line each unexpected exit printed last (if any), oldest first. */
  crashReasons(): readonly string[];
  close(): Promise<void>;
}

export interface ChaosStackOptions {
  dir: string;
  /** The worker's environment (SSH key, known hosts, deadlines, GCS endpoint...). */
  workerEnv: NodeJS.ProcessEnv;
}

export async function startChaosStack(options: ChaosStackOptions): Promise<ChaosStack> {
  await mkdir(join(options.dir, 'logs'), { recursive: true });
  const [cli, bundle] = await Promise.all([ensureTemporalCli(), workflowBundle()]);
  const bundleFile = join(options.dir, 'workflow-bundle.js');
  await writeFile(bundleFile, bundle.code);
  const port = await freePort();
  const serverOptions = { cli, port, uiPort: false as const, dbFile: join(options.dir, 'temporal', 'dev.db'), logFile: join(options.dir, 'logs', 'temporal-server.log') };
  let server: DevServer | undefined = await DevServer.start(serverOptions);
  const address = server.address;
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: server.namespace });
  const taskQueue = 'chaos';
  const workerLog: WriteStream = createWriteStream(join(options.dir, 'logs', 'worker.log'), { flags: 'a' });

  let worker: ChildProcess | undefined;
  let closing = false;
  let unexpected = 0;
  const reasons: string[] = [];
  const deliberate = new WeakSet<ChildProcess>();
  const startWorker = (): void => {
    const child = spawn(process.execPath, [WORKER_MAIN], {
      env: {
        ...options.workerEnv,
        TEMPORAL_ADDRESS: address,
        RECOGDRIVE_TASK_QUEUE: taskQueue,
        CHAOS_WORKFLOW_BUNDLE: bundleFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(workerLog, { end: false });
    child.stderr!.pipe(workerLog, { end: false });
    let tail = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.once('exit', (code, signal) => {
      workerLog.write(`--- worker ${child.pid} exited (${code ?? signal})\n`);
      if (closing || deliberate.has(child)) return;
      // Restarted as a service manager would (a worker can give up while the server is down).
      unexpected++;
      reasons.push(tail.split('\n').find((line) => /^\w*Error\b/.test(line)) ?? `exit ${code ?? signal}`);
      setTimeout(() => {
        if (!closing && worker === child) startWorker();
      }, 1000);
    });
    worker = child;
  };
  const stopChild = async (child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    deliberate.add(child);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  startWorker();

  return {
    client,
    taskQueue,
    async killWorker() {
      await stopChild(worker, 'SIGKILL');
      startWorker();
    },
    async stopServer() {
      await server?.stop();
      server = undefined;
    },
    async startServer() {
      if (server !== undefined) return;
      // The port was just released: a few tries while the kernel lets go of it.
      for (let attempt = 1; ; attempt++) {
        try {
          server = await DevServer.start(serverOptions);
          return;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(1000);
        }
      }
    },
    unexpectedExits: () => unexpected,
    crashReasons: () => [...reasons],
    async close() {
      closing = true;
      await stopChild(worker, 'SIGTERM');
      await connection.close();
      await server?.stop();
      workerLog.end();
    },
  };
}
