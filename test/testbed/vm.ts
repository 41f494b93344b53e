/**
 * A bare test-bed worker's "machine": a private mount namespace in which its sshd (and so every
 * SSH session, podman, conmon and gcsfuse started over SSH) runs, with the VM-local folders bind
 * mounted from the worker's folder. What one VM mounts or writes there no other VM and not the
 * test process sees; the host has only empty mountpoints.
 *
 * The namespace is held by a process of its own (its "init": `sleep infinity` renamed to a marker
 * holding the worker's folder), so it outlives sshd restarts (stopWorker/startWorker keep a VM's
 * mounts, as a real VM's sshd restart would) and is found again by a later run when this one dies.
 * It ends when every process in it is gone: its mounts (gcsfuse's FUSE mounts) go with it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, listProcesses, terminate } from './processes.ts';

/** Folders of a VM that are its own: path on the VM → folder under <worker dir>/vm. */
export const VM_LOCAL_DIRS: Readonly<Record<string, string>> = {
  '/var/lib/recogdrive': 'var-lib-recogdrive',
  '/mnt/artifacts': 'mnt-artifacts',
};

/** argv[0] of a VM's holder process: the marker, then the worker folder (ending in '/', as processesOf matches). */
const MARKER = 'recogdrive-testbed-vm:';

export class VmNamespace {
  readonly workerDir: string;
  /** <worker dir>/vm: the VM's own files (its local folders, docker credentials, registries.conf). */
  readonly dir: string;
  #holder: number | undefined;
  /** The namespace, open: its "mnt:[inode]" finds its processes even when the holder is gone, and is not reused while open. */
  #ns: HeldNamespace | undefined;

  constructor(workerDir: string) {
    this.workerDir = workerDir;
    this.dir = path.join(workerDir, 'vm');
  }

  /** Where a VM path's contents are on the host (e.g. /var/lib/recogdrive → <worker dir>/vm/var-lib-recogdrive). */
  hostPath(vmPath: string): string {
    const name = VM_LOCAL_DIRS[vmPath];
    if (name === undefined) throw new Error(`${vmPath} is not a VM-local folder (${Object.keys(VM_LOCAL_DIRS).join(', ')})`);
    return path.join(this.dir, name);
  }

  /** The holder's pid while the namespace exists. */
  get pid(): number | undefined {
    return this.#holder !== undefined && isAlive(this.#holder) ? this.#holder : undefined;
  }

  /** Creates the VM's folders and a new namespace with them mounted. */
  async start(): Promise<void> {
    if (this.pid !== undefined) throw new Error(`the VM of ${this.workerDir} is running`);
    const sources: string[] = [];
    for (const [vmPath, name] of Object.entries(VM_LOCAL_DIRS)) {
      fs.mkdirSync(vmPath, { recursive: true }); // the mountpoint on the host (stays empty there)
      const source = path.join(this.dir, name);
      fs.mkdirSync(source, { recursive: true });
      sources.push(`mount --bind ${shellQuote(source)} ${shellQuote(vmPath)}`);
    }
    const script = `set -e; ${sources.join('; ')}; exec -a "$1" sleep infinity`;
    const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/bash', '-c', script, 'bash', `${MARKER}${this.workerDir}/`], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const pid = child.pid;
    const deadline = Date.now() + 10_000;
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null || pid === undefined) {
          throw new Error(`the mount namespace of ${this.workerDir} did not start (exit ${child.exitCode ?? child.signalCode}): ${stderr.trim()}`);
        }
        if (readCmdline(pid).startsWith(MARKER)) break; // exec'd: the mounts are in place
        if (Date.now() > deadline) throw new Error(`the mount namespace of ${this.workerDir} did not come up: ${stderr.trim()}`);
        await sleep(10);
      }
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
    child.stderr.destroy();
    child.unref();
    this.#holder = pid;
    this.#ns = holdNamespace(pid);
    if (this.#ns === undefined || this.#ns.id === mountNamespace(process.pid)) throw new Error(`the VM of ${this.workerDir} is not in a mount namespace of its own`);
  }

  /** A command's argv run inside the namespace; undefined when it is down. */
  enter(argv: readonly string[]): string[] | undefined {
    const pid = this.pid;
    return pid === undefined ? undefined : ['nsenter', '-t', String(pid), '-m', '--', ...argv];
  }

  /** Ends every process in the namespace (gcsfuse, conmon, the holder): the namespace and its mounts go with them. */
  async stop(): Promise<void> {
    const ns = this.#ns;
    this.#holder = undefined;
    this.#ns = undefined;
    if (ns !== undefined) await endNamespace(ns);
  }

  /** Pids in the namespace (the holder included); [] when it is gone. */
  processes(): number[] {
    return this.#ns === undefined ? [] : processesIn(this.#ns.id);
  }
}

/** Ends the namespaces a killed run left for this worker folder (found by the holder's marker). */
export async function stopLeftoverVm(workerDir: string): Promise<void> {
  const marker = `${MARKER}${workerDir}/`;
  for (const holder of listProcesses().filter((p) => p.cmdline.startsWith(`${marker} `) || p.cmdline === marker)) {
    const ns = holdNamespace(holder.pid);
    if (ns !== undefined) await endNamespace(ns);
  }
}

/** The holder of a worker folder's namespace left by a killed run, if any (to run podman in it before it ends). */
export function leftoverVmPid(workerDir: string): number | undefined {
  const marker = `${MARKER}${workerDir}/`;
  return listProcesses().find((p) => p.cmdline.startsWith(`${marker} `) || p.cmdline === marker)?.pid;
}

/** Pids whose mount namespace is `ns` ("mnt:[inode]"). */
function processesIn(ns: string): number[] {
  return listProcesses()
    .filter((p) => p.pid !== process.pid && mountNamespace(p.pid) === ns)
    .map((p) => p.pid);
}

/**
 * A mount namespace kept open through /proc/PID/ns/mnt: while the descriptor is open the namespace
 * exists and its inode number is not handed to a new one (they are recycled as soon as one ends).
 */
interface HeldNamespace {
  id: string;
  fd: number;
}

function holdNamespace(pid: number): HeldNamespace | undefined {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/ns/mnt`, 'r');
  } catch {
    return undefined;
  }
  const id = mountNamespace(pid);
  // The pid may have exited (and been reused) between the two looks: the fd is the truth.
  if (id === undefined || id !== fs.readlinkSync(`/proc/self/fd/${fd}`)) {
    fs.closeSync(fd);
    return undefined;
  }
  return { id, fd };
}

/** Ends every process in the namespace, then lets it go (its mounts go with it). */
async function endNamespace(ns: HeldNamespace): Promise<void> {
  try {
    // Never the test process's own namespace: that would end every process of the machine.
    if (ns.id === mountNamespace(process.pid)) throw new Error(`refusing to end the host's mount namespace ${ns.id}`);
    // Kill until none is left: a process may start another while we look (podman, gcsfuse's daemon child).
    for (let round = 0; round < 5; round++) {
      const pids = processesIn(ns.id);
      if (pids.length === 0) return;
      await terminate(pids, 1000);
    }
  } finally {
    fs.closeSync(ns.fd);
  }
}

function mountNamespace(pid: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

function readCmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
