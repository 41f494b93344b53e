/**
 * `recogdrive api`: serves the HTTP API until SIGINT/SIGTERM. Temporal from TEMPORAL_ADDRESS /
 * TEMPORAL_NAMESPACE / RECOGDRIVE_TASK_QUEUE, callers from RECOGDRIVE_API_TOKENS_FILE.
 */
import { once } from 'node:events';
import { Client, Connection } from '@temporalio/client';
import { configFromEnv, type WorkerConfig } from '../config.ts';
import { buildApp } from './app.ts';
import { apiConfigFromEnv, InvalidApiConfig } from './config.ts';

export { InvalidApiConfig } from './config.ts';

/** Temporal could not be reached at start. */
export class TemporalUnreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemporalUnreachable';
  }
}

export interface ServeOptions {
  port: number;
  host: string;
}

export async function serveApi(options: ServeOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let worker: WorkerConfig;
  try {
    worker = configFromEnv(env);
  } catch (error) {
    throw new InvalidApiConfig((error as Error).message);
  }
  const api = await apiConfigFromEnv(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: worker.TEMPORAL_ADDRESS, connectTimeout: 5000 });
  } catch (error) {
    throw new TemporalUnreachable(`cannot reach Temporal at ${worker.TEMPORAL_ADDRESS}: ${(error as Error).message}`);
  }
  const client = new Client({ connection, namespace: worker.TEMPORAL_NAMESPACE });
  const app = await buildApp({
    client,
    taskQueue: worker.RECOGDRIVE_TASK_QUEUE,
    allowedRoots: worker.RECOGDRIVE_ALLOWED_ROOTS,
    tokens: api.tokens,
    planSecret: api.planSecret,
    // Request lines without headers, bodies or query values (workers/api/request-log.ts).
    logger: { level: 'info' },
  });
  if (api.ephemeralSecret) app.log.warn('RECOGDRIVE_API_PLAN_SECRET is not set: plan tokens of dry runs are valid until this process exits');
  try {
    let address: string;
    try {
      address = await app.listen({ port: options.port, host: options.host });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new InvalidApiConfig(`port ${options.port} on ${options.host} is already in use`);
      throw error;
    }
    app.log.info(`recogdrive API on ${address} (OpenAPI: ${address}/openapi.json), Temporal ${worker.TEMPORAL_ADDRESS}, ${api.tokens.length} token(s)`);
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  } finally {
    await app.close();
    await connection.close();
  }
}
