/**
 * A "container host": one podman with its own storage, state, locks and config, so several of them
 * on one machine never see each other's containers (each test-bed worker is one). Config comes
 * from two files passed through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF: nothing under /etc changes.
 *
 * What podman needs on these machines (see MACHINE-NOTES): runc (crun fails on setrlimit and
 * hybrid cgroups), no default ulimits, cgroupfs and file events (no systemd). File locks under
 * the host's tmp_dir instead of the shared /dev/shm/libpod_lock segment: a fresh podman state frees
 * every lock of that segment, which would hand another host's (or the developer's) locks out again.
 *
 * The per-boot state (runroot, tmp_dir) lives under /run/recogdrive-testbed/<hash of dir>: with a
 * runroot path longer than 50 characters conmon's exit handling breaks here (the container ends
 * in state "stopped", never "exited", and `podman wait` takes 20 s), and a test folder's path is
 * easily that long.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run, type RunOptions, type RunResult } from './processes.ts';
import { quote } from 'shlex';

export const PODMAN = '/usr/bin/podman';

export interface ContainerHost {
  dir: string;
  containersConf: string;
  storageConf: string;
  /** Images, layers, containers' writable layers, libpod's database. */
  graphRoot: string;
  /** Per-boot state: container runtime state, conmon pid files (short path, on tmpfs). */
  runRoot: string;
  /** libpod's per-boot folder: its "alive" lock, events log and (file) container locks. */
  tmpDir: string;
  /** The folder of runRoot and tmpDir, outside `dir` (see above). */
  stateDir: string;
  /** The environment podman runs with for this host. */
  env: NodeJS.ProcessEnv;
}

/** Where the per-boot state of the container hosts lives. */
export const STATE_ROOT = '/run/recogdrive-testbed';

/** The paths of a container host in `dir` (nothing is written). */
export function containerHost(dir: string): ContainerHost {
  const containersConf = path.join(dir, 'containers.conf');
  const storageConf = path.join(dir, 'storage.conf');
  const stateDir = path.join(STATE_ROOT, crypto.createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 12));
  return {
    dir,
    containersConf,
    storageConf,
    graphRoot: path.join(dir, 'storage'),
    runRoot: path.join(stateDir, 'run'),
    tmpDir: path.join(stateDir, 'tmp'),
    stateDir,
    env: { ...cleanEnv(process.env), CONTAINERS_CONF: containersConf, CONTAINERS_STORAGE_CONF: storageConf },
  };
}

/** Writes the host's config files and creates its folders. */
export function writeContainerHost(host: ContainerHost): void {
  for (const dir of [host.dir, host.graphRoot, host.runRoot, host.tmpDir, path.join(host.dir, 'networks')]) {
    fs.mkdirSync(dir, { recursive: true });
  }
  fs.writeFileSync(
    host.containersConf,
    [
      '# Test-bed container host: read by podman through CONTAINERS_CONF (no other containers.conf is read).',
      '[containers]',
      'default_ulimits = []',
      'log_driver = "k8s-file"',
      '# The orchestrator always passes --net=host; a container without it must not create CNI bridges and iptables rules.',
      'netns = "host"',
      '',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      'lock_type = "file"',
      `tmp_dir = ${toml(host.tmpDir)}`,
      '',
      '[network]',
      `network_config_dir = ${toml(path.join(host.dir, 'networks'))}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(
    host.storageConf,
    [
      '# Test-bed container host: read by podman through CONTAINERS_STORAGE_CONF.',
      '[storage]',
      'driver = "overlay"',
      `graphroot = ${toml(host.graphRoot)}`,
      `runroot = ${toml(host.runRoot)}`,
      '',
    ].join('\n'),
  );
}

/** Runs podman on this host. */
export function podman(host: ContainerHost, args: readonly string[], options: Omit<RunOptions, 'env'> = {}): Promise<RunResult> {
  return run(PODMAN, args, { ...options, env: host.env });
}

/** A `docker` command for this host: podman with the host's config (a POSIX sh script). */
export function dockerShim(host: ContainerHost): string {
  return [
    '#!/bin/sh',
    `# docker for the test-bed container host ${host.dir}: podman with that host's own storage and config.`,
    `CONTAINERS_CONF=${quote(host.containersConf)}`,
    `CONTAINERS_STORAGE_CONF=${quote(host.storageConf)}`,
    'export CONTAINERS_CONF CONTAINERS_STORAGE_CONF',
    `exec ${PODMAN} "$@"`,
    '',
  ].join('\n');
}

/** podman reads these too; a developer's own settings must not leak into a test host. */
function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = { ...env };
  for (const name of Object.keys(clean)) {
    if (name.startsWith('CONTAINERS_') || name.startsWith('CONTAINER_') || name === 'REGISTRY_AUTH_FILE' || name === 'DOCKER_HOST') {
      delete clean[name];
    }
  }
  return clean;
}

/** A TOML basic string. */
function toml(value: string): string {
  return JSON.stringify(value);
}

