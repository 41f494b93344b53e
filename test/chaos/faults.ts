/**
 * The faults the chaos suite injects besides worker kills and server stops (stack.ts):
 *
 * - an SSH host that stops answering: its sshd listener is SIGSTOPped, so a new connect gets a
 *   TCP handshake from the kernel and then silence until the client's connect deadline (the
 *   test bed's stopWorker refuses connections at once instead). Its open connections are either
 *   cut (`cut`: SIGKILLed, the client sees them close and must reconnect into the silence) or
 *   stalled with it (`stall`: SIGSTOPped, a session hangs until SSH keepalives give up), as over
 *   a lost network path. SIGCONT brings it back; the containers on it keep running throughout,
 *   as on a real host.
 * - a storage outage: the Cloud Storage emulator stopped and started again at the same address
 *   on the same files (filesystem backend), behind a TCP relay (a network hop: while the emulator
 *   is down a connection through it is reset, as a refused one would be) whose log of request
 *   lines says when a phase (lookup, verification) has begun reading.
 */
import fs from 'node:fs';
import path from 'node:path';
import { descendants, isAlive, signal } from '../testbed/processes.ts';
import type { Testbed } from '../testbed/testbed.ts';
import net from 'node:net';
import { startGcsEmulator, type GcsEmulator } from '../helpers/gcs-emulator.ts';

export interface HostOutage {
  /** Resumes every process it stopped (idempotent). */
  restore(): void;
}

/** Makes test bed worker `index` stop answering SSH (see above) until restore(). */
export function silenceHost(bed: Testbed, index: number, connections: 'cut' | 'stall'): HostOutage {
  const pidFile = path.join(bed.dir, `worker-${index}`, 'ssh', 'sshd.pid');
  const listener = Number(fs.readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(listener) || !isAlive(listener)) throw new Error(`worker ${index} has no sshd listener`);
  const stopped = new Set<number>();
  const stopAll = (): void => {
    if (!stopped.has(listener)) signal(listener, 'SIGSTOP');
    stopped.add(listener);
    for (const pid of descendants(listener).filter((p) => p.comm === 'sshd').map((p) => p.pid)) {
      if (stopped.has(pid)) continue;
      signal(pid, connections === 'cut' ? 'SIGKILL' : 'SIGSTOP');
      stopped.add(pid);
    }
  };
  // The listener first, then its connections; twice, for a connection forked in between.
  stopAll();
  stopAll();
  let restored = false;
  return {
    restore() {
      if (restored) return;
      restored = true;
      for (const pid of stopped) if (isAlive(pid)) signal(pid, 'SIGCONT');
    },
  };
}

export interface ChaosStorage {
  /** What workers use as RECOGDRIVE_GCS_ENDPOINT (the proxy: stable across emulator restarts). */
  endpoint: string;
  /** Where gs://<bucket>/<object> is a plain file: the worker hosts' "gcsfuse mount" (RECOGDRIVE_ARTIFACT_MOUNT_ROOT). */
  mountRoot: string;
  /** Request lines ("GET /storage/v1/b/...") seen since the last reset. */
  requests(): readonly string[];
  resetRequests(): void;
  /** Until heal(): every request is answered with this HTTP status (the emulator stays up; open connections are cut). */
  failWith(status: number): void;
  heal(): void;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The emulator on the filesystem backend, seeded from `seedDir` (<seedDir>/<bucket>/<object>),
 * keeping objects as plain files under `<dir>/gcs` (mountRoot).
 */
export async function startChaosStorage(dir: string, seedDir: string): Promise<ChaosStorage> {
  const mountRoot = path.join(dir, 'gcs');
  fs.rmSync(mountRoot, { recursive: true, force: true });
  fs.mkdirSync(mountRoot, { recursive: true });
  const seed = { seedDir, filesystemRoot: mountRoot };
  let emulator: GcsEmulator | undefined = await startGcsEmulator({ seed });
  const port = Number(new URL(emulator.apiEndpoint).port);
  const relay = await startRelay(port);
  return {
    endpoint: relay.endpoint,
    mountRoot,
    requests: () => [...relay.seen],
    resetRequests: () => relay.seen.splice(0),
    failWith: (status) => relay.failWith(status),
    heal: () => relay.failWith(undefined),
    async stop() {
      await emulator?.stop();
      emulator = undefined;
    },
    async start() {
      emulator ??= await startGcsEmulator({ seed, port });
    },
    async close() {
      await emulator?.stop();
      await relay.close();
    },
  };
}

/** A TCP relay to 127.0.0.1:`port` that notes the HTTP request lines passing through. */
async function startRelay(port: number): Promise<{ endpoint: string; seen: string[]; failWith(status: number | undefined): void; close(): Promise<void> }> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  let failing: number | undefined;
  const server = net.createServer((client) => {
    if (failing !== undefined) {
      const status = failing;
      sockets.add(client);
      client.on('close', () => sockets.delete(client));
      client.on('error', () => {});
      client.once('data', () => {
        const body = JSON.stringify({ error: { code: status, message: `injected by the chaos suite (HTTP ${status})` } });
        client.end(`HTTP/1.1 ${status} Injected\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      });
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk: Buffer) => {
      for (const match of chunk.toString('latin1').matchAll(/^(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/1\.1\r$/gm)) seen.push(`${match[1]} ${match[2]}`);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    // Either side gone: so is the other (a stopped emulator resets its clients' connections).
    upstream.on('error', () => client.resetAndDestroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    seen,
    failWith(status) {
      failing = status;
      if (status !== undefined) for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
