/**
 * Error responses: one JSON shape `{ error, message, issues? }` for every failure. Bodies carry
 * what was wrong with the request (field paths, run ids), never request headers.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { InvalidPipelineInput } from '../../pipeline/input.ts';
import { RerunRequestError } from '../rerun-input.ts';

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

export const notFound = (runId: string): HttpError => new HttpError(404, `no run ${runId}`);

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
};

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => `${[error.validationContext ?? 'request', ...v.instancePath.split('/').filter(Boolean)].join('.')}: ${v.message}`);
      return reply.code(400).send({ error: 'Bad Request', message: 'the request does not match the API schema', issues });
    }
    if (error instanceof InvalidPipelineInput) {
      return reply.code(400).send({ error: 'Bad Request', message: 'invalid pipeline input', issues: error.issues });
    }
    if (error instanceof RerunRequestError) {
      const status = error.kind === 'bad-request' ? 400 : error.kind === 'unknown-run' ? 404 : 422;
      return reply.code(status).send({ error: TITLES[status], message: error.message, ...(error.issues === undefined ? {} : { issues: error.issues }) });
    }
    if (error instanceof HttpError) {
      return reply
        .code(error.statusCode)
        .send({ error: TITLES[error.statusCode] ?? 'Error', message: error.message, ...(error.issues === undefined ? {} : { issues: error.issues }) });
    }
    if (error instanceof WorkflowNotFoundError) {
      return reply.code(404).send({ error: 'Not Found', message: `no run ${error.workflowId ?? ''}`.trim() });
    }
    // Fastify's own client errors: malformed JSON, body too large, unsupported content type.
    const status = 'statusCode' in error && typeof error.statusCode === 'number' ? error.statusCode : 500;
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: TITLES[status] ?? 'Bad Request', message: error.message });
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'Internal Server Error', message: 'the request failed; see the API server log' });
  });

  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));
}
