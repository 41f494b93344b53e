/**
 * Credentials for an image registry, first found wins: the entry for its host in a docker
 * config.json (RECOGDRIVE_REGISTRY_AUTH_FILE, default ~/.docker/config.json; `docker login` and
 * `podman login --authfile` write it), then for Artifact Registry and Container Registry hosts an
 * access token of Application Default Credentials, else none (anonymous). Each carries where it
 * came from, so an error can say which credentials were refused without showing them.
 */
import { readFile } from 'node:fs/promises';

export interface RegistryCredentials {
  /** Where they came from, for messages; never the secret. */
  source: string;
  username?: string;
  password?: string;
  /** `docker login`'s OAuth2 refresh token (identitytoken): traded at a token realm for an access token. */
  identityToken?: string;
}

export interface CredentialOptions {
  /** A docker config.json; absent is fine (no entries). */
  authFile: string;
  /** An OAuth2 access token for Google registries; Application Default Credentials when omitted. */
  googleAccessToken?: () => Promise<string>;
}

/** The auth file exists but cannot be read as credentials: a setup problem no retry fixes. */
export class InvalidRegistryCredentials extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidRegistryCredentials';
  }
}

/** Artifact Registry (<region>-docker.pkg.dev) and Container Registry (gcr.io, <region>.gcr.io). */
export function isGoogleRegistry(host: string): boolean {
  return /^[a-z0-9-]+-docker\.pkg\.dev$/.test(host) || host === 'gcr.io' || host.endsWith('.gcr.io');
}

/** The host an auths key names: keys may carry a scheme and a path (https://index.docker.io/v1/). */
function authKeyHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

async function fromAuthFile(registry: string, authFile: string): Promise<RegistryCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(authFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InvalidRegistryCredentials(`cannot read the registry auth file ${authFile}: ${(error as NodeJS.ErrnoException).code ?? 'read error'}`);
  }
  let auths: unknown;
  try {
    auths = (JSON.parse(text) as { auths?: unknown }).auths;
  } catch {
    throw new InvalidRegistryCredentials(`the registry auth file ${authFile} is not valid JSON`);
  }
  if (auths === undefined) return undefined;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new InvalidRegistryCredentials(`"auths" in ${authFile} is not an object`);
  const wanted = authKeyHost(registry);
  const key = Object.keys(auths).find((k) => authKeyHost(k) === wanted);
  if (key === undefined) return undefined;
  const entry = (auths as Record<string, AuthEntry>)[key]!;
  const source = `auths[${JSON.stringify(key)}] in ${authFile}`;
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') return { source: `the identitytoken of ${source}`, identityToken: entry.identitytoken };
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new InvalidRegistryCredentials(`${source}: "auth" is not base64 of user:password`);
    return { source, username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string') return { source, username: entry.username, password: entry.password };
  throw new InvalidRegistryCredentials(`${source} has no "auth", "username"/"password" or "identitytoken"`);
}

let googleAuth: Promise<{ getAccessToken(): Promise<string | null | undefined> }> | undefined;

/** An access token of Application Default Credentials; the Google client loads only when a Google registry asks. */
async function adcAccessToken(): Promise<string> {
  googleAuth ??= import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }));
  const token = await (await googleAuth).getAccessToken();
  if (typeof token !== 'string' || token === '') throw new Error('no access token');
  return token;
}

/** The credentials for `registry` (host[:port] as a reference names it; docker.io for Docker Hub); undefined: anonymous. */
export async function registryCredentials(registry: string, options: CredentialOptions): Promise<RegistryCredentials | undefined> {
  const fromFile = await fromAuthFile(registry, options.authFile);
  if (fromFile !== undefined) return fromFile;
  if (!isGoogleRegistry(registry)) return undefined;
  try {
    const token = await (options.googleAccessToken ?? adcAccessToken)();
    return { source: `Application Default Credentials (no entry for ${registry} in ${options.authFile})`, username: 'oauth2accesstoken', password: token };
  } catch (error) {
    // Anonymous then; if the registry wants credentials, its refusal says why there were none.
    const why = (error as Error).message.split('\n')[0]!.slice(0, 200);
    return { source: `none (no entry for ${registry} in ${options.authFile}; Application Default Credentials unavailable: ${why})` };
  }
}
