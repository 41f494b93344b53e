/**
 * SSH to stage workers with ssh2: key auth, pinned host keys, keepalives, retries while a fresh
 * VM boots (refused, reset, auth not yet propagated) until a deadline, and a cap on connections.
 * Commands are argv arrays joined with POSIX quoting, so no value is interpreted by the remote shell.
 * Connections are shared: several commands (channels) run over one connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join as shellJoin } from 'shlex';
import { Client, type ClientChannel } from 'ssh2';
import type { SshKey } from './credentials.ts';
import { hostKeyMismatch, hostKeyUnknown, SshConnectionLost, SshUnreachable } from './errors.ts';
import { keyBlob } from './known-hosts.ts';

export interface SshEndpoint {
  host: string;
  port: number;
  user: string;
  /** Pinned host keys ("ssh-ed25519 AAAA..."); connecting to an unpinned host is refused. */
  hostKeys: string[];
}

export interface SshSettings {
  key: SshKey;
  /** How long to keep retrying a connection (a fresh TPU VM can take minutes to accept SSH). */
  connectDeadlineMs: number;
  keepaliveIntervalMs: number;
  /** At most this many connections from this process (all hosts together). */
  maxConnections: number;
  /** Channels per connection; OpenSSH's default MaxSessions is 10. */
  maxChannelsPerConnection: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  signal?: AbortSignal;
  /** Keep at most this many bytes of each output stream (the tail). */
  maxOutputBytes?: number;
  /** Called with stdout as it arrives. */
  onStdout?: (chunk: Buffer) => void;
  /** Merge the command's stderr into stdout (appends a constant ` 2>&1`). */
  mergeStderr?: boolean;
  /** Give up connecting sooner than the pool's deadline (e.g. a status poll of a running stage). */
  connectDeadlineMs?: number;
}

interface Connection {
  client: Client;
  channels: number;
  closed: boolean;
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

export class SshPool {
  private readonly settings: SshSettings;
  private readonly connections = new Map<string, Connection[]>();
  private opened = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(settings: SshSettings) {
    this.settings = settings;
  }

  /** Runs argv on the endpoint; resolves with its exit code and output. Retries connecting, not the command. */
  async exec(endpoint: SshEndpoint, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const command = shellJoin([...argv]) + (options.mergeStderr ? ' 2>&1' : '');
    for (;;) {
      const connection = await this.acquire(endpoint, options);
      try {
        return await this.run(connection, command, options);
      } catch (error) {
        // The server refused a channel (MaxSessions): retire this connection for new channels and use another.
        if (!(error instanceof ChannelRefused)) throw error;
        connection.closed = true;
      } finally {
        this.release(connection);
      }
    }
  }

  /** Open connections (all hosts), for tests and the benchmark. */
  connectionCount(): number {
    return this.opened;
  }

  /** Closes every connection (worker shutdown). */
  close(): void {
    for (const list of this.connections.values()) for (const c of list) c.client.end();
    this.connections.clear();
  }

  /** Closes the connections to one endpoint, e.g. after it stopped answering. */
  forget(endpoint: SshEndpoint): void {
    for (const c of this.connections.get(keyOf(endpoint)) ?? []) {
      c.closed = true;
      c.client.end();
    }
  }

