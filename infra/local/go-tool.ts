/**
 * A tool of the tests written by others in Go, built from the Go module proxy with `go install`
 * into .tools/<name>/bin at a pinned version. A VERSION file beside the binary names the pin it
 * was built from, so a new pin rebuilds.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isExecutable } from './executable.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const run = promisify(execFile);

export interface GoTool {
  /** The folder under .tools/ and the binary's name (what `go install` calls it: the package path's last element). */
  name: string;
  /** package@version, as `go install` takes it. */
  goPackage: string;
  /** What the tool is to this project, for the error when it cannot be built. */
  purpose: string;
  /** The command that installs it, e.g. `node infra/local/install-registry.ts`. */
  installCommand: string;
  /** Which Go the error asks for, e.g. ">= 1.26". */
  goVersion?: string;
  /** How long a cold build takes, for the log line. */
  buildTime?: string;
}

export function goToolBinary(tool: GoTool): string {
  return join(PROJECT_ROOT, '.tools', tool.name, 'bin', tool.name);
}

const binDir = (tool: GoTool) => join(PROJECT_ROOT, '.tools', tool.name, 'bin');
const versionFile = (tool: GoTool) => join(PROJECT_ROOT, '.tools', tool.name, 'VERSION');

/** The binary's path when the pinned version is installed, else undefined. */
export async function findGoTool(tool: GoTool): Promise<string | undefined> {
  const binary = goToolBinary(tool);
  if (!(await isExecutable(binary))) return undefined;
  const built = await readFile(versionFile(tool), 'utf8').catch(() => '');
  return built.trim() === tool.goPackage ? binary : undefined;
}

/** The path of the pinned tool; builds it with `go install` when it is not there. */
export async function ensureGoTool(tool: GoTool, log: (line: string) => void = () => {}): Promise<string> {
  const found = await findGoTool(tool);
  if (found !== undefined) return found;
  const version = tool.goPackage.slice(tool.goPackage.lastIndexOf('@') + 1);
  try {
    await run('go', ['version']);
  } catch {
    throw new Error(
      `${tool.name} ${version} (${tool.purpose}) is not installed and \`go\` is not on PATH: ` +
        `install Go${tool.goVersion === undefined ? '' : ` ${tool.goVersion}`} and run \`${tool.installCommand}\` (it runs \`go install ${tool.goPackage}\` into ${binDir(tool)})`,
    );
  }
  await mkdir(binDir(tool), { recursive: true });
  log(`building ${tool.goPackage} into ${binDir(tool)} with go install${tool.buildTime === undefined ? '' : ` (${tool.buildTime})`}`);
  try {
    await run('go', ['install', tool.goPackage], { env: { ...process.env, GOBIN: binDir(tool) }, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`go install ${tool.goPackage} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
  const binary = goToolBinary(tool);
  if (!(await isExecutable(binary))) throw new Error(`go install finished but ${binary} is missing`);
  await writeFile(versionFile(tool), `${tool.goPackage}\n`);
  return binary;
}
