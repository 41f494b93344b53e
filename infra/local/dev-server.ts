/**
 * A Temporal dev server (`temporal server start-dev`) as a child process: SQLite persistence
 * when given a database file, the Web UI unless headless, free ports unless told otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes.ts';

export interface DevServerOptions {
  cli: string;
  ip?: string;
  /** gRPC port; a free one when omitted. */
  port?: number;
  /** Web UI port; a free one when omitted, no UI when false. */
  uiPort?: number | false;
  /** SQLite file; in-memory when omitted. */
  dbFile?: string;
  /** Where the server's own output goes; discarded when omitted. */
  logFile?: string;
  namespace?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

class ExitedWhileStarting extends Error {
  constructor(code: number, output: string) {
    super(`temporal server exited with code ${code} while starting${output === '' ? '' : `:\n${output}`}`);
  }
}

/** The last lines a server printed, for the error when it does not start. */
class OutputTail {
  private lines: string[] = [];

  add(chunk: Buffer): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== ''));
    this.lines = this.lines.slice(-15);
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** Fails when something already listens on ip:port: the readiness check would otherwise talk to it. */
async function assertPortFree(ip: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new PortInUse(`port ${port} on ${ip} is already in use (another Temporal server?)`) : error),
    );
    probe.listen(port, ip, () => probe.close(() => resolve()));
  });
}

export class PortInUse extends Error {}

export class DevServer {
  readonly address: string;
  readonly uiUrl: string | undefined;
  readonly namespace: string;
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess, address: string, uiUrl: string | undefined, namespace: string) {
    this.child = child;
    this.address = address;
    this.uiUrl = uiUrl;
    this.namespace = namespace;
  }

  /** Starts the server; with free ports chosen here, a port taken in the meantime means a retry on others. */
  static async start(options: DevServerOptions): Promise<DevServer> {
    const portsChosenHere = options.port === undefined || options.uiPort === undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        return await DevServer.launch(options);
      } catch (error) {
        const portRace = error instanceof ExitedWhileStarting || error instanceof PortInUse;
        if (!portRace || !portsChosenHere || attempt === 3) throw error;
      }
    }
  }

  private static async launch(options: DevServerOptions): Promise<DevServer> {
    const ip = options.ip ?? '127.0.0.1';
    const port = options.port ?? (await freePort());
    const uiPort = options.uiPort === false ? undefined : (options.uiPort ?? (await freePort()));
    const namespace = options.namespace ?? 'default';
    await assertPortFree(ip, port);
    if (uiPort !== undefined) await assertPortFree(ip, uiPort);
    const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace, '--log-level', 'warn'];
    // The runs' search attributes (experiment, status, source run), so runs are findable from the first run on.
    for (const { name, type } of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${name}=${type}`);
    if (uiPort === undefined) args.push('--headless');
    else args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
    if (options.dbFile !== undefined) {
      await mkdir(dirname(options.dbFile), { recursive: true });
      args.push('--db-filename', options.dbFile);
    }
    const child = spawn(options.cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = new OutputTail();
    child.stdout?.on('data', (chunk: Buffer) => output.add(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.add(chunk));
    if (options.logFile !== undefined) {
      await mkdir(dirname(options.logFile), { recursive: true });
      const log = createWriteStream(options.logFile, { flags: 'a' });
      child.stdout?.pipe(log);
      child.stderr?.pipe(log);
    }
    const server = new DevServer(child, `${ip}:${port}`, uiPort === undefined ? undefined : `http://${ip}:${uiPort}`, namespace);
    await server.waitUntilReady(60_000, output);
    return server;
  }

  private async waitUntilReady(timeoutMs: number, output: OutputTail): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new ExitedWhileStarting(this.child.exitCode, output.text());
      try {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        try {
          await connection.workflowService.describeNamespace({ namespace: this.namespace });
          return;
        } finally {
          await connection.close();
        }
      } catch (error) {
        lastError = error;
        await sleep(200);
      }
    }
    await this.stop();
    throw new Error(`temporal server at ${this.address} not ready after ${timeoutMs} ms: ${(lastError as Error)?.message}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
