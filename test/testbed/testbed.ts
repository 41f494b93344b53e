/**
 * A multi-host TPU slice made of real software on this machine: one sshd per "worker" on a
 * loopback port, and behind each a container host of its own (podman with its own storage, state
 * and locks) that answers to `docker` in that worker's SSH sessions. The stage image (the stage
 * simulator in a minimal rootfs) is in every worker's storage. See README.md beside this file.
 *
 *   const bed = await startTestbed({ workers: 2, dir });
 *   const gpuBed = await startTestbed({ workers: 2, dir, gpus: [0, 4] }); // worker 1 plays a VM with 4 GPUs
 *   const bareBed = await startTestbed({ workers: 2, dir, bare: true, gcsEndpoint }); // VMs with nothing on them (README "Bare VMs")
 *   // ssh2: { host: bed.workers[i].address, port: bed.workers[i].port, username: 'root',
 *   //         privateKey: fs.readFileSync(bed.privateKeyFile), hostVerifier: pin(bed.workers[i].hostKey) }
 *   await bed.stop();
 */
import fs from 'node:fs';
import path from 'node:path';
import { containerHost, dockerShim, PODMAN, podman, registriesConf, STATE_ROOT, writeContainerHost, type ContainerHost } from './podman.ts';
import { check, isAlive, listProcesses, run, terminate, unmountBelow, type RunOptions, type RunResult } from './processes.ts';
import { Sshd, stopLeftoverSshd } from './sshd.ts';
import { DEFAULT_TAGS, installImageStore, stageImageStore } from './stage-image.ts';
import { MetadataServer, type VmServiceAccount } from './metadata-server.ts';
import { leftoverVmPid, stopLeftoverVm, VmNamespace } from './vm.ts';
import { ensureGcsfuse } from '../../infra/local/gcsfuse.ts';
import { quote as quoteShell } from 'shlex';

export type { VmServiceAccount } from './metadata-server.ts';

export interface TestbedWorker {
  address: string;
  port: number;
  user: string;
  /** "ssh-ed25519 AAAA..." */
  hostKey: string;
  /** GPUs its `docker run --gpus` gives a container (RECOGDRIVE_SIM_GPUS); 0: it refuses --gpus as Docker without a GPU runtime does. */
  gpus: number;
  /** Bare beds: "127.0.0.1:PORT" of the VM's metadata server (GCE_METADATA_HOST in its SSH sessions). */
  metadataHost?: string;
}

