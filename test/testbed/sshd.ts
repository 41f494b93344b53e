/**
 * One OpenSSH server on a loopback port with its own config, host key, authorized keys, pid file
 * and log: a test-bed worker's SSH endpoint. Nothing under /etc/ssh is read or changed.
 *
 * Environment of remote commands: `SetEnv` (OpenSSH >= 7.8) sets PATH and the other variables for
 * every session of this instance, after sshd's defaults, so PATH is exactly ours. `SHLVL=1` makes
 * the login shell (root's bash) skip ~/.bashrc, which Debian's bash otherwise sources for commands
 * run by sshd and which may put /usr/local/bin (a Docker CLI without an engine here) first again.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { check, descendants, isAlive, listProcesses, run, signal, terminate, waitGone } from './processes.ts';
import { freePort } from '../../infra/local/dev-server.ts';

/** A free TCP port on 127.0.0.1 (the test bed's users take it from here). */
export { freePort };

export const SSHD = '/usr/sbin/sshd';

export interface SshdOptions {
  /** Folder of this instance's files. */
  dir: string;
  authorizedKeysFile: string;
  /** Variables every session gets (PATH included). */
  env: Readonly<Record<string, string>>;
  /** Runs sshd through this command (e.g. nsenter into a VM's mount namespace): argv to prefix, asked at each start. */
  launcher?: () => readonly string[];
}

export class Sshd {
  readonly dir: string;
  readonly configFile: string;
  readonly hostKeyFile: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly #options: SshdOptions;
  #port = 0;
  #hostKey = '';

  constructor(options: SshdOptions) {
    this.#options = options;
    this.dir = options.dir;
    this.configFile = path.join(options.dir, 'sshd_config');
    this.hostKeyFile = path.join(options.dir, 'ssh_host_ed25519_key');
    this.pidFile = path.join(options.dir, 'sshd.pid');
    this.logFile = path.join(options.dir, 'sshd.log');
  }

  get port(): number {
    return this.#port;
  }

  /** "ssh-ed25519 AAAA..." */
  get hostKey(): string {
    return this.#hostKey;
  }

  /** Creates the host key (once: restarts keep it) and starts on a free port. */
  async start(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    if (!fs.existsSync(this.hostKeyFile)) {
      await check('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `testbed-host-${path.basename(this.dir)}`, '-f', this.hostKeyFile]);
    }
    this.#hostKey = fs.readFileSync(`${this.hostKeyFile}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    // The port probed free may be taken before sshd binds it: try another.
    for (let attempt = 1; ; attempt++) {
      this.#port = await freePort();
      try {
        await this.#listen();
        return;
      } catch (error) {
        if (!(error instanceof PortTaken) || attempt >= 5) throw error;
      }
    }
  }

  /** Starts the listener again on the same port with the same host key. */
  async restart(): Promise<void> {
    if (this.#port === 0) throw new Error('restart() before start()');
    if (this.listenerPid() !== undefined) return;
    await this.#listen();
  }

  /** The listener's pid, when it runs. */
  listenerPid(): number | undefined {
    return listenerFromPidFile(this.pidFile, this.configFile);
  }

  /** Kills every connection (the per-connection sshd processes), not the listener. */
  async dropConnections(): Promise<void> {
    const listener = this.listenerPid();
    if (listener === undefined) return;
    const connections = descendants(listener).filter((p) => p.comm === 'sshd').map((p) => p.pid);
    for (const pid of connections) signal(pid, 'SIGKILL');
    await waitGone(connections, 5000);
  }

  /** Stops the listener and every connection. */
  async stop(): Promise<void> {
    const listener = this.listenerPid();
    if (listener === undefined) return;
    const connections = descendants(listener).filter((p) => p.comm === 'sshd').map((p) => p.pid);
    for (const pid of connections) signal(pid, 'SIGKILL');
    await terminate([listener, ...connections]);
    fs.rmSync(this.pidFile, { force: true });
  }

  async #writeConfig(): Promise<void> {
    const o = this.#options;
    const lines = [
      '# Test-bed worker: one sshd instance on loopback (started with sshd -f this file).',
      `Port ${this.#port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${quote(this.hostKeyFile)}`,
      `AuthorizedKeysFile ${quote(o.authorizedKeysFile)}`,
      `PidFile ${quote(this.pidFile)}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PermitUserEnvironment no',
      // The orchestrator multiplexes many channels (docker wait, logs, inspect) over one connection.
      'MaxSessions 200',
      'MaxStartups 200',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'X11Forwarding no',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      `SetEnv ${Object.entries(o.env)
        .map(([name, value]) => quote(`${name}=${value}`))
        .join(' ')}`,
      '',
    ];
    fs.writeFileSync(this.configFile, lines.join('\n'));
  }

  async #listen(): Promise<void> {
    await this.#writeConfig();
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    fs.rmSync(this.pidFile, { force: true });
    const logStart = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    // sshd daemonizes; the pid file appears once the listen socket is bound.
    const argv = [...(this.#options.launcher?.() ?? []), SSHD, '-f', this.configFile, '-E', this.logFile];
    const started = await run(argv[0]!, argv.slice(1));
    if (started.code !== 0) throw new Error(`sshd -f ${this.configFile} exited ${started.code}: ${started.stderr.trim()}`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.listenerPid() !== undefined && (await accepts(this.#port))) return;
      const log = readFrom(this.logFile, logStart);
      if (/Cannot bind any address|Address already in use/.test(log)) throw new PortTaken(this.#port);
      if (Date.now() > deadline) throw new Error(`sshd on port ${this.#port} did not come up; its log:\n${log.trim()}`);
      await sleep(20);
    }
  }
}

class PortTaken extends Error {
  constructor(port: number) {
    super(`port ${port} is taken`);
  }
}

/** Stops the sshd a previous (killed) run left in `dir`, found by its pid file and config path. */
export async function stopLeftoverSshd(dir: string): Promise<void> {
  const configFile = path.join(dir, 'sshd_config');
  const listener = listenerFromPidFile(path.join(dir, 'sshd.pid'), configFile);
  const pids = listProcesses()
    .filter((p) => p.comm === 'sshd' && p.cmdline.includes(` -f ${configFile} `))
    .map((p) => p.pid);
  if (listener !== undefined) pids.push(listener, ...descendants(listener).filter((p) => p.comm === 'sshd').map((p) => p.pid));
  if (pids.length > 0) await terminate([...new Set(pids)]);
}

function listenerFromPidFile(pidFile: string, configFile: string): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  // A recycled pid is not ours: the listener's title keeps its command line (-f <config>).
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(configFile) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString();
  } catch {
    return '';
  }
}

/** sshd_config arguments: double quotes keep spaces in paths. */
function quote(value: string): string {
  if (/["\n\\]/.test(value)) throw new Error(`cannot put ${JSON.stringify(value)} into sshd_config`);
  return `"${value}"`;
}
