/**
 * `node infra/local/install-bridge-venv.ts`: makes sure `.tools/bridge-venv` exists, a Python 3.11
 * venv with what docker/bridge/orbax_to_torch.py imports (torch, jax on CPU, flax, orbax-checkpoint,
 * numpy) plus what writes the tests' checkpoints the way the trainers do: torchax (its
 * save_checkpoint, the torchax trainer's orbax directories) and pytorch-lightning (a pl.Trainer fit,
 * the GPU trainers' epoch=<E>-step=<S>.ckpt files), and prints its python.
 *
 * The pins are the :unified image's: the subset of docker/images/unified/requirements.lock that
 * those packages need, installed as the image installs its lock (`pip install --no-deps
 * --require-hashes`), so the venv runs the converter on the same versions the stage does.
 * Left out: libtpu (a TPU runtime; JAX runs on the CPU here). PyPI has no CPU-only Linux torch,
 * so torch brings its CUDA packages: a 5.4 GB venv from 2.8 GB of wheels.
 *
 * Download cache: pip's own HTTP cache stores nothing here (the registry's responses carry no
 * caching headers), so the wheels are fetched once with `pip download` into a wheel cache
 * (RECOGDRIVE_BRIDGE_WHEELS, default `$XDG_CACHE_HOME/recogdrive/bridge-wheels`, outside the work
 * tree so a fresh clone on the same machine finds it) and installed from there with --no-index:
 * an install after the first downloads nothing.
 *
 * Idempotent: the venv's PINS file holds the installed pin set; when it equals the lock's subset the
 * venv is used as it is, otherwise it is rebuilt. Built in a staging folder and renamed into place,
 * so an interrupted install never looks installed (console scripts in bin/ keep the staging path in
 * their shebang: run `<venv>/bin/python -m ...`). Outside CI a failed install only warns (the bridge
 * tests then skip, saying why); in CI (CI=true) it fails, as those tests would.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { isExecutable } from './executable.ts';

const run = promisify(execFile);

export const BRIDGE_VENV_DIR = join(PROJECT_ROOT, '.tools', 'bridge-venv');
export const BRIDGE_PYTHON = join(BRIDGE_VENV_DIR, 'bin', 'python');
/** Where downloaded wheels are kept between installs (pip download skips a file already there with the right hash). */
export function bridgeWheelCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RECOGDRIVE_BRIDGE_WHEELS) return env.RECOGDRIVE_BRIDGE_WHEELS;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'recogdrive', 'bridge-wheels');
}
/** The lock the pins come from (the image that runs the converter). */
export const BRIDGE_LOCK = 'docker/images/unified/requirements.lock';
/** What the converter and its round-trip test import; their dependencies follow from the lock. */
export const BRIDGE_ROOTS = ['torch', 'jax', 'jaxlib', 'flax', 'orbax-checkpoint', 'numpy', 'ml-dtypes', 'torchax', 'pytorch-lightning'] as const;
/** In the lock through jax[tpu]; a TPU runtime that the CPU venv must not have. */
const LEFT_OUT = new Set(['libtpu']);
/** The image's interpreter line (python:3.11.15-slim): wheels and pins are for CPython 3.11. */
const PYTHON_MINOR = '3.11';

interface LockEntry {
  name: string;
  /** The requirement block as in the lock: `name==version \` and its `--hash` lines. */
  requirement: string;
  /** Lower-cased names of the packages that require it (`# via`), extras stripped. */
  via: string[];
}

/** The lock's entries: each `name==version` block with its hashes and `# via` names. */
export function parseLock(text: string): LockEntry[] {
  const entries: LockEntry[] = [];
  for (const block of text.split(/\n(?=[A-Za-z0-9][^\s]*==)/)) {
    const head = /^([A-Za-z0-9][A-Za-z0-9._-]*)==/.exec(block);
    if (head === null) continue;
    const lines = block.split('\n');
    const requirement = lines.filter((line) => !line.trimStart().startsWith('#')).join('\n').trim();
    const via: string[] = [];
    let inVia = false;
    for (const raw of lines) {
      const line = raw.trim();
      if (line.startsWith('# via')) {
        inVia = true;
        const rest = line.slice('# via'.length).trim();
        if (rest !== '') via.push(rest);
      } else if (inVia && line.startsWith('#')) {
        via.push(line.slice(1).trim());
      }
    }
    entries.push({ name: head[1]!.toLowerCase(), requirement, via: via.map((name) => name.split('[')[0]!.toLowerCase()) });
  }
  return entries;
}

/**
 * The requirements file for the venv: the roots and everything the lock says is required by
 * something already in the set (a fixed point over `# via`). That may take in a few packages that
 * only another image package's extra needs (harmless); `pip check` after the install proves that
 * nothing needed is missing.
 */
export function bridgeRequirements(lockText: string): string {
  const entries = parseLock(lockText);
  const chosen = new Set<string>(BRIDGE_ROOTS);
  for (const root of BRIDGE_ROOTS) {
    if (!entries.some((entry) => entry.name === root)) throw new Error(`${BRIDGE_LOCK} has no pin for ${root}`);
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const entry of entries) {
      if (chosen.has(entry.name) || LEFT_OUT.has(entry.name)) continue;
      if (entry.via.some((name) => chosen.has(name))) {
        chosen.add(entry.name);
        grew = true;
      }
    }
  }
  const lines = entries.filter((entry) => chosen.has(entry.name)).map((entry) => entry.requirement);
  return `# The subset of ${BRIDGE_LOCK} for ${BRIDGE_ROOTS.join(', ')} (written by infra/local/install-bridge-venv.ts)\n${lines.join('\n')}\n`;
}