export interface Testbed {
  dir: string;
  workers: TestbedWorker[];
  /** OpenSSH known_hosts lines "[127.0.0.1]:PORT ssh-ed25519 AAAA..." for every worker. */
  knownHostsFile: string;
  /** Client private key (OpenSSH format, ed25519), authorized on every worker; mode 600. */
  privateKeyFile: string;
  /** The image tags available on every worker. */
  images: string[];
  /** Runs the worker's docker (podman) directly, for test assertions (bypasses SSH). */
  docker(worker: number, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Kills the sshd connections of a worker (not the listener), to simulate a dropped SSH connection. */
  dropConnections(worker: number): Promise<void>;
  /** Stops a worker's sshd listener (host unreachable) / starts it again on the same port with the same host key. */
  stopWorker(worker: number): Promise<void>;
  startWorker(worker: number): Promise<void>;
  /** Bare beds: the service account a worker's VM has (what its metadata server hands out); undefined: none (the default). */
  setServiceAccount(worker: number, account: VmServiceAccount | undefined): void;
  /**
   * Bare beds: makes a worker a brand-new bare VM (same address, port and host key): its sessions,
   * containers, images, gcsfuse mounts, VM-local folders, docker credentials and fences are gone,
   * and it has no service account.
   */
  resetWorker(worker: number): Promise<void>;
  /** Bare beds: where a worker's VM-local folder (/var/lib/recogdrive, /mnt/artifacts) is on this machine. */
  vmPath(worker: number, vmPath: string): string;
  /** Bare beds: pids running in a worker's VM (its mount namespace: sshd, podman, conmon, gcsfuse...); [] when it is down. */
  vmProcesses(worker: number): number[];
  /** Stops sshd instances, removes every container of the test bed, keeps the image cache. */
  stop(): Promise<void>;
}

export interface TestbedOptions {
  workers: number;
  /** The test bed's folder (created; leftovers of a killed run in it are cleaned up). */
  dir: string;
  /** Image tags to put on every worker (default recogdrive-tpu:stage1 and :unified); [] for none. */
  images?: string[];
  /** Where the stage image is cached (default: RECOGDRIVE_TESTBED_CACHE or .data/testbed-cache). */
  cacheDir?: string;
  /**
   * GPUs per worker (a number: every worker; a list: worker i gets gpus[i], missing ones 0).
   * Default 0: no GPU runtime (see dockerShim in podman.ts).
   */
  gpus?: number | readonly number[];
  /** Every worker's `docker run`/`create` appends "<time>\t<name>\t<attempt label>" to <dir>/worker-N/creates.log (CREATE_LOG). */
  logCreates?: boolean;
  /**
   * Workers are bare VMs (README "Bare VMs"): no image, their own /var/lib/recogdrive and
   * /mnt/artifacts (a private mount namespace), their own docker credentials, gcsfuse on PATH and
   * a fake GCE metadata server. Implies images: [].
   */
  bare?: boolean;
  /** Bare: registries every VM's docker reaches over plain HTTP ("127.0.0.1:5123"). */
  insecureRegistries?: readonly string[];
  /** Bare: the Cloud Storage JSON API endpoint for gcsfuse, given to SSH sessions as RECOGDRIVE_GCS_ENDPOINT ("http://127.0.0.1:PORT/storage/v1/"). */
  gcsEndpoint?: string;
}

/** Where a worker's `docker run`/`create` calls are logged when the test bed was started with logCreates. */
export const CREATE_LOG = 'creates.log';

const USER = 'root';
/** In a worker's state folder (under /run): which folder and process it belongs to, for sweepAbandoned. */
const OWNER_FILE = 'owner.json';
const ADDRESS = '127.0.0.1';

interface Worker {
  index: number;
  dir: string;
  host: ContainerHost;
  sshd: Sshd;
  gpus: number;
  /** Bare beds: the VM's mount namespace and metadata server. */
  vm?: VmNamespace;
  metadata?: MetadataServer;
}

/** In a bare worker's folder: its registries.conf (config, kept by resetWorker). */
const REGISTRIES_CONF = 'registries.conf';
/** In a bare worker's vm folder: REGISTRY_AUTH_FILE (docker login's credentials; a new VM has none). */
const AUTH_FILE = 'auth.json';

function checkBareOptions(options: TestbedOptions): void {
  if (options.bare !== true) {
    if (options.insecureRegistries !== undefined || options.gcsEndpoint !== undefined) throw new Error('insecureRegistries and gcsEndpoint are options of a bare test bed (bare: true)');
    return;
  }
  if (options.images !== undefined && options.images.length > 0) throw new Error('a bare test bed has no image on its workers (leave images out)');
  if (options.gcsEndpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(options.gcsEndpoint)) throw new Error(`gcsEndpoint must be an http(s) URL (got ${JSON.stringify(options.gcsEndpoint)})`);
}

function gpusOfWorker(gpus: TestbedOptions['gpus'], index: number): number {
  const count = typeof gpus === 'number' ? gpus : (gpus?.[index] ?? 0);
  if (!Number.isInteger(count) || count < 0) throw new Error(`gpus of worker ${index} must be a non-negative integer (got ${count})`);
  return count;
}

export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  if (!Number.isInteger(options.workers) || options.workers < 1) throw new Error(`workers must be a positive integer (got ${options.workers})`);
  checkBareOptions(options);
  const bare = options.bare === true;
  const dir = path.resolve(options.dir);
  const images = bare ? [] : (options.images ?? DEFAULT_TAGS);
  fs.mkdirSync(dir, { recursive: true });
  await Promise.all([cleanLeftovers(dir), sweepAbandoned()]);
  const gcsfuse = bare ? await ensureGcsfuse() : undefined;

