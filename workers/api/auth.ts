/**
 * Bearer tokens with scopes. Tokens are configured hashed (sha256); a presented token is hashed
 * and compared with every configured hash in constant time. GET needs runs:read, every other
 * method runs:write, unless a route is marked public (the OpenAPI document). Runs before the
 * body is read: an unauthenticated request is answered 401 without parsing anything.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const SCOPES = ['runs:read', 'runs:write'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiToken {
  name: string;
  /** sha256 of the token, 32 bytes. */
  sha256: Buffer;
  scopes: ReadonlySet<Scope>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No token needed (the OpenAPI document). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** Name of the token the request was authenticated with. */
    caller?: string;
  }
}

/** The configured token matching the request's `Authorization: Bearer <token>`, if any. */
export function authenticate(authorization: string | undefined, tokens: readonly ApiToken[]): ApiToken | undefined {
  const match = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(authorization ?? '');
  if (match === null) return undefined;
  const presented = createHash('sha256').update(match[1]!).digest();
  let found: ApiToken | undefined;
  // Compare with every entry (no early exit), so timing says nothing about which one matched.
  for (const token of tokens) {
    if (timingSafeEqual(presented, token.sha256) && found === undefined) found = token;
  }
  return found;
}

export function requiredScope(method: string): Scope {
  return method === 'GET' || method === 'HEAD' ? 'runs:read' : 'runs:write';
}

export function registerAuth(app: FastifyInstance, tokens: readonly ApiToken[]): void {
  app.decorateRequest('caller', undefined);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.routeOptions.config.public === true) return;
    const token = authenticate(request.headers.authorization, tokens);
    if (token === undefined) {
      const error = request.headers.authorization === undefined ? '' : ', error="invalid_token"';
      return reply
        .code(401)
        .header('www-authenticate', `Bearer realm="recogdrive"${error}`)
        .send({ error: 'Unauthorized', message: 'a valid bearer token is required (Authorization: Bearer <token>)' });
    }
    const scope = requiredScope(request.method);
    if (!token.scopes.has(scope)) {
      return reply
        .code(403)
        .header('www-authenticate', `Bearer realm="recogdrive", error="insufficient_scope", scope="${scope}"`)
        .send({ error: 'Forbidden', message: `token "${token.name}" lacks the scope ${scope}` });
    }
    request.caller = token.name;
  });
}
