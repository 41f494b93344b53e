/**
 * The digest a tag names now, asked of the registry through its v2 HTTP API (the distribution
 * spec): HEAD the manifest; on 401 answer the WWW-Authenticate challenge (Basic: the credentials;
 * Bearer: a token from the realm, got with the credentials) and ask again. Credentials are looked
 * up only when the registry asks for them. No secret (password, token, Authorization header)
 * goes into an error message.
 */
import { createHash } from 'node:crypto';
import { parseImageReference, referenceText, type ImageReference } from '../../pipeline/image-reference.ts';
import type { RegistryCredentials } from './registry-credentials.ts';

/** Every manifest type a tag may name: podman pushes OCI manifests, docker buildx pushes indexes. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export class ImageNotFound extends Error {
  constructor(image: string, registry: string) {
    super(`image ${image} was not found in the registry ${registry}: check the tag (or digest) and that the image was pushed there`);
    this.name = 'ImageNotFound';
  }
}

export class RegistryAuthFailed extends Error {
  constructor(image: string, registry: string, status: number, credentials: RegistryCredentials | undefined) {
    const anonymous = credentials?.username === undefined && credentials?.identityToken === undefined;
    super(
      anonymous
        ? `the registry ${registry} wants credentials for ${image} (HTTP ${status}) and there were ${credentials === undefined ? 'none' : credentials.source}: ` +
            'log in to it (docker login, or podman login --authfile $RECOGDRIVE_REGISTRY_AUTH_FILE), or for Artifact Registry set up Application Default Credentials'
        : `the registry ${registry} refused the credentials from ${credentials.source} for ${image} (HTTP ${status}): ` +
            'check that they are current and may pull this repository',
    );
    this.name = 'RegistryAuthFailed';
  }
}

/** Network error, timeout, 5xx, 429: a later attempt may succeed. */
export class RegistryUnavailable extends Error {
  constructor(image: string, registry: string, why: string) {
    super(`cannot resolve ${image}: the registry ${registry} ${why}`);
    this.name = 'RegistryUnavailable';
  }
}