  const privateKeyFile = path.join(dir, 'client_key');
  const authorizedKeysFile = path.join(dir, 'authorized_keys');
  const knownHostsFile = path.join(dir, 'known_hosts');
  const [store] = await Promise.all([
    images.length > 0 ? stageImageStore(images, options.cacheDir) : undefined,
    (async () => {
      for (const file of [privateKeyFile, `${privateKeyFile}.pub`]) fs.rmSync(file, { force: true });
      await check('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'recogdrive-testbed-client', '-f', privateKeyFile]);
      fs.chmodSync(privateKeyFile, 0o600);
      fs.copyFileSync(`${privateKeyFile}.pub`, authorizedKeysFile);
    })(),
  ]);

  const workers: Worker[] = [];
  try {
    for (let index = 0; index < options.workers; index++) {
      const workerDir = path.join(dir, `worker-${index}`);
      const vm = bare ? new VmNamespace(workerDir) : undefined;
      const registry = vm === undefined ? {} : { authFile: path.join(vm.dir, AUTH_FILE), registriesConf: path.join(workerDir, REGISTRIES_CONF) };
      const plainHost = containerHost(workerDir);
      const host = vm === undefined ? plainHost : { ...plainHost, env: { ...plainHost.env, REGISTRY_AUTH_FILE: registry.authFile, CONTAINERS_REGISTRIES_CONF: registry.registriesConf } };
      const metadata = bare ? new MetadataServer() : undefined;
      await metadata?.start();
      const bin = path.join(workerDir, 'bin');
      const sshd = new Sshd({
        dir: path.join(workerDir, 'ssh'),
        authorizedKeysFile,
        env: {
          PATH: `${bin}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin`,
          SHLVL: '1',
          RECOGDRIVE_TESTBED_WORKER: String(index),
          // Each worker keeps its own launch fences (activities/execution/host-fence.ts), as separate hosts would.
          RECOGDRIVE_FENCE_DIR: path.join(workerDir, 'fences'),
          ...(metadata === undefined ? {} : { GCE_METADATA_HOST: metadata.host }),
          ...(options.gcsEndpoint === undefined ? {} : { RECOGDRIVE_GCS_ENDPOINT: options.gcsEndpoint }),
        },
        ...(vm === undefined
          ? {}
          : {
              launcher: () => {
                const argv = vm.enter([]);
                if (argv === undefined) throw new Error(`the VM of worker ${index} is down: its sshd would run outside it`);
                return argv;
              },
            }),
      });
      workers.push({ index, dir: workerDir, host, sshd, gpus: gpusOfWorker(options.gpus, index), ...(vm === undefined ? {} : { vm }), ...(metadata === undefined ? {} : { metadata }) });
      if (vm !== undefined) {
        fs.mkdirSync(workerDir, { recursive: true });
        fs.writeFileSync(path.join(workerDir, REGISTRIES_CONF), registriesConf(options.insecureRegistries ?? []));
      }
    }
    await Promise.all(
      workers.map(async (worker) => {
        writeContainerHost(worker.host);
        fs.writeFileSync(path.join(worker.host.stateDir, OWNER_FILE), JSON.stringify({ dir: worker.dir, pid: process.pid }));
        const bin = path.join(worker.dir, 'bin');
        fs.mkdirSync(bin, { recursive: true });
        const registry = worker.vm === undefined ? {} : { authFile: path.join(worker.vm.dir, AUTH_FILE), registriesConf: path.join(worker.dir, REGISTRIES_CONF) };
        fs.writeFileSync(
          path.join(bin, 'docker'),
          dockerShim(worker.host, { gpus: worker.gpus, ...(options.logCreates === true ? { createLog: path.join(worker.dir, CREATE_LOG) } : {}), ...registry }),
          { mode: 0o755 },
        );
        fs.writeFileSync(path.join(bin, 'sudo'), SUDO_SHIM, { mode: 0o755 });
        if (gcsfuse !== undefined) fs.writeFileSync(path.join(bin, 'gcsfuse'), gcsfuseShim(gcsfuse), { mode: 0o755 });
        if (store !== undefined) await installImageStore(store.graphRoot, worker.host.graphRoot);
        if (worker.vm !== undefined) await startVm(worker.vm);
        await worker.sshd.start();
      }),
    );
  } catch (error) {
    await Promise.allSettled(workers.map((w) => stopWorkerHost(w)));
    throw error;
  }
  writeKnownHosts(knownHostsFile, workers);

  const workerAt = (index: number): Worker => {
    const worker = workers[index];
    if (worker === undefined) throw new Error(`no worker ${index} (the test bed has ${workers.length})`);
    return worker;
  };
  const bareAt = (index: number): Worker & Required<Pick<Worker, 'vm' | 'metadata'>> => {
    const worker = workerAt(index);
    if (worker.vm === undefined || worker.metadata === undefined) throw new Error('only a bare test bed (bare: true) has VMs');
    return worker as Worker & Required<Pick<Worker, 'vm' | 'metadata'>>;
  };
  const resets = new Map<number, Promise<void>>();
  let stopped: Promise<void> | undefined;
  return {
    dir,
    workers: workers.map((w) => ({
      address: ADDRESS,
      port: w.sshd.port,
      user: USER,
      hostKey: w.sshd.hostKey,
      gpus: w.gpus,
      ...(w.metadata === undefined ? {} : { metadataHost: w.metadata.host }),
    })),
    knownHostsFile,
    privateKeyFile,
    images: [...images],
    docker: async (worker, args) => {
      const w = workerAt(worker);
      const result = await runPodman(w.host, w.vm, args);
      // After stop(), a look at a worker must not leave podman state (or a storage mount) behind.
      if (stopped !== undefined) await stopped.then(() => releaseState(w.dir, w.host));
      return result;
    },
    dropConnections: (worker) => workerAt(worker).sshd.dropConnections(),
    stopWorker: (worker) => workerAt(worker).sshd.stop(),
    startWorker: async (worker) => {
      const w = workerAt(worker);
      if (w.vm !== undefined && w.vm.pid === undefined) await startVm(w.vm);
      await w.sshd.restart();
    },
    setServiceAccount: (worker, account) => bareAt(worker).metadata.setServiceAccount(account),
    resetWorker: (worker) => {
      const w = bareAt(worker);
      // One at a time per worker: VMs landing on a slot in quick succession each get a fresh one.
      const reset = (resets.get(worker) ?? Promise.resolve()).catch(() => {}).then(() => resetWorker(w));
      resets.set(worker, reset);
      return reset;
    },
    vmPath: (worker, vmPath) => bareAt(worker).vm.hostPath(vmPath),
    vmProcesses: (worker) => bareAt(worker).vm.processes(),
    stop: () => {
      stopped ??= Promise.allSettled(resets.values())
        .then(() => Promise.all(workers.map((w) => stopWorkerHost(w))))
        .then(() => undefined);
      return stopped;
    },
  };
}

/**
 * `sudo [-n] [-E] [--] command...`: sessions already run as root, and the real sudo would reset
 * PATH to its secure_path (where /usr/local/bin/docker, a CLI without an engine, comes first).
 */
const SUDO_SHIM = `#!/bin/sh
# Test bed: sessions run as root; run the command with this session's PATH (docker = this worker's podman).
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-E|-H|-S|--non-interactive|--preserve-env) shift ;;
    --) shift; break ;;
    -*) echo "sudo (test bed): unsupported option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: sudo [-n] command..." >&2; exit 1; }
exec "$@"
`;

/**
 * `gcsfuse` on a bare VM: the pinned gcsfuse with what the Cloud Storage emulator lacks turned
 * off (it has no storage-layout (HNS) and no MoveObject API: without the first gcsfuse retries
 * forever, without the second a rename fails with EIO). Against real Cloud Storage neither is needed.
 */
function gcsfuseShim(binary: string): string {
  return [
    '#!/bin/sh',
    '# gcsfuse for the test bed: the emulator (fake-gcs-server) has no HNS layout and no MoveObject API.',
    `exec ${quoteShell(binary)} --enable-hns=false --enable-atomic-rename-object=false "$@"`,
    '',
  ].join('\n');
}

function writeKnownHosts(file: string, workers: readonly Worker[]): void {
  fs.writeFileSync(file, workers.map((w) => `[${ADDRESS}]:${w.sshd.port} ${w.sshd.hostKey}\n`).join(''));
}

/** Stops a worker's sshd, removes its containers, ends its podman/conmon processes (and VM), unmounts its storage. */
async function stopWorkerHost(worker: Worker): Promise<void> {
  await worker.sshd.stop();
  await removeContainers(worker.dir, worker.host, worker.vm);
  await worker.metadata?.stop();
}

/** A brand-new bare VM on this worker: nothing of the old one is left; same port and host key. */
async function resetWorker(worker: Worker & Required<Pick<Worker, 'vm' | 'metadata'>>): Promise<void> {
  await worker.sshd.stop();
  await removeContainers(worker.dir, worker.host, worker.vm);
  for (const gone of [worker.host.graphRoot, worker.vm.dir, path.join(worker.dir, 'fences')]) fs.rmSync(gone, { recursive: true, force: true });
  writeContainerHost(worker.host);
  fs.writeFileSync(path.join(worker.host.stateDir, OWNER_FILE), JSON.stringify({ dir: worker.dir, pid: process.pid }));
  worker.metadata.setServiceAccount(undefined);
  await startVm(worker.vm);
  await worker.sshd.restart();
}

/**
 * Starts a VM's namespace with an empty docker credentials file: podman refuses a
 * REGISTRY_AUTH_FILE that does not exist (Docker is fine without ~/.docker/config.json), and
 * bed.docker() runs podman without the shim that would create it.
 */
async function startVm(vm: VmNamespace): Promise<void> {
  await vm.start();
  const authFile = path.join(vm.dir, AUTH_FILE);
  if (!fs.existsSync(authFile)) fs.writeFileSync(authFile, '{"auths": {}}\n', { mode: 0o600 });
}

/** A bare worker's VM as removeContainers needs it: how to run a command in it (undefined: it is down), how to end it. */
interface VmHandle {
  enter(argv: readonly string[]): string[] | undefined;
  stop(): Promise<void>;
}

/** podman of this host; inside the VM's mount namespace when it has one (its bind mounts and gcsfuse mounts resolve there). */
function runPodman(host: ContainerHost, vm: VmHandle | undefined, args: readonly string[], options: Omit<RunOptions, 'env'> = {}): Promise<RunResult> {
  const argv = vm?.enter([PODMAN, ...args]);
  return argv === undefined ? podman(host, args, options) : run(argv[0]!, argv.slice(1), { ...options, env: host.env });
}

/** The VM a killed run left in a worker folder, if any. */
function leftoverVm(workerDir: string): VmHandle {
  return {
    enter: (argv) => {
      const pid = leftoverVmPid(workerDir);
      return pid === undefined ? undefined : ['nsenter', '-t', String(pid), '-m', '--', ...argv];
    },
    stop: () => stopLeftoverVm(workerDir),
  };
}

async function removeContainers(workerDir: string, host: ContainerHost, vm?: VmHandle): Promise<void> {
  if (fs.existsSync(host.containersConf) && fs.existsSync(host.storageConf) && fs.existsSync(host.graphRoot)) {
    await runPodman(host, vm, ['rm', '--all', '--force', '--time', '0'], { timeoutMs: 60_000 });
  }
  // The VM's processes (gcsfuse, conmon) end with its namespace, and its mounts with them.
  await vm?.stop();
  // Containers podman could not remove (the test bed's folder is gone): end them through runc.
  const containersDir = path.join(host.runRoot, 'overlay-containers');
  const ids = fs.existsSync(containersDir) ? fs.readdirSync(containersDir).filter((id) => /^[0-9a-f]{64}$/.test(id)) : [];
  for (const id of ids) await run('runc', ['delete', '--force', id]);
  const leftovers = processesOf(workerDir, host);
  if (leftovers.length > 0) await terminate(leftovers, 1000);
  await releaseState(workerDir, host);
}

/** Unmounts the worker's storage and removes its per-boot podman state (under /run). */
async function releaseState(workerDir: string, host: ContainerHost): Promise<void> {
  await unmountBelow(workerDir);
  await unmountBelow(host.stateDir);
  fs.rmSync(host.stateDir, { recursive: true, force: true });
}

/** Processes of a worker's container host: conmon (its runroot is in its arguments) and podman commands (their environment). */
function processesOf(workerDir: string, host: ContainerHost): number[] {
  const marker = `CONTAINERS_CONF=${host.containersConf}\0`;
  return listProcesses()
    .filter((p) => p.pid !== process.pid)
    .filter((p) => {
      if (p.cmdline.includes(`${workerDir}/`) || p.cmdline.includes(`${host.stateDir}/`)) return true;
      try {
        return fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map((p) => p.pid);
}

/** A killed run leaves sshd listeners, containers and overlay mounts in its folder: end and remove them. */
async function cleanLeftovers(dir: string): Promise<void> {
  const workerDirs = fs
    .readdirSync(dir)
    .filter((name) => /^worker-\d+$/.test(name))
    .map((name) => path.join(dir, name));
  await Promise.all(
    workerDirs.map(async (workerDir) => {
      await stopLeftoverSshd(path.join(workerDir, 'ssh'));
      await removeContainers(workerDir, containerHost(workerDir), leftoverVm(workerDir));
      fs.rmSync(workerDir, { recursive: true, force: true });
    }),
  );
}

/**
 * Test beds of processes that died without stop() (a killed test run, in a folder no one reuses):
 * their sshd, containers and mounts, found through the owner files of the state folders.
 */
async function sweepAbandoned(): Promise<void> {
  if (!fs.existsSync(STATE_ROOT)) return;
  await Promise.all(
    fs.readdirSync(STATE_ROOT).map(async (name) => {
      let owner: { dir?: unknown; pid?: unknown };
      try {
        owner = JSON.parse(fs.readFileSync(path.join(STATE_ROOT, name, OWNER_FILE), 'utf8')) as typeof owner;
      } catch {
        return;
      }
      if (typeof owner.dir !== 'string' || typeof owner.pid !== 'number' || isAlive(owner.pid)) return;
      const host = containerHost(owner.dir);
      if (path.basename(host.stateDir) !== name) return;
      await stopLeftoverSshd(path.join(owner.dir, 'ssh'));
      await removeContainers(owner.dir, host, leftoverVm(owner.dir));
    }),
  );
}
