/**
 * The image registry of the tests: the CNCF distribution registry (github.com/distribution/
 * distribution, written by others), built from the Go module proxy into .tools/registry/bin at a
 * pinned version, run on 127.0.0.1 with htpasswd users and filesystem storage.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { freePort } from './dev-server.ts';
import { ensureGoTool, findGoTool, goToolBinary, type GoTool } from './go-tool.ts';

export const REGISTRY_VERSION = 'v3.1.2';
export const REGISTRY_GO_PACKAGE = `github.com/distribution/distribution/v3/cmd/registry@${REGISTRY_VERSION}`;

const TOOL: GoTool = {
  name: 'registry',
  goPackage: REGISTRY_GO_PACKAGE,
  purpose: 'the image registry of the tests',
  installCommand: 'node infra/local/install-registry.ts',
  buildTime: 'about two minutes cold on 2 cores',
};

export const REGISTRY_BINARY = goToolBinary(TOOL);

/** The binary's path when the pinned version is installed, else undefined. */
export async function findRegistry(): Promise<string | undefined> {
  return findGoTool(TOOL);
}

/** The path of the pinned registry; builds it with `go install` when it is not there. */
export async function ensureRegistry(log: (line: string) => void = () => {}): Promise<string> {
  return ensureGoTool(TOOL, log);
}

export interface RunningRegistry {
  /** host:port, as image references name it. */
  host: string;
  url: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Holds the configuration, the htpasswd file, the stored images and the registry's log. */
  dir: string;
  /** User → password; every request must carry one of them. */
  users: Record<string, string>;
  /** The binary; the installed pinned one when omitted. */
  binary?: string;
  startTimeoutMs?: number;
}

/** Starts the registry on a free port of 127.0.0.1 and waits until `/v2/` asks for credentials. */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const binary = options.binary ?? (await findRegistry());
  if (binary === undefined) throw new Error(`the registry is not installed: run \`${TOOL.installCommand}\``);
  await mkdir(join(options.dir, 'data'), { recursive: true });
  // The registry reads bcrypt hashes only.
  const htpasswd = Object.entries(options.users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 6)}`);
  await writeFile(join(options.dir, 'htpasswd'), `${htpasswd.join('\n')}\n`, { mode: 0o600 });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(join(options.dir, 'data'))}`,
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    'auth:',
    '  htpasswd:',
    '    realm: recogdrive-test-registry',
    `    path: ${JSON.stringify(join(options.dir, 'htpasswd'))}`,
    '',
  ].join('\n');
  const configFile = join(options.dir, 'config.yml');
  await writeFile(configFile, config);

  const child = spawn(binary, ['serve', configFile], {
    // Its tracing exporter would otherwise try to reach a collector.
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let exitCode: number | null | undefined;
  void exited.then(() => (exitCode = child.exitCode));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const url = `http://${host}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`the registry exited (code ${exitCode}) while starting:\n${output.trim()}`);
    const status = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status,
      () => undefined,
    );
    if (status === 401) return { host, url, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the registry did not answer on ${url}/v2/ within the start timeout${status === undefined ? '' : ` (last status ${status})`}:\n${output.trim()}`);
    }
    await sleep(100);
  }
}
