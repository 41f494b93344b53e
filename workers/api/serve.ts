/**
 * `recogdrive api`: serves the HTTP API until SIGINT/SIGTERM. Temporal from TEMPORAL_ADDRESS /
 * TEMPORAL_NAMESPACE / RECOGDRIVE_TASK_QUEUE, callers from RECOGDRIVE_API_TOKENS_FILE.
 */
import { once } from 'node:events';
import { Client, Connection } from '@temporalio/client';
import { configFromEnv } from '../config.ts';
import { buildApp } from './app.ts';
import { apiConfigFromEnv } from './config.ts';

export interface ServeOptions {
  port: number;
  host: string;
}

export async function serveApi(options: ServeOptions, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const worker = configFromEnv(env);
  const api = await apiConfigFromEnv(env);
  const connection = await Connection.connect({ address: worker.TEMPORAL_ADDRESS, connectTimeout: 5000 });
  const client = new Client({ connection, namespace: worker.TEMPORAL_NAMESPACE });
  const app = await buildApp({
    client,
    taskQueue: worker.RECOGDRIVE_TASK_QUEUE,
    tokens: api.tokens,
    planSecret: api.planSecret,
    // Request lines without headers (pino's default serializers); the Authorization header is redacted should one be logged.
    logger: { level: 'info', redact: ['req.headers.authorization'] },
  });
  if (api.ephemeralSecret) app.log.warn('RECOGDRIVE_API_PLAN_SECRET is not set: plan tokens of dry runs are valid until this process exits');
  try {
    const address = await app.listen({ port: options.port, host: options.host });
    app.log.info(`recogdrive API on ${address} (OpenAPI: ${address}/openapi.json), Temporal ${worker.TEMPORAL_ADDRESS}, ${api.tokens.length} token(s)`);
    await Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]);
  } finally {
    await app.close();
    await connection.close();
  }
}
