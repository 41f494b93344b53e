/**
 * Error responses: one JSON shape `{ error, message, issues? }` for every failure. Bodies carry
 * what was wrong with the request (field paths, run ids), never request headers. A request can
 * cause a 4xx only; a 5xx means the server or Temporal failed, and is logged.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isGrpcServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidPipelineInput } from '../../pipeline/input.ts';
import { ImageNotFound, RegistryAuthFailed } from '../../activities/images/registry-client.ts';
import { RUN_ID_MAX_LENGTH } from '../../pipeline/naming.ts';
import { RerunRequestError } from '../rerun-input.ts';
import { LogNotFound } from '../logs-command.ts';
import { RunIdTaken, RunNotFound, RunWithoutStatus } from '../runs.ts';

export class HttpError extends Error {
  readonly statusCode: number;
  readonly issues: readonly string[] | undefined;
  constructor(statusCode: number, message: string, issues?: readonly string[]) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.issues = issues;
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  503: 'Service Unavailable',
};

/** gRPC UNAVAILABLE / DEADLINE_EXCEEDED: Temporal could not be reached. */
const UNREACHABLE_CODES = new Set([4, 14]);

function temporalUnreachable(error: Error): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (isGrpcServiceError(current) && UNREACHABLE_CODES.has(current.code)) return true;
  }
  return false;
}

function send(reply: FastifyReply, status: number, message: string, issues?: readonly string[]): FastifyReply {
  return reply.code(status).send({ error: TITLES[status] ?? (status < 500 ? 'Bad Request' : 'Error'), message, ...(issues === undefined ? {} : { issues }) });
}

/** Fastify's own client errors, each with a message that says what to change. */
function clientErrorMessage(error: FastifyError, request: FastifyRequest, bodyLimit: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `the body must be application/json (got ${request.headers['content-type']?.split(';')[0]?.slice(0, 100) ?? 'no content type'})`;
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the body is larger than ${bodyLimit} bytes`;
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'the Content-Length does not match the body';
    default:
      return error.message;
  }
}

/**
 * Errors fastify raises before routing (option `frameworkErrors`): a path that is not valid
 * percent-encoding, or a path parameter longer than the router takes. Both are the caller's: 400.
 */
export function frameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const message =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? `a path parameter is too long (a run id has at most ${RUN_ID_MAX_LENGTH} characters)`
      : error.code === 'FST_ERR_BAD_URL'
        ? 'the path is not valid percent-encoding'
        : 'the request could not be routed';
  void send(reply, 400, message);
}

/** Method + path pattern of every route, to answer 405 (not 404) for a known path with another method. */
function routeTable(app: FastifyInstance): (method: string, path: string) => string[] {
  const routes: Array<{ methods: string[]; pattern: RegExp }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}/?$`);
    routes.push({ methods: [route.method].flat(), pattern });
  });
  return (method, path) => [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))].filter((m) => m !== method);
}

export function registerErrorHandler(app: FastifyInstance, bodyLimit: number): void {
  const allowedMethods = routeTable(app);

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => `${[error.validationContext ?? 'request', ...v.instancePath.split('/').filter(Boolean)].join('.')}: ${v.message}`);
      return send(reply, 400, 'the request does not match the API schema', issues);
    }
    if (error instanceof InvalidPipelineInput) return send(reply, 400, 'invalid pipeline input', error.issues);
    if (error instanceof RerunRequestError) {
      return send(reply, error.kind === 'bad-request' ? 400 : error.kind === 'unknown-run' ? 404 : 422, error.message, error.issues);
    }
    if (error instanceof HttpError) return send(reply, error.statusCode, error.message, error.issues);
    if (error instanceof RunNotFound || error instanceof RunWithoutStatus || error instanceof LogNotFound) return send(reply, 404, error.message);
    if (error instanceof RunIdTaken) return send(reply, 409, error.message);
    // A rerun's dry run asks the registry what its tags name: a missing image or refused credentials is the request's to fix.
    if (error instanceof ImageNotFound || error instanceof RegistryAuthFailed) return send(reply, 422, error.message);
    if (error instanceof WorkflowNotFoundError) return send(reply, 404, `no run ${error.workflowId ?? ''}`.trim());
    // Fastify's own client errors: malformed request, body too large, unsupported content type.
    const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 400 && status < 500) return send(reply, status, clientErrorMessage(error as FastifyError, request, bodyLimit));
    if (temporalUnreachable(error)) {
      request.log.error({ err: error }, 'Temporal unreachable');
      return send(reply, 503, 'Temporal could not be reached; try again later');
    }
    request.log.error({ err: error }, 'request failed');
    return send(reply, 500, 'the request failed; see the API server log');
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods(request.method, path);
    if (allowed.length > 0) {
      return send(reply.header('allow', allowed.join(', ')), 405, `${request.method} is not allowed here; use ${allowed.join(' or ')}`);
    }
    return send(reply, 404, `no route ${request.method} ${path.slice(0, 200)}`);
  });
}
