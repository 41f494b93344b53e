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

/** Where a GPU worker's `docker run --gpus` tells the container how many GPUs it sees (docker/simulator reads it). */
export const SIM_GPUS_ENV = 'RECOGDRIVE_SIM_GPUS';
/** Docker's refusal of `--gpus` on a host without a GPU runtime (the NVIDIA container toolkit), exit 125. */
export const NO_GPU_RUNTIME_ERROR = 'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].';

/** podman run/create options that take a value as the next argument (podman 4.3; `--opt=value` needs no entry). */
const VALUE_OPTIONS = [
  '-a', '-c', '-e', '-h', '-l', '-m', '-p', '-u', '-v', '-w',
  '--add-host', '--annotation', '--arch', '--attach', '--authfile', '--blkio-weight', '--blkio-weight-device', '--cap-add', '--cap-drop',
  '--cgroup-conf', '--cgroup-parent', '--cgroupns', '--cgroups', '--chrootdirs', '--cidfile', '--conmon-pidfile', '--cpu-period', '--cpu-quota',
  '--cpu-rt-period', '--cpu-rt-runtime', '--cpu-shares', '--cpus', '--cpuset-cpus', '--cpuset-mems', '--detach-keys', '--device',
  '--device-cgroup-rule', '--device-read-bps', '--device-read-iops', '--device-write-bps', '--device-write-iops', '--dns', '--dns-option',
  '--dns-search', '--entrypoint', '--env', '--env-file', '--expose', '--gidmap', '--group-add', '--health-cmd', '--health-interval',
  '--health-retries', '--health-start-period', '--health-timeout', '--hostname', '--hostuser', '--image-volume', '--init-path', '--ip', '--ip6',
  '--ipc', '--label', '--label-file', '--log-driver', '--log-opt', '--mac-address', '--memory', '--memory-reservation', '--memory-swap',
  '--memory-swappiness', '--mount', '--name', '--net', '--network', '--network-alias', '--oom-score-adj', '--os', '--passwd-entry',
  '--personality', '--pid', '--pidfile', '--pids-limit', '--platform', '--pod', '--pod-id-file', '--preserve-fds', '--pull', '--requires',
  '--restart', '--runtime', '--sdnotify', '--seccomp-policy', '--secret', '--security-opt', '--shm-size', '--stop-signal', '--stop-timeout',
  '--subgidname', '--subuidname', '--sysctl', '--timeout', '--tmpfs', '--uidmap', '--ulimit', '--umask', '--user', '--userns', '--uts',
  '--variant', '--volume', '--volumes-from', '--workdir',
];

/**
 * A `docker` command for this host: podman with the host's config (a POSIX sh script).
 *
 * GPUs: podman 4.3 has no `--gpus`. Real Docker with the NVIDIA container toolkit gives a
 * container the host's GPUs with `docker run --gpus all` (or `--gpus N`, `--gpus device=0,1`).
 * Here `run`/`create` take `--gpus` (before the image) off podman's arguments and, on a worker
 * with `gpus` > 0, start the container with RECOGDRIVE_SIM_GPUS=<count> (what the stage
 * simulator reads as the GPUs it sees) and NVIDIA_VISIBLE_DEVICES (as the toolkit sets it); more
 * GPUs than the worker has fail with exit 125. A worker without GPUs refuses `--gpus` as Docker
 * without a GPU runtime does: NO_GPU_RUNTIME_ERROR on stderr, exit 125 (Docker leaves the created
 * container behind in state Created; here none is created).
 */
