/**
 * The stage image of the test bed, built without a registry: a rootfs folder (busybox-static,
 * bash and node with the shared libraries ldd lists, tini as init, the stage simulator and its
 * python/pip shims, the stage wrapper with pipeline/ under /opt/recogdrive and its
 * /usr/local/bin/recogdrive-stage), tarred and `podman import`ed with the Dockerfile-like settings
 * below. What a production-like Dockerfile would look like: docker/stage-image/README.md.
 *
 * Cached under a folder keyed by a hash of the inputs (this recipe, the simulator's, the
 * wrapper's and pipeline/'s files, the binaries and libraries copied in), so a second build only hashes. Concurrent builders are safe:
 * everything is built under a temporary name and renamed into place.
 *
 *   node test/testbed/stage-image.ts [--cache DIR] [--tag TAG]... [--root GRAPHROOT --runroot RUNROOT]
 *
 * Without --root it only builds (or finds) the rootfs tarball; with it, it imports the image into
 * that podman storage under every --tag (default: recogdrive-tpu:stage1 and :unified).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { containerHost, podman, PODMAN, writeContainerHost, type ContainerHost } from './podman.ts';
import { check, unmountBelow } from './processes.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const SIMULATOR_DIR = path.join(REPO_ROOT, 'docker/simulator');
/** The stage wrapper and what it imports, copied under IMAGE_WRAPPER_ROOT with their repository layout. */
export const WRAPPER_DIRS = ['docker/stage-wrapper', 'pipeline'] as const;
/** /usr/local/bin/recogdrive-stage and /opt/recogdrive/package.json, as the real images get them (docker/stage-images/). */
const WRAPPER_SHIM = path.join(REPO_ROOT, 'docker/stage-images/recogdrive-stage');
const WRAPPER_PACKAGE_JSON = path.join(REPO_ROOT, 'docker/stage-images/package.json');
/** The Node 24 of the project's devDependency `node` (the binary copied into the image). */
export const NODE_BINARY = path.join(REPO_ROOT, 'node_modules/node/bin/node');
const BUSYBOX = '/bin/busybox';
const BASH = '/bin/bash';
const TINI = '/usr/bin/tini-static';

/** The tags the upstream stage images have (the orchestrator's specs name them with a registry prefix). */
export const DEFAULT_TAGS = ['recogdrive-tpu:stage1', 'recogdrive-tpu:unified'];

/** Where the simulator lives in the image, and the settings a Dockerfile would give. */
export const IMAGE_SIM_DIR = '/opt/recogdrive-sim';
/** Where the stage wrapper lives in the image (docker/stage-images/Dockerfile does the same). */
export const IMAGE_WRAPPER_ROOT = '/opt/recogdrive';
export const IMAGE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  RECOGDRIVE_SIM_NODE: '/usr/local/bin/node',
  RECOGDRIVE_SIM_MAIN: `${IMAGE_SIM_DIR}/main.ts`,
};
export const IMAGE_WORKDIR = '/recogdrive';
/**
 * tini as PID 1, as `docker run --init` would: the simulator's `oom` fault SIGKILLs itself, which
 * the kernel ignores for a namespace's init; under tini it dies and the container exits 137.
 * `-g` forwards `docker stop`'s SIGTERM to the whole process group (bash -c 'pip && python').
 */
export const IMAGE_ENTRYPOINT = ['/usr/bin/tini', '-g', '--'];
export const IMAGE_CMD = ['/bin/bash'];

export function defaultCacheDir(): string {
  return process.env.RECOGDRIVE_TESTBED_CACHE || path.join(REPO_ROOT, '.data/testbed-cache');
}

export interface StageRootfs {
  /** The rootfs tarball (in the cache; do not modify). */
  tarball: string;
  /** Hash of the build inputs: names the tarball and the image stores made from it. */
  key: string;
  /** False when it came from the cache. */
  built: boolean;
}