export interface ResolveOptions {
  /** The registry's credentials, or how to find them (called only when the registry asks). */
  credentials?: RegistryCredentials | (() => Promise<RegistryCredentials | undefined>);
  /** Hosts (host:port) on this machine that speak plain http; every other registry is https. */
  insecureHosts?: readonly string[];
  /** Per request; 30 s when omitted. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const LOOPBACK = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?$/;

/** Whether http:// may be used for host[:port]: only on this machine, and only when listed. */
function plainHttp(host: string, insecureHosts: readonly string[]): boolean {
  return LOOPBACK.test(host) && insecureHosts.includes(host);
}

/** The auth-params of a WWW-Authenticate challenge: scheme and key="value" pairs. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } | undefined {
  const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of match[2]!.matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[key!.toLowerCase()] = quoted === undefined ? bare! : quoted.replace(/\\(.)/g, '$1');
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

const basic = (c: RegistryCredentials) => `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;

/** "sha256:<hex>" of the manifest `image` names now (a pinned reference: its digest, once the registry confirms it has it). */
export async function resolveImageDigest(image: string | ImageReference, options: ResolveOptions = {}): Promise<string> {
  const ref = typeof image === 'string' ? parseImageReference(image) : image;
  const name = referenceText(ref);
  const host = ref.apiHost;
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const insecure = options.insecureHosts ?? [];
  const scheme = plainHttp(host, insecure) ? 'http' : 'https';
  const url = `${scheme}://${host}/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag!}`;

  const request = async (target: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetchFn(target, { ...init, redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const e = error as Error & { cause?: { code?: string } };
      const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `did not answer within ${timeoutMs} ms` : `could not be reached (${e.cause?.code ?? e.name})`;
      throw new RegistryUnavailable(name, host, why);
    }
  };
  const unexpected = (status: number) =>
    new RegistryUnavailable(name, host, status === 429 ? 'is rate-limiting requests (HTTP 429)' : status >= 500 ? `failed (HTTP ${status})` : `answered HTTP ${status}`);

  const manifest = (method: 'HEAD' | 'GET', authorization?: string) =>
    request(url, { method, headers: { Accept: MANIFEST_ACCEPT, ...(authorization === undefined ? {} : { Authorization: authorization }) } });

  let authorization: string | undefined;
  let credentials: RegistryCredentials | undefined;
  let response = await manifest('HEAD');
  if (response.status === 401) {
    credentials = typeof options.credentials === 'function' ? await options.credentials() : options.credentials;
    const challenge = parseChallenge(response.headers.get('www-authenticate') ?? '');
    const anonymous = credentials?.username === undefined && credentials?.identityToken === undefined;
    if (challenge?.scheme === 'basic') {
      if (anonymous || credentials?.username === undefined) throw new RegistryAuthFailed(name, host, 401, credentials);
      authorization = basic(credentials);
    } else if (challenge?.scheme === 'bearer') {
      authorization = `Bearer ${await bearerToken(challenge.params, ref, credentials, { request, insecure, name, host })}`;
    } else {
      throw new RegistryUnavailable(name, host, `asked for credentials with an unknown challenge (${challenge?.scheme ?? 'none'})`);
    }
    response = await manifest('HEAD', authorization);
  }
  if (response.status === 401 || response.status === 403) throw new RegistryAuthFailed(name, host, response.status, credentials);
  if (response.status === 404) throw new ImageNotFound(name, host);
  if (!response.ok) throw unexpected(response.status);

  const header = response.headers.get('docker-content-digest') ?? '';
  if (/^sha256:[a-f0-9]{64}$/.test(header)) return header;
  // No digest header (some registries omit it on HEAD): the digest is the hash of the manifest's bytes.
  const body = await manifest('GET', authorization);
  if (body.status === 404) throw new ImageNotFound(name, host);
  if (body.status === 401 || body.status === 403) throw new RegistryAuthFailed(name, host, body.status, credentials);
  if (!body.ok) throw unexpected(body.status);
  return `sha256:${createHash('sha256').update(Buffer.from(await body.arrayBuffer())).digest('hex')}`;
}

interface TokenContext {
  request: (url: string, init: RequestInit) => Promise<Response>;
  insecure: readonly string[];
  name: string;
  host: string;
}

/** A token from the challenge's realm, for pulling the repository. */
async function bearerToken(params: Record<string, string>, ref: ImageReference, credentials: RegistryCredentials | undefined, ctx: TokenContext): Promise<string> {
  let realm: URL;
  try {
    realm = new URL(params.realm ?? '');
  } catch {
    throw new RegistryUnavailable(ctx.name, ctx.host, 'sent a Bearer challenge without a usable realm');
  }
  // Credentials go to the realm only over https (or plain http on this machine when allowed).
  if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && plainHttp(realm.host, ctx.insecure))) {
    throw new RegistryUnavailable(ctx.name, ctx.host, `sent a token realm that is not https (${realm.protocol}//${realm.host})`);
  }
  const scope = params.scope ?? `repository:${ref.repository}:pull`;
  let response: Response;
  if (credentials?.identityToken !== undefined) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: 'recogdrive', scope, ...(params.service === undefined ? {} : { service: params.service }) });
    response = await ctx.request(realm.href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
  } else {
    if (params.service !== undefined) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', scope);
    const headers: Record<string, string> = credentials?.username === undefined ? {} : { Authorization: basic(credentials) };
    response = await ctx.request(realm.href, { method: 'GET', headers });
  }
  if (response.status === 401 || response.status === 403) throw new RegistryAuthFailed(ctx.name, ctx.host, response.status, credentials);
  if (!response.ok) {
    throw new RegistryUnavailable(ctx.name, ctx.host, `token service ${realm.host} answered HTTP ${response.status}`);
  }
  const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
  const token = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
  if (typeof token !== 'string' || token === '') throw new RegistryUnavailable(ctx.name, ctx.host, `token service ${realm.host} answered without a token`);
  return token;
}
