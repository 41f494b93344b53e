/** Configuration of the worker and local tools, from the environment, validated at start. */
import { join } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './project-root.ts';

export const DEFAULT_TASK_QUEUE = 'recogdrive';

const Env = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[A-Za-z0-9.-]+:\d+$/, 'host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  RECOGDRIVE_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  RECOGDRIVE_DATA_DIR: z.string().startsWith('/', 'must be an absolute path').default(join(PROJECT_ROOT, '.data')),
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