/** The rootfs tarball for the current inputs, built when the cache does not hold it. */
export async function stageRootfs(cacheDir = defaultCacheDir()): Promise<StageRootfs> {
  const inputs = await buildInputs();
  const key = inputs.key;
  const tarball = path.join(cacheDir, `rootfs-${key}.tar`);
  if (fs.existsSync(tarball)) return { tarball, key, built: false };

  fs.mkdirSync(cacheDir, { recursive: true });
  const staging = fs.mkdtempSync(path.join(cacheDir, `.rootfs-${key}-`));
  try {
    const rootfs = path.join(staging, 'rootfs');
    await makeRootfs(rootfs, inputs);
    const partial = path.join(staging, 'rootfs.tar');
    await check('tar', ['--create', '--file', partial, '--directory', rootfs, '--numeric-owner', '--owner=0', '--group=0', '--hard-dereference', '.']);
    fs.renameSync(partial, tarball);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  prune(cacheDir);
  return { tarball, key, built: true };
}

/** The `podman import --change` lines for the image settings above. */
export function importChanges(key: string): string[] {
  return [
    ...Object.entries(IMAGE_ENV).map(([name, value]) => `ENV ${name}=${value}`),
    `WORKDIR ${IMAGE_WORKDIR}`,
    `ENTRYPOINT ${JSON.stringify(IMAGE_ENTRYPOINT)}`,
    `CMD ${JSON.stringify(IMAGE_CMD)}`,
    `LABEL org.opencontainers.image.title=recogdrive-stage-simulator`,
    `LABEL recogdrive.testbed.inputs=${key}`,
  ];
}

/**
 * Imports the rootfs as an image under `tags` into a podman storage; returns the image ID.
 * `podmanArgs` select the storage (e.g. --root/--runroot) when `host` is not given.
 */
export async function importStageImage(
  rootfs: StageRootfs,
  tags: readonly string[],
  target: { host: ContainerHost } | { podmanArgs: string[] },
): Promise<string> {
  const [first, ...rest] = tags;
  if (first === undefined) throw new Error('importStageImage needs at least one tag');
  const runPodman = (args: string[]) =>
    'host' in target ? podman(target.host, args) : check(PODMAN, [...target.podmanArgs, ...args]).then((stdout) => ({ code: 0, stdout, stderr: '' }));
  const changes = importChanges(rootfs.key).flatMap((change) => ['--change', change]);
  const imported = await runPodman(['import', '--quiet', ...changes, rootfs.tarball, first]);
  if (imported.code !== 0) throw new Error(`podman import failed: ${imported.stderr.trim()}`);
  const id = imported.stdout.trim().split('\n').at(-1) ?? '';
  if (rest.length > 0) {
    const tagged = await runPodman(['tag', id, ...rest]);
    if (tagged.code !== 0) throw new Error(`podman tag failed: ${tagged.stderr.trim()}`);
  }
  return id.replace(/^sha256:/, '');
}

/**
 * A podman storage (graphroot) holding the stage image under `tags`, to be copied into a test-bed
 * worker's storage with installImageStore. It has no libpod database (that records absolute paths):
 * only images and layers, which containers/storage keeps by ID.
 */
export async function stageImageStore(tags: readonly string[], cacheDir = defaultCacheDir()): Promise<{ graphRoot: string; rootfs: StageRootfs }> {
  const rootfs = await stageRootfs(cacheDir);
  const key = hash([rootfs.key, ...tags]).slice(0, 16);
  const dir = path.join(cacheDir, 'stores', key);
  const graphRoot = path.join(dir, 'storage');
  if (fs.existsSync(path.join(dir, 'READY'))) {
    touch(dir);
    return { graphRoot, rootfs };
  }
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const staging = fs.mkdtempSync(`${dir}.tmp-`);
  const host = containerHost(staging);
  try {
    writeContainerHost(host);
    await importStageImage(rootfs, tags, { host });
    await unmountBelow(staging);
    for (const transient of ['storage/libpod', 'storage/tmp']) fs.rmSync(path.join(staging, transient), { recursive: true, force: true });
    fs.writeFileSync(path.join(staging, 'READY'), `${JSON.stringify({ rootfs: rootfs.key, tags })}\n`);
    try {
      fs.renameSync(staging, dir);
    } catch (error) {
      // Another process finished the same store first: use theirs.
      if (!fs.existsSync(path.join(dir, 'READY'))) throw error;
    }
  } finally {
    await unmountBelow(staging);
    fs.rmSync(staging, { recursive: true, force: true });
    fs.rmSync(host.stateDir, { recursive: true, force: true });
  }
  prune(cacheDir);
  return { graphRoot, rootfs };
}

/**
 * Copies an image store into a (new, empty) graphroot. Layer contents are hard links (the store's
 * layers are never written: containers write to their own upper layer); everything else, lock
 * files included, is copied so the two storages share no state.
 */
export async function installImageStore(template: string, graphRoot: string): Promise<void> {
  const layerDirs: [string, string][] = [];
  const walk = (rel: string) => {
    const src = path.join(template, rel);
    const dst = path.join(graphRoot, rel);
    const stat = fs.lstatSync(src);
    if (stat.isDirectory()) {
      if (/^overlay\/[^/]+\/diff$/.test(rel)) {
        layerDirs.push([src, dst]);
        return;
      }
      fs.mkdirSync(dst, { recursive: true });
      fs.chmodSync(dst, stat.mode & 0o7777);
      for (const entry of fs.readdirSync(src)) walk(path.join(rel, entry));
    } else if (stat.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src), dst);
    } else if (stat.isFile()) {
      fs.copyFileSync(src, dst);
      fs.chmodSync(dst, stat.mode & 0o7777);
    }
  };
  fs.mkdirSync(graphRoot, { recursive: true });
  for (const entry of fs.readdirSync(template)) walk(entry);
  for (const [src, dst] of layerDirs) {
    try {
      await check('cp', ['-a', '--link', src, dst]);
    } catch {
      // Another filesystem (e.g. the cache on disk, the test bed on tmpfs): copy instead.
      fs.rmSync(dst, { recursive: true, force: true });
      await check('cp', ['-a', src, dst]);
    }
  }
}

