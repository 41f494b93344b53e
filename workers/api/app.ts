/**
 * The HTTP API (fastify): runs, partial reruns and logs under /v1, the OpenAPI document at
 * /openapi.json. Built from its dependencies so tests run it against their own Temporal.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Client } from '@temporalio/client';
import { registerAuth, type ApiToken } from './auth.ts';
import { frameworkError, registerErrorHandler } from './errors.ts';
import { registerJsonBody } from './json-body.ts';
import { loggerOptions, type ApiLogger } from './request-log.ts';
import { logsRoutes } from './routes-logs.ts';
import { rerunsRoutes } from './routes-reruns.ts';
import { runsRoutes } from './routes-runs.ts';

export interface ApiDeps {
  client: Client;
  taskQueue: string;
  tokens: readonly ApiToken[];
  /** Signs plan tokens (HMAC-SHA256). */
  planSecret: string;
  /** The worker's allowed roots (RECOGDRIVE_ALLOWED_ROOTS), when known: inputs with paths outside them are 400 before anything starts. */
  allowedRoots?: readonly string[];
  /** Largest accepted request body; larger ones are answered 413 (default 1 MiB). */
  bodyLimit?: number;
  /** Request log (method, path, query parameter names, status; never headers, bodies or query values). Default: none. */
  logger?: ApiLogger;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** Longer than any run id (200), so an over-long one gets the run id rule's 400, not the router's 414. */
const MAX_PARAM_LENGTH = 1024;

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    bodyLimit,
    logger: deps.logger === undefined ? false : loggerOptions(deps.logger),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkError,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app, bodyLimit);
  registerJsonBody(app);
  registerAuth(app, deps.tokens);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'recogdrive orchestrator API',
        version: '1',
        description: 'Start, watch, rerun and cancel ReCogDrive pipeline runs (Temporal workflows). Every /v1 route needs a bearer token: runs:read for GET, runs:write otherwise.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, () => app.swagger());

  const temporal = { client: deps.client, taskQueue: deps.taskQueue, allowedRoots: deps.allowedRoots ?? [] };
  await app.register(runsRoutes, { prefix: '/v1', ...temporal });
  await app.register(rerunsRoutes, { prefix: '/v1', ...temporal, planSecret: deps.planSecret });
  await app.register(logsRoutes, { prefix: '/v1', client: deps.client });
  return app;
}
