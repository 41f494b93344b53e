/**
 * The Cloud Storage emulator of the tests: fake-gcs-server (github.com/fsouza/fake-gcs-server,
 * written by others), built from the Go module proxy into .tools/fake-gcs-server/bin at a pinned
 * version. Needs `go` (>= 1.26 for this version; the machines have it preinstalled).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isExecutable } from './executable.ts';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const run = promisify(execFile);

/** The newest version the Go module proxy serves (`go list -m -versions github.com/fsouza/fake-gcs-server`). */
export const FAKE_GCS_SERVER_VERSION = 'v1.56.1';
export const FAKE_GCS_SERVER_GO_PACKAGE = `github.com/fsouza/fake-gcs-server@${FAKE_GCS_SERVER_VERSION}`;

const TOOLS_DIR = join(PROJECT_ROOT, '.tools', 'fake-gcs-server');
export const FAKE_GCS_SERVER_BINARY = join(TOOLS_DIR, 'bin', 'fake-gcs-server');
/** Which version the binary beside it was built from: a new pin rebuilds. */
const VERSION_FILE = join(TOOLS_DIR, 'VERSION');

/** The binary's path when the pinned version is installed, else undefined. */
export async function findFakeGcsServer(): Promise<string | undefined> {
  if (!(await isExecutable(FAKE_GCS_SERVER_BINARY))) return undefined;
  const built = await readFile(VERSION_FILE, 'utf8').catch(() => '');
  return built.trim() === FAKE_GCS_SERVER_GO_PACKAGE ? FAKE_GCS_SERVER_BINARY : undefined;
}

/** The path of the pinned fake-gcs-server; builds it with `go install` when it is not there. */
export async function ensureFakeGcsServer(log: (line: string) => void = () => {}): Promise<string> {
  const found = await findFakeGcsServer();
  if (found !== undefined) return found;
  try {
    await run('go', ['version']);
  } catch {
    throw new Error(
      `fake-gcs-server ${FAKE_GCS_SERVER_VERSION} (the Cloud Storage emulator of the tests) is not installed and \`go\` is not on PATH: ` +
        `install Go >= 1.26 and run \`node infra/local/install-gcs-emulator.ts\` (it runs \`go install ${FAKE_GCS_SERVER_GO_PACKAGE}\` into ${join(TOOLS_DIR, 'bin')})`,
    );
  }
  await mkdir(join(TOOLS_DIR, 'bin'), { recursive: true });
  log(`building ${FAKE_GCS_SERVER_GO_PACKAGE} into ${join(TOOLS_DIR, 'bin')} with go install (about a minute on 2 cores)`);
  try {
    await run('go', ['install', FAKE_GCS_SERVER_GO_PACKAGE], {
      env: { ...process.env, GOBIN: join(TOOLS_DIR, 'bin') },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`go install ${FAKE_GCS_SERVER_GO_PACKAGE} failed: ${stderr || (error as Error).message}`, { cause: error });
  }
  if (!(await isExecutable(FAKE_GCS_SERVER_BINARY))) throw new Error(`go install finished but ${FAKE_GCS_SERVER_BINARY} is missing`);
  await writeFile(VERSION_FILE, `${FAKE_GCS_SERVER_GO_PACKAGE}\n`);
  return FAKE_GCS_SERVER_BINARY;
}