// ---- the rootfs ------------------------------------------------------------------------

interface BuildInputs {
  key: string;
  node: string;
  libraries: string[];
  simulatorFiles: string[];
  /** Repository-relative paths of the wrapper's files (WRAPPER_DIRS). */
  wrapperFiles: string[];
}

/** Everything that decides the rootfs's content, hashed (file contents for the simulator, path/size/mtime for binaries). */
async function buildInputs(): Promise<BuildInputs> {
  const node = fs.realpathSync(NODE_BINARY);
  const libraries = [...new Set([...(await sharedLibraries(node)), ...(await sharedLibraries(BASH))])].sort();
  const simulatorFiles = listFiles(SIMULATOR_DIR);
  const wrapperFiles = WRAPPER_DIRS.flatMap((dir) => listFiles(path.join(REPO_ROOT, dir)).map((rel) => path.join(dir, rel)));
  const busyboxVersion = (await check(BUSYBOX, ['--help']).catch(() => '')).split('\n')[0] ?? '';
  const describe = (file: string) => {
    const stat = fs.statSync(file);
    return `${file} ${fs.realpathSync(file)} ${stat.size} ${stat.mtimeMs}`;
  };
  const key = hash([
    fs.readFileSync(import.meta.filename, 'utf8'),
    busyboxVersion,
    ...[node, BUSYBOX, BASH, TINI, ...libraries].map(describe),
    ...simulatorFiles.flatMap((rel) => [rel, fs.readFileSync(path.join(SIMULATOR_DIR, rel), 'utf8')]),
    ...[...wrapperFiles, path.relative(REPO_ROOT, WRAPPER_SHIM), path.relative(REPO_ROOT, WRAPPER_PACKAGE_JSON)].flatMap((rel) => [
      rel,
      fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8'),
    ]),
  ]).slice(0, 16);
  return { key, node, libraries, simulatorFiles, wrapperFiles };
}