/** The `name==version` pins of a requirements text: what PINS records. */
function pinSet(requirements: string): string {
  const pins = [...requirements.matchAll(/^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s\\]+)/gm)].map((m) => m[1]!);
  return `python ${PYTHON_MINOR}\n${pins.join('\n')}\n`;
}

async function wantedPins(): Promise<{ requirements: string; pins: string }> {
  const requirements = bridgeRequirements(await readFile(join(PROJECT_ROOT, BRIDGE_LOCK), 'utf8'));
  return { requirements, pins: pinSet(requirements) };
}

/** The venv's python when the wanted pin set is installed, else undefined. */
export async function findBridgeVenv(): Promise<string | undefined> {
  if (!(await isExecutable(BRIDGE_PYTHON))) return undefined;
  const installed = await readFile(join(BRIDGE_VENV_DIR, 'PINS'), 'utf8').catch(() => '');
  return installed === (await wantedPins()).pins ? BRIDGE_PYTHON : undefined;
}

/** A CPython 3.11 to build the venv from: python3.11 on PATH, else python3 if it is 3.11. */
async function basePython(): Promise<string> {
  for (const candidate of ['python3.11', 'python3']) {
    const version = await run(candidate, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']).then(
      (result) => result.stdout.trim(),
      () => undefined,
    );
    if (version === PYTHON_MINOR) return candidate;
  }
  throw new Error(`no CPython ${PYTHON_MINOR} found (python3.11 or python3 on PATH): the image's pins are for ${PYTHON_MINOR}`);
}

function failure(what: string, error: unknown): Error {
  const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join('\n');
  return new Error(`${what} failed: ${stderr || (error as Error).message}`, { cause: error });
}

/** Staging folders of installs whose process is gone (killed mid-install): gigabytes each. */
async function removeAbandonedStaging(): Promise<void> {
  const prefix = `${BRIDGE_VENV_DIR.split('/').at(-1)!}.installing-`;
  for (const name of await readdir(join(PROJECT_ROOT, '.tools')).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    let alive: boolean;
    try {
      process.kill(pid, 0);
      alive = pid !== process.pid;
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await rm(join(PROJECT_ROOT, '.tools', name), { recursive: true, force: true });
  }
}

/** The venv's python; builds the venv when the pin set changed or it is missing. */
export async function ensureBridgeVenv(log: (line: string) => void = () => {}): Promise<string> {
  await removeAbandonedStaging();
  const found = await findBridgeVenv();
  if (found !== undefined) return found;
  const { requirements, pins } = await wantedPins();
  const python = await basePython();
  const staging = `${BRIDGE_VENV_DIR}.installing-${process.pid}`;
  await mkdir(join(PROJECT_ROOT, '.tools'), { recursive: true });
  await rm(staging, { recursive: true, force: true });
  const count = pins.split('\n').length - 2;
  log(`installing ${count} pinned packages (${BRIDGE_ROOTS.join(', ')} from ${BRIDGE_LOCK}) into ${BRIDGE_VENV_DIR} (about 5.4 GB; wheels from ${bridgeWheelCache()}, downloaded when missing)`);
  const started = Date.now();
  try {
    await run(python, ['-m', 'venv', staging]).catch((error: unknown) => {
      throw failure(`${python} -m venv`, error);
    });
    const requirementsFile = join(staging, 'requirements.txt');
    await writeFile(requirementsFile, requirements);
    const stagingPython = join(staging, 'bin', 'python');
    const wheels = bridgeWheelCache();
    await mkdir(wheels, { recursive: true });
    const pip = ['-m', 'pip', '--disable-pip-version-check', '--no-input'];
    // As the image installs its lock: exact files by hash, no resolution of our own. Fetch what the
    // wheel cache lacks, then install from it alone.
    await run(stagingPython, [...pip, 'download', '--quiet', '--no-deps', '--require-hashes', '--dest', wheels, '-r', requirementsFile], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: unknown) => {
      throw failure(`pip download (into ${wheels})`, error);
    });
    await run(stagingPython, [...pip, 'install', '--quiet', '--no-index', '--find-links', wheels, '--no-deps', '--require-hashes', '-r', requirementsFile], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: unknown) => {
      throw failure('pip install', error);
    });
    // The subset was computed from `# via` lines: prove that every installed package has its dependencies.
    await run(stagingPython, [...pip, 'check']).catch((error: unknown) => {
      throw failure(`pip check (the subset of ${BRIDGE_LOCK} misses a dependency)`, { stderr: (error as { stdout?: unknown }).stdout, message: (error as Error).message });
    });
    await writeFile(join(staging, 'PINS'), pins);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  await rm(BRIDGE_VENV_DIR, { recursive: true, force: true });
  await rename(staging, BRIDGE_VENV_DIR);
  log(`installed ${BRIDGE_VENV_DIR} in ${Math.round((Date.now() - started) / 1000)} s`);
  return BRIDGE_PYTHON;
}

if (import.meta.main) {
  const log = (line: string): void => console.error(line);
  try {
    console.log(await ensureBridgeVenv(log));
  } catch (error) {
    if (process.env.CI === 'true') throw error;
    log(`warning: ${(error as Error).message} (the bridge tests that need it will skip)`);
  }
}
