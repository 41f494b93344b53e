/**
 * A Cloud Storage emulator for tests: the pinned fake-gcs-server (infra/local/fake-gcs-server.ts)
 * on a free loopback port, plain HTTP, in-memory. Tests skip with the reason when the binary is
 * missing, except in CI (CI=true), where a skip would hide a missing install.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FAKE_GCS_SERVER_BINARY, FAKE_GCS_SERVER_GO_PACKAGE } from '../../infra/local/fake-gcs-server.ts';
import { freePort } from '../../infra/local/dev-server.ts';

export interface GcsEmulator {
  /** http://127.0.0.1:<port>: the client's apiEndpoint. */
  apiEndpoint: string;
  projectId: string;
  createBucket(name: string): Promise<void>;
  /** The emulator's output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

export function gcsEmulatorUnmet(): string | undefined {
  return fs.existsSync(FAKE_GCS_SERVER_BINARY)
    ? undefined
    : `needs fake-gcs-server at ${FAKE_GCS_SERVER_BINARY}: run node infra/local/install-gcs-emulator.ts (go install ${FAKE_GCS_SERVER_GO_PACKAGE})`;
}

/** A node:test `skip` value: the reason, or false (always false in CI). */
export function gcsEmulatorSkip(): string | false {
  const unmet = gcsEmulatorUnmet();
  return unmet !== undefined && process.env.CI !== 'true' ? unmet : false;
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms).then(() => false),
  ]);
}

export interface GcsEmulatorOptions {
  projectId?: string;
  startTimeoutMs?: number;
  /**
   * Objects to load at start: `<seedDir>/<bucket>/<object name>`. With it the emulator keeps its
   * objects on disk under `filesystemRoot` (its memory backend inserts in O(n), too slow for 100k objects).
   */
  seed?: { seedDir: string; filesystemRoot: string };
  /** The location every bucket reports (the emulator ignores the one asked for at creation). Default US-CENTRAL1. */
  location?: string;
  /** Listen on this port (a restart at the same endpoint, test/chaos/); a free one when omitted. */
  port?: number;
}

export async function startGcsEmulator(options: GcsEmulatorOptions = {}): Promise<GcsEmulator> {
  const unmet = gcsEmulatorUnmet();
  if (unmet !== undefined) throw new Error(unmet);
  const projectId = options.projectId ?? 'test-project';
  const port = options.port ?? (await freePort());
  const apiEndpoint = `http://127.0.0.1:${port}`;
  const child = spawn(
    FAKE_GCS_SERVER_BINARY,
    [
      '-scheme', 'http',
      ...(options.seed === undefined
        ? ['-backend', 'memory']
        : ['-backend', 'filesystem', '-filesystem-root', options.seed.filesystemRoot, '-data', options.seed.seedDir]),
      '-host', '127.0.0.1',
      '-port', String(port),
      // URLs it hands out (upload Location, mediaLink) point back at this address, not at storage.googleapis.com.
      '-public-host', `127.0.0.1:${port}`,
      '-external-url', apiEndpoint,
      '-log-level', 'warn',
      ...(options.location === undefined ? [] : ['-location', options.location]),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
  spawnError.catch(() => {}); // observed below through the race

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    if (!(await waitExit(child, 3000))) {
      child.kill('SIGKILL');
      await waitExit(child, 3000);
    }
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`fake-gcs-server exited with ${child.exitCode} before answering: ${output.trim()}`);
    try {
      const answered = await Promise.race([fetch(`${apiEndpoint}/storage/v1/b?project=${projectId}`), spawnError]);
      if (answered.ok) break;
    } catch (error) {
      if (!(error instanceof TypeError)) {
        await stop();
        throw error; // the spawn failed
      }
      // TypeError: fetch failed (not listening yet)
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`fake-gcs-server did not answer on ${apiEndpoint} within ${options.startTimeoutMs ?? 15_000} ms: ${output.trim()}`);
    }
    await sleep(50);
  }

  return {
    apiEndpoint,
    projectId,
    output: () => output,
    async createBucket(name: string): Promise<void> {
      const response = await fetch(`${apiEndpoint}/storage/v1/b?project=${encodeURIComponent(projectId)}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      if (!response.ok) throw new Error(`creating bucket ${name} on the emulator: HTTP ${response.status} ${await response.text()}`);
    },
    stop,
  };
}
