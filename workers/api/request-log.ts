/**
 * The API's request log (pino through fastify). A request line names the method, the path and
 * the names of the query parameters, never their values: a caller may put a token in a query
 * string (`?access_token=...`), and nothing a caller sends is trusted to be loggable. Headers and
 * bodies are never logged; the Authorization header is redacted should something log it anyway.
 */
import type { FastifyServerOptions } from 'fastify';

export interface ApiLogger {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Where log lines go (default stdout). */
  stream?: { write(line: string): void };
}

/** Query parameters the API knows; others are logged as "?" so their names cannot carry a secret either. */
const KNOWN_PARAMETERS = new Set(['runId', 'experiment', 'status', 'pageSize', 'dryRun', 'attempt', 'worker', 'follow']);

/** "/v1/runs?experiment=x&access_token=y" → "/v1/runs?experiment=…&?" (path at most 300 characters). */
export function loggableUrl(url: string): string {
  const mark = url.indexOf('?');
  const path = (mark < 0 ? url : url.slice(0, mark)).slice(0, 300);
  if (mark < 0) return path;
  const names = url
    .slice(mark + 1)
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const name = pair.split('=')[0]!;
      return KNOWN_PARAMETERS.has(name) ? `${name}=…` : '?';
    });
  return `${path}?${names.slice(0, 20).join('&')}`;
}

interface LoggedRequest {
  method: string;
  url: string;
  ip?: string;
}

export function loggerOptions(logger: ApiLogger): NonNullable<FastifyServerOptions['logger']> {
  return {
    level: logger.level,
    ...(logger.stream === undefined ? {} : { stream: logger.stream }),
    redact: ['req.headers.authorization', 'req.headers["idempotency-key"]'],
    serializers: {
      req: (request: LoggedRequest) => ({ method: request.method, url: loggableUrl(request.url), ...(request.ip === undefined ? {} : { remoteAddress: request.ip }) }),
    },
  };
}
