/**
 * Configuration of the HTTP API from the environment: who may call it (a file of hashed bearer
 * tokens) and the secret plan tokens are signed with. Temporal's address, namespace and task
 * queue are the worker's (workers/config.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { SCOPES, type ApiToken } from './auth.ts';

const TokenEntry = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ -; at most 64'),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'the hex sha256 of the token (never the token itself)')
    .transform((hex) => hex.toLowerCase()),
  scopes: z.array(z.enum(SCOPES)).min(1),
});

const TokensFile = z
  .array(TokenEntry)
  .min(1, 'no tokens: nobody could call the API')
  .refine((list) => new Set(list.map((t) => t.sha256)).size === list.length, 'the same token hash is listed twice');

const Env = z.object({
  /** JSON: [{ "name": "ci", "sha256": "<hex of sha256(token)>", "scopes": ["runs:read", "runs:write"] }] */
  RECOGDRIVE_API_TOKENS_FILE: z.string().startsWith('/', 'must be an absolute path'),
  /** Signs plan tokens; without it a random secret per process (dry-run tokens then do not survive a restart). */
  RECOGDRIVE_API_PLAN_SECRET: z.string().min(32, 'at least 32 characters').optional(),
});

/** The API's configuration (environment, tokens file) is unusable: the operator's to fix, named without the file's content. */
export class InvalidApiConfig extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidApiConfig';
  }
}

export interface ApiConfig {
  tokens: ApiToken[];
  planSecret: string;
  /** True when the secret was generated at start. */
  ephemeralSecret: boolean;
}

/** Parses the tokens file's text; throws naming what is wrong (never the file's content). */
export function parseTokens(text: string, source = 'tokens file'): ApiToken[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidApiConfig(`${source} is not valid JSON`);
  }
  const parsed = TokensFile.safeParse(json);
  if (!parsed.success) {
    throw new InvalidApiConfig(`${source}:\n  - ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('\n  - ')}`);
  }
  return parsed.data.map((t) => ({ name: t.name, sha256: Buffer.from(t.sha256, 'hex'), scopes: new Set(t.scopes) }));
}

export async function apiConfigFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ApiConfig> {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    throw new InvalidApiConfig(`invalid environment:\n  - ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  - ')}`);
  }
  const file = parsed.data.RECOGDRIVE_API_TOKENS_FILE;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidApiConfig(`cannot read RECOGDRIVE_API_TOKENS_FILE ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  const secret = parsed.data.RECOGDRIVE_API_PLAN_SECRET;
  return {
    tokens: parseTokens(text, file),
    planSecret: secret ?? randomBytes(32).toString('hex'),
    ephemeralSecret: secret === undefined,
  };
}