export function dockerShim(host: ContainerHost, options: { gpus?: number; createLog?: string } & VmRegistrySettings = {}): string {
  const gpus = options.gpus ?? 0;
  if (!Number.isInteger(gpus) || gpus < 0) throw new Error(`gpus must be a non-negative integer (got ${gpus})`);
  return [
    '#!/bin/sh',
    `# docker for the test-bed container host ${host.dir}: podman with that host's own storage and config.`,
    `CONTAINERS_CONF=${quote(host.containersConf)}`,
    `CONTAINERS_STORAGE_CONF=${quote(host.storageConf)}`,
    'export CONTAINERS_CONF CONTAINERS_STORAGE_CONF',
    ...(options.authFile === undefined
      ? []
      : [
          '# docker login credentials stay on this VM. podman fails on a REGISTRY_AUTH_FILE that is missing; Docker without a config.json does not.',
          `REGISTRY_AUTH_FILE=${quote(options.authFile)}`,
          'export REGISTRY_AUTH_FILE',
          `[ -e "$REGISTRY_AUTH_FILE" ] || { mkdir -p ${quote(path.dirname(options.authFile))} && printf '{"auths": {}}\n' > "$REGISTRY_AUTH_FILE"; }`,
        ]),
    ...(options.registriesConf === undefined ? [] : [`CONTAINERS_REGISTRIES_CONF=${quote(options.registriesConf)}`, 'export CONTAINERS_REGISTRIES_CONF']),
    `# GPUs of this worker (0: Docker without a GPU runtime): what \`--gpus\` gives a container.`,
    `GPUS=${gpus}`,
    'case "$1" in',
    '  run|create) lead=1 ;;',
    `  container) case "$2" in run|create) lead=2 ;; *) exec ${PODMAN} "$@" ;; esac ;;`,
    `  *) exec ${PODMAN} "$@" ;;`,
    'esac',
    ...(options.createLog === undefined ? [] : createLogLines(options.createLog)),
    'gpus_env() {',
    '  want=$(printf %s "$1" | tr -d \'"\')',
    '  if [ "$GPUS" -eq 0 ]; then',
    `    echo ${quote(NO_GPU_RUNTIME_ERROR)} >&2`,
    '    exit 125',
    '  fi',
    '  case $want in',
    '    all) count=$GPUS; devices=all ;;',
    '    device=*)',
    '      devices=${want#device=}',
    '      count=0',
    '      for id in $(printf %s "$devices" | tr , " "); do',
    '        case $id in ""|*[!0-9]*) echo "docker: invalid --gpus device \\"$id\\" (test bed: device=I[,J...])" >&2; exit 125 ;; esac',
    '        if [ "$id" -ge "$GPUS" ]; then echo "docker: Error response from daemon: failed to create task for container: nvidia-container-cli: device error: $id: unknown device (test bed: this worker has $GPUS GPUs)" >&2; exit 125; fi',
    '        count=$((count + 1))',
    '      done ;;',
    '    ""|*[!0-9]*) echo "docker: invalid argument \\"$want\\" for \\"--gpus\\" flag (test bed: all, N or device=I[,J...])" >&2; exit 125 ;;',
    '    *)',
    '      count=$want',
    '      if [ "$count" -gt "$GPUS" ]; then echo "docker: Error response from daemon: failed to create task for container: nvidia-container-cli: requested $count GPUs, this worker has $GPUS (test bed)" >&2; exit 125; fi',
    '      devices=$(seq -s , 0 $((count - 1)))',
    '      [ "$count" -gt 0 ] || devices= ;;',
    '  esac',
    '}',
    '# Rotate the arguments once ("$@" is rebuilt in order): take --gpus out of the options, and put',
    '# the GPU variables in front of the image (the first argument that is not an option or its value).',
    'n=$#',
    'i=0',
    'while [ $i -lt $lead ]; do a=$1; shift; set -- "$@" "$a"; i=$((i + 1)); done',
    'in_options=1; value_next=; gpus_next=; want=',
    'while [ $i -lt $n ]; do',
    '  a=$1; shift; i=$((i + 1))',
    '  if [ -n "$gpus_next" ]; then want=$a; gpus_next=; continue; fi',
    '  if [ $in_options = 1 ]; then',
    '    if [ -n "$value_next" ]; then value_next=; set -- "$@" "$a"; continue; fi',
    '    case $a in',
    '      --gpus) gpus_next=1; continue ;;',
    '      --gpus=*) want=${a#--gpus=}; continue ;;',
    `      ${VALUE_OPTIONS.join('|')}) value_next=1 ;;`,
    '      --|[!-]*|-)',
    '        # the image (or "--" before it): the options end here',
    '        in_options=0',
    '        if [ -n "$want" ]; then',
    '          gpus_env "$want"',
    `          if [ "$count" -gt 0 ]; then set -- "$@" -e "${SIM_GPUS_ENV}=$count" -e "NVIDIA_VISIBLE_DEVICES=$devices"; fi`,
    '        fi ;;',
    '    esac',
    '  fi',
    '  set -- "$@" "$a"',
    'done',
    'if [ -n "$gpus_next" ]; then echo "docker: flag needs an argument: --gpus" >&2; exit 125; fi',
    `exec ${PODMAN} "$@"`,
    '',
  ].join('\n');
}

/** A bare VM's registry settings: where `docker login` keeps credentials, and its registries.conf. */
export interface VmRegistrySettings {
  /** REGISTRY_AUTH_FILE: what `docker login` writes and pull/push read. */
  authFile?: string;
  /** CONTAINERS_REGISTRIES_CONF (see registriesConf). */
  registriesConf?: string;
}

/**
 * A registries.conf for a VM: short names resolve on docker.io as Docker does, and the given
 * registries ("127.0.0.1:5123") are plain HTTP, as Docker's `insecure-registries` (a local test registry).
 */
export function registriesConf(insecureRegistries: readonly string[]): string {
  return [
    '# Test-bed VM: read by podman through CONTAINERS_REGISTRIES_CONF (no other registries.conf is read).',
    'unqualified-search-registries = ["docker.io"]',
    'short-name-mode = "permissive"',
    ...insecureRegistries.flatMap((location) => {
      if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(location)) throw new Error(`insecure registry must be host[:port] (got ${JSON.stringify(location)})`);
      return ['', '[[registry]]', `location = ${toml(location)}`, 'insecure = true'];
    }),
    '',
  ].join('\n');
}

/**
 * Shim lines that append "<UTC time>\t<--name>\t<recogdrive.attempt label>" to `file` for every
 * `docker run`/`create`, before podman runs, so a test can count the containers each attempt
 * asked a host for (test/chaos/). A try cut off by a dropped connection is counted too.
 */
function createLogLines(file: string): string[] {
  return [
    'name=; attempt=; prev=',
    'for a in "$@"; do',
    '  case $prev in',
    '    --name) name=$a ;;',
    '    --label) case $a in recogdrive.attempt=*) attempt=${a#recogdrive.attempt=} ;; esac ;;',
    '  esac',
    '  prev=$a',
    'done',
    `printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$name" "$attempt" >> ${quote(file)}`,
  ];
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

