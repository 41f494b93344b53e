/**
 * Request bodies: JSON only (anything else is 415, text/plain included), parsed here instead of
 * by fastify's default parser so each refusal says what is wrong: not JSON, nested deeper than
 * any request needs (deep nesting would exhaust the stack of the code that walks it), or a key
 * that reaches the prototype machinery (`__proto__`, `constructor`, `prototype`).
 */
import type { FastifyInstance } from 'fastify';
import { jsonDocumentProblem, MAX_JSON_DEPTH } from '../../pipeline/safe-keys.ts';
import { HttpError } from './errors.ts';

export const MAX_BODY_DEPTH = MAX_JSON_DEPTH;

/** The first problem of a parsed body, or undefined. */
export function bodyProblem(value: unknown): string | undefined {
  return jsonDocumentProblem(value, 'the body');
}

export function registerJsonBody(app: FastifyInstance): void {
  // Fastify accepts text/plain by default; every body of this API is JSON (415 for anything else).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    const body = String(text);
    // An empty body is no body: routes without one (cancel) accept it, the others say what is required.
    if (body.trim() === '') return done(null, undefined);
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return done(new HttpError(400, 'the body is not valid JSON'), undefined);
    }
    const problem = bodyProblem(value);
    if (problem !== undefined) return done(new HttpError(400, problem, [problem]), undefined);
    done(null, value);
  });
}