async function makeRootfs(rootfs: string, inputs: BuildInputs): Promise<void> {
  const at = (p: string) => path.join(rootfs, p);
  for (const dir of ['bin', 'usr/bin', 'usr/local/bin', 'etc', 'root', 'dev', 'proc', 'sys', 'run', IMAGE_WORKDIR, IMAGE_SIM_DIR]) {
    fs.mkdirSync(at(dir), { recursive: true });
  }
  for (const dir of ['tmp', 'var/tmp']) {
    fs.mkdirSync(at(dir), { recursive: true });
    fs.chmodSync(at(dir), 0o1777);
  }

  // busybox with every applet in /bin and /usr/bin; bash and node are the host's, with their libraries.
  copyBinary(BUSYBOX, at('bin/busybox'));
  copyBinary(BASH, at('bin/bash'));
  copyBinary(TINI, at('usr/bin/tini'));
  copyBinary(inputs.node, at('usr/local/bin/node'));
  for (const library of inputs.libraries) {
    fs.mkdirSync(path.dirname(at(library)), { recursive: true });
    copyBinary(fs.realpathSync(library), at(library));
  }
  const applets = (await check(BUSYBOX, ['--list'])).split('\n').filter((a) => /^[\w.[-]+$/.test(a));
  for (const applet of applets) {
    for (const dir of ['bin', 'usr/bin']) {
      if (!fs.existsSync(at(`${dir}/${applet}`))) fs.symlinkSync('/bin/busybox', at(`${dir}/${applet}`));
    }
  }

  // The simulator and its shims as the image's python, pip and torchrun.
  for (const rel of inputs.simulatorFiles) {
    const target = at(path.join(IMAGE_SIM_DIR, rel));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(SIMULATOR_DIR, rel), target);
  }
  for (const shim of ['python', 'pip', 'torchrun']) {
    fs.copyFileSync(path.join(SIMULATOR_DIR, 'shims', shim), at(`usr/local/bin/${shim}`));
    fs.chmodSync(at(`usr/local/bin/${shim}`), 0o755);
    fs.chmodSync(at(path.join(IMAGE_SIM_DIR, 'shims', shim)), 0o755);
  }

  // The stage wrapper: /opt/recogdrive/{docker/stage-wrapper,pipeline}, its node (the image's), the shim.
  for (const rel of inputs.wrapperFiles) {
    const target = at(path.join(IMAGE_WRAPPER_ROOT, rel));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(REPO_ROOT, rel), target);
  }
  fs.chmodSync(at(path.join(IMAGE_WRAPPER_ROOT, 'docker/stage-wrapper/bin/recogdrive-stage')), 0o755);
  fs.copyFileSync(WRAPPER_PACKAGE_JSON, at(path.join(IMAGE_WRAPPER_ROOT, 'package.json')));
  fs.mkdirSync(at(path.join(IMAGE_WRAPPER_ROOT, 'bin')), { recursive: true });
  fs.symlinkSync('/usr/local/bin/node', at(path.join(IMAGE_WRAPPER_ROOT, 'bin/node')));
  fs.copyFileSync(WRAPPER_SHIM, at('usr/local/bin/recogdrive-stage'));
  fs.chmodSync(at('usr/local/bin/recogdrive-stage'), 0o755);

  fs.writeFileSync(at('etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(at('etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

/** Hard link when possible (the tarball stores the content either way), else copy. */
function copyBinary(source: string, target: string): void {
  try {
    fs.linkSync(source, target);
  } catch {
    fs.copyFileSync(source, target);
    fs.chmodSync(target, fs.statSync(source).mode & 0o7777);
  }
}

/** The absolute paths `ldd` lists for a binary (the loader included). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const output = await check('ldd', [binary]);
  return [...output.matchAll(/(?:=> )?(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
}

/** Files below `dir`, relative and sorted. */
function listFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => fs.statSync(path.join(dir, rel)).isFile())
    .sort();
}

function hash(parts: readonly string[]): string {
  const h = crypto.createHash('sha256');
  for (const part of parts) h.update(`${part.length}:${part}\n`);
  return h.digest('hex');
}

function touch(p: string): void {
  const now = new Date();
  fs.utimesSync(p, now, now);
}

/** Keeps the newest few tarballs and stores; older ones (unused for 10 min) go. */
function prune(cacheDir: string): void {
  const stale = (dir: string, pattern: RegExp, keep: number) => {
    if (!fs.existsSync(dir)) return;
    const entries = fs
      .readdirSync(dir)
      .filter((name) => pattern.test(name))
      .map((name) => ({ file: path.join(dir, name), mtime: fs.statSync(path.join(dir, name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const entry of entries.slice(keep)) {
      if (Date.now() - entry.mtime > 10 * 60_000) fs.rmSync(entry.file, { recursive: true, force: true });
    }
  };
  stale(cacheDir, /^rootfs-[0-9a-f]+\.tar$/, 3);
  stale(path.join(cacheDir, 'stores'), /^[0-9a-f]+$/, 6);
}

// ---- command line ----------------------------------------------------------------------

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      cache: { type: 'string' },
      tag: { type: 'string', multiple: true },
      root: { type: 'string' },
      runroot: { type: 'string' },
    },
  });
  const started = performance.now();
  const rootfs = await stageRootfs(values.cache ?? defaultCacheDir());
  const summary: Record<string, unknown> = { ...rootfs, ms: Math.round(performance.now() - started) };
  if (values.root !== undefined) {
    const tags = values.tag ?? DEFAULT_TAGS;
    const podmanArgs = ['--root', values.root, ...(values.runroot === undefined ? [] : ['--runroot', values.runroot])];
    summary.imageId = await importStageImage(rootfs, tags, { podmanArgs });
    summary.tags = tags;
    summary.ms = Math.round(performance.now() - started);
  }
  console.log(JSON.stringify(summary, null, 2));
}