  private async acquire(endpoint: SshEndpoint, options: ExecOptions): Promise<Connection> {
    const { signal } = options;
    for (;;) {
      signal?.throwIfAborted();
      const list = this.live(endpoint);
      const free = list.find((c) => !c.closed && c.channels < this.settings.maxChannelsPerConnection);
      if (free !== undefined) {
        free.channels++;
        return free;
      }
      if (this.opened < this.settings.maxConnections) {
        this.opened++;
        try {
          const connection = await this.connect(endpoint, signal, options.connectDeadlineMs ?? this.settings.connectDeadlineMs);
          connection.channels = 1;
          this.live(endpoint).push(connection);
          // The new connection has room for more channels: let every waiter look again.
          this.wakeAll();
          return connection;
        } catch (error) {
          this.opened--;
          this.wakeAll();
          throw error;
        }
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  /** The endpoint's open connections (the map's own array, closed ones dropped in place). */
  private live(endpoint: SshEndpoint): Connection[] {
    const key = keyOf(endpoint);
    let list = this.connections.get(key);
    if (list === undefined) {
      list = [];
      this.connections.set(key, list);
    }
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.closed && list[i]!.channels === 0) list.splice(i, 1);
    return list;
  }

  private release(connection: Connection): void {
    connection.channels--;
    if (connection.closed && connection.channels === 0) connection.client.end();
    this.wakeAll();
  }

  private wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async connect(endpoint: SshEndpoint, signal: AbortSignal | undefined, deadlineMs: number): Promise<Connection> {
    if (endpoint.hostKeys.length === 0) throw hostKeyUnknown(endpoint.host, endpoint.port);
    const pinned = new Set(endpoint.hostKeys.map(keyBlob));
    const deadline = Date.now() + deadlineMs;
    let delay = 1000;
    for (;;) {
      signal?.throwIfAborted();
      let keyRejected = false;
      try {
        const client = await new Promise<Client>((resolve, reject) => {
          const c = new Client();
          let settled = false;
          const fail = (error: unknown) => {
            if (settled) return;
            settled = true;
            signal?.removeEventListener('abort', onAbort);
            c.end();
            reject(error);
          };
          // A host that accepts and never answers must not hold a cancelled caller (or outlive the deadline).
          const onAbort = () => fail(signal!.reason);
          signal?.addEventListener('abort', onAbort, { once: true });
          // Stays registered: a late error of a try already given up (its socket closed later) is no crash.
          c.on('error', fail);
          c.once('ready', () => {
            if (settled) {
              c.end();
              return;
            }
            settled = true;
            signal?.removeEventListener('abort', onAbort);
            resolve(c);
          });
          c.connect({
            host: endpoint.host,
            port: endpoint.port,
            username: endpoint.user,
            privateKey: this.settings.key.material(),
            readyTimeout: Math.max(1_000, Math.min(20_000, deadline - Date.now())),
            keepaliveInterval: this.settings.keepaliveIntervalMs,
            keepaliveCountMax: 4,
            hostVerifier: (hostKey: Buffer) => {
              keyRejected = !pinned.has(hostKey.toString('base64'));
              return !keyRejected;
            },
          });
        });
        const connection: Connection = { client, channels: 0, closed: false };
        client.on('close', () => {
          connection.closed = true;
          this.opened--;
          this.wakeAll();
        });
        client.on('error', () => {
          connection.closed = true;
        });
        return connection;
      } catch (error) {
        if (keyRejected) throw hostKeyMismatch(endpoint.host, endpoint.port);
        if (signal?.aborted) throw signal.reason;
        if (Date.now() + delay > deadline) {
          throw new SshUnreachable(
            `cannot reach ${endpoint.user}@${endpoint.host}:${endpoint.port} over SSH within ${deadlineMs} ms: ${(error as Error).message}`,
          );
        }
        await sleep(delay, undefined, signal ? { signal } : {});
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  private run(connection: Connection, command: string, options: ExecOptions): Promise<ExecResult> {
    const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    return new Promise<ExecResult>((resolve, reject) => {
      connection.client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
        if (error) {
          reject(connection.closed ? new SshConnectionLost(error.message) : new ChannelRefused(error.message));
          return;
        }
        const stdout = new Tail(max);
        const stderr = new Tail(max);
        const onAbort = () => stream.close();
        options.signal?.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (chunk: Buffer) => {
          stdout.add(chunk);
          options.onStdout?.(chunk);
        });
        stream.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
        stream.on('close', (code: number | null | undefined) => {
          options.signal?.removeEventListener('abort', onAbort);
          if (options.signal?.aborted) reject(options.signal.reason);
          // No exit status: the connection went away under the command.
          else if (code === undefined || code === null) reject(new SshConnectionLost(`connection lost while running a command`));
          else resolve({ code, stdout: stdout.text(), stderr: stderr.text() });
        });
      });
    });
  }
}

class ChannelRefused extends Error {}

function keyOf(endpoint: SshEndpoint): string {
  return `${endpoint.user}@${endpoint.host}:${endpoint.port}`;
}

/** The last `max` bytes of a stream. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  add(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}
