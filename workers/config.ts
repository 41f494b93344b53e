/** Configuration of the worker and local tools, from the environment, validated at start. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './project-root.ts';

export const DEFAULT_TASK_QUEUE = 'recogdrive';

const AbsolutePath = z.string().startsWith('/', 'must be an absolute path');
const PositiveInt = z.coerce.number().int().positive();

const Env = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[A-Za-z0-9.-]+:\d+$/, 'host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  RECOGDRIVE_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  RECOGDRIVE_DATA_DIR: AbsolutePath.default(join(PROJECT_ROOT, '.data')),
  // SSH to stage workers (static hosts, TPU VMs). The key itself is read by activities/ssh/credentials.ts.
  RECOGDRIVE_SSH_KEY_FILE: AbsolutePath.optional(),
  RECOGDRIVE_KNOWN_HOSTS: AbsolutePath.default(join(homedir(), '.ssh', 'known_hosts')),
  RECOGDRIVE_REMOTE_SUDO: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** Where workers see gs:// artifacts (gcsfuse mount root). */
  RECOGDRIVE_ARTIFACT_MOUNT_ROOT: AbsolutePath.default('/mnt/artifacts'),
  RECOGDRIVE_SSH_CONNECT_DEADLINE_MS: PositiveInt.default(180_000),
  /** A poll of a running stage gives up connecting after this long; a host silent for 3 polls is lost. */
  RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS: PositiveInt.default(10_000),
  RECOGDRIVE_SSH_MAX_CONNECTIONS: PositiveInt.default(64),
  RECOGDRIVE_SSH_CHANNELS_PER_CONNECTION: PositiveInt.default(8),
});

export type WorkerConfig = z.output<typeof Env>;

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n  - ${lines.join('\n  - ')}`);
  }
  return parsed.data;
}
