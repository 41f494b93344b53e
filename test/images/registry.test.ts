/**
 * Tags resolved to digests through the registry v2 API, against the real distribution registry
 * (htpasswd, Basic challenge) and, for the Bearer token flow the registry cannot play without a
 * token server, a small node:http registry.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../infra/local/dev-server.ts';
import { startRegistry, type RunningRegistry } from '../../infra/local/registry.ts';
import { resolveTag } from '../../activities/images/registry-access.ts';
import { ImageNotFound, RegistryAuthFailed, RegistryUnavailable, resolveImageDigest } from '../../activities/images/registry-client.ts';
import { InvalidRegistryCredentials, registryCredentials } from '../../activities/images/registry-credentials.ts';
import { dockerConfig, pushTestImage, registrySkip } from '../helpers/image-registry.ts';

const USER = 'puller';
const PASSWORD = 'correct-horse-battery-7f3a';
const skip = registrySkip();

let dir: string;
let registry: RunningRegistry;
let pushed: { digest: string; manifest: Buffer };
const creds = (password = PASSWORD) => ({ source: 'the test', username: USER, password });

before(async () => {
  if (skip !== false) return;
  dir = await mkdtemp(join(tmpdir(), 'rd-registry-'));
  registry = await startRegistry({ dir: join(dir, 'registry'), users: { [USER]: PASSWORD } });
  pushed = await pushTestImage(registry, { user: USER, password: PASSWORD }, 'recogdrive/stage-image', 'stage1');
});

after(async () => {
  await registry?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test('a tag resolves to the digest the registry reports for its manifest', { skip }, async () => {
  const digest = await resolveImageDigest(`${registry.host}/recogdrive/stage-image:stage1`, { credentials: creds(), insecureHosts: [registry.host] });
  assert.equal(digest, pushed.digest);
  assert.equal(digest, `sha256:${createHash('sha256').update(pushed.manifest).digest('hex')}`);
});

test('a pinned reference resolves to its own digest', { skip }, async () => {
  const digest = await resolveImageDigest(`${registry.host}/recogdrive/stage-image@${pushed.digest}`, { credentials: creds(), insecureHosts: [registry.host] });
  assert.equal(digest, pushed.digest);
});

test('a tag moved by a new push resolves to the new digest', { skip }, async () => {
  const first = await pushTestImage(registry, { user: USER, password: PASSWORD }, 'recogdrive/moving', 'latest', 'one');
  const second = await pushTestImage(registry, { user: USER, password: PASSWORD }, 'recogdrive/moving', 'latest', 'two');
  assert.notEqual(first.digest, second.digest);
  assert.equal(await resolveImageDigest(`${registry.host}/recogdrive/moving`, { credentials: creds(), insecureHosts: [registry.host] }), second.digest);
});

test('an unknown tag or repository is ImageNotFound, naming the image and the registry', { skip }, async () => {
  for (const image of [`${registry.host}/recogdrive/stage-image:nope`, `${registry.host}/recogdrive/never-pushed:stage1`]) {
    await assert.rejects(resolveImageDigest(image, { credentials: creds(), insecureHosts: [registry.host] }), (error: Error) => {
      assert.ok(error instanceof ImageNotFound, error.message);
      assert.ok(error.message.includes(image) && error.message.includes(`registry ${registry.host}`), error.message);
      assert.match(error.message, /check the tag/);
      return true;
    });
  }
});

test('a wrong password is RegistryAuthFailed naming where the credentials came from, never the password', { skip }, async () => {
  const wrong = 'wrong-secret-password-91c2';
  await assert.rejects(resolveImageDigest(`${registry.host}/recogdrive/stage-image:stage1`, { credentials: creds(wrong), insecureHosts: [registry.host] }), (error: Error) => {
    assert.ok(error instanceof RegistryAuthFailed, error.message);
    assert.match(error.message, /refused the credentials from the test/);
    assert.ok(!error.message.includes(wrong) && !error.message.includes(Buffer.from(`${USER}:${wrong}`).toString('base64')), error.message);
    return true;
  });
});

test('no credentials at all is RegistryAuthFailed that says how to log in', { skip }, async () => {
  await assert.rejects(resolveImageDigest(`${registry.host}/recogdrive/stage-image:stage1`, { insecureHosts: [registry.host] }), (error: Error) => {
    assert.ok(error instanceof RegistryAuthFailed, error.message);
    assert.match(error.message, /wants credentials .* there were none: log in/);
    return true;
  });
});

test('credentials come from the docker config.json entry for the registry host', { skip }, async () => {
  const authFile = join(dir, 'config.json');
  await writeFile(authFile, dockerConfig(`http://${registry.host}`, USER, PASSWORD));
  assert.equal(await resolveTag(`${registry.host}/recogdrive/stage-image:stage1`, { authFile, insecureHosts: [registry.host] }), pushed.digest);
  await writeFile(authFile, dockerConfig(registry.host, USER, 'stale-password-5d1e'));
  await assert.rejects(resolveTag(`${registry.host}/recogdrive/stage-image:stage1`, { authFile, insecureHosts: [registry.host] }), (error: Error) => {
    assert.ok(error instanceof RegistryAuthFailed);
    assert.ok(error.message.includes(`auths["${registry.host}"] in ${authFile}`), error.message);
    assert.ok(!error.message.includes('stale-password-5d1e'), error.message);
    return true;
  });
});

test('a registry not listed as plain http is asked over https', { skip }, async () => {
  // The test registry speaks http only: the TLS handshake fails, and nothing is sent in the clear.
  await assert.rejects(resolveImageDigest(`${registry.host}/recogdrive/stage-image:stage1`, { credentials: creds(), timeoutMs: 5000 }), RegistryUnavailable);
});

test('a closed port is RegistryUnavailable (retryable), not a missing image', async () => {
  const port = await freePort();
  await assert.rejects(resolveImageDigest(`127.0.0.1:${port}/recogdrive/stage-image:stage1`, { credentials: creds(), insecureHosts: [`127.0.0.1:${port}`] }), (error: Error) => {
    assert.ok(error instanceof RegistryUnavailable, error.message);
    assert.match(error.message, /could not be reached \(ECONNREFUSED\)/);
    assert.ok(!error.message.includes(PASSWORD));
    return true;
  });
});

/** A registry that answers like Docker Hub or Artifact Registry: Bearer challenge, token realm, no digest header on HEAD. */
async function bearerRegistry(options: { status?: number } = {}): Promise<{ host: string; manifest: Buffer; tokenRequests: string[]; close(): Promise<void> }> {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const tokenRequests: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url!, `http://${host}`);
    if (url.pathname === '/token') {
      tokenRequests.push(`${url.searchParams.get('service')} ${url.searchParams.get('scope')} ${req.headers.authorization ?? 'anonymous'}`);
      if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`) return void res.writeHead(401).end();
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ access_token: 'issued-token-abc123' }));
    }
    if (url.pathname === '/v2/team/trainer/manifests/v1') {
      if (options.status !== undefined) return void res.writeHead(options.status).end();
      if (req.headers.authorization !== 'Bearer issued-token-abc123') {
        return void res
          .writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${host}/token",service="fake-registry",scope="repository:team/trainer:pull"` })
          .end();
      }
      if (!String(req.headers.accept).includes('application/vnd.oci.image.index.v1+json')) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.index.v1+json', 'Content-Length': manifest.length });
      return void res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { host, manifest, tokenRequests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('a Bearer challenge is answered with a token from its realm, got with the credentials; no digest header means the manifest is hashed', async () => {
  const fake = await bearerRegistry();
  try {
    const digest = await resolveImageDigest(`${fake.host}/team/trainer:v1`, { credentials: creds(), insecureHosts: [fake.host] });
    assert.equal(digest, `sha256:${createHash('sha256').update(fake.manifest).digest('hex')}`);
    assert.deepEqual(fake.tokenRequests, [`fake-registry repository:team/trainer:pull Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`]);
    await assert.rejects(resolveImageDigest(`${fake.host}/team/trainer:v1`, { credentials: creds('bad-password-0e9b'), insecureHosts: [fake.host] }), (error: Error) => {
      assert.ok(error instanceof RegistryAuthFailed);
      assert.ok(!error.message.includes('bad-password-0e9b') && !error.message.includes('issued-token'), error.message);
      return true;
    });
  } finally {
    await fake.close();
  }
});

test('a 5xx or 429 from the registry is RegistryUnavailable', async () => {
  for (const status of [503, 429]) {
    const fake = await bearerRegistry({ status });
    try {
      await assert.rejects(resolveImageDigest(`${fake.host}/team/trainer:v1`, { insecureHosts: [fake.host] }), (error: Error) => error instanceof RegistryUnavailable && error.message.includes(String(status)));
    } finally {
      await fake.close();
    }
  }
});

test('Google registries without an auth file entry use an access token as oauth2accesstoken; without one, anonymous says why', async () => {
  const authFile = join(tmpdir(), 'rd-no-such-auth-file.json');
  const found = await registryCredentials('us-east5-docker.pkg.dev', { authFile, googleAccessToken: async () => 'ya29.token' });
  assert.equal(found?.username, 'oauth2accesstoken');
  assert.equal(found?.password, 'ya29.token');
  assert.match(found!.source, /^Application Default Credentials/);
  const none = await registryCredentials('gcr.io', { authFile, googleAccessToken: () => Promise.reject(new Error('Could not load the default credentials')) });
  assert.equal(none?.username, undefined);
  assert.match(none!.source, /Application Default Credentials unavailable: Could not load the default credentials/);
  assert.equal(await registryCredentials('ghcr.io', { authFile }), undefined);
});

test('an auth file that cannot be read as credentials is refused with the file and entry named, not its content', async () => {
  const home = await mkdtemp(join(tmpdir(), 'rd-auth-file-'));
  try {
    const authFile = join(home, 'config.json');
    await writeFile(authFile, '{"auths": {"registry.example": {"auth": "bm90LWEtcGFpcg=="}}}');
    await assert.rejects(registryCredentials('registry.example', { authFile }), (error: Error) => {
      assert.ok(error instanceof InvalidRegistryCredentials);
      assert.equal(error.message, `auths["registry.example"] in ${authFile}: "auth" is not base64 of user:password`);
      return true;
    });
    await writeFile(authFile, '{"auths": ');
    await assert.rejects(registryCredentials('registry.example', { authFile }), /registry auth file .* is not valid JSON/);
    // Keys written with a scheme and path (docker login to Docker Hub) name their host.
    await writeFile(authFile, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('me:pw').toString('base64') } } }));
    assert.deepEqual(await registryCredentials('docker.io', { authFile }), { source: `auths["https://index.docker.io/v1/"] in ${authFile}`, username: 'me', password: 'pw' });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
