/**
 * An image registry for tests: the pinned distribution registry (infra/local/registry.ts) with
 * htpasswd users, and a small OCI image pushed to it through the v2 API the way podman pushes
 * (blob uploads, then the manifest under a tag). Tests skip with the reason when the binary is
 * missing, except in CI (CI=true), where a skip would hide a missing install.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { REGISTRY_BINARY, REGISTRY_GO_PACKAGE } from '../../infra/local/registry.ts';

/** A node:test `skip` value: the reason, or false (always false in CI). */
export function registrySkip(): string | false {
  if (fs.existsSync(REGISTRY_BINARY) || process.env.CI === 'true') return false;
  return `needs the registry at ${REGISTRY_BINARY}: run node infra/local/install-registry.ts (go install ${REGISTRY_GO_PACKAGE})`;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function pushBlob(base: string, repository: string, authorization: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: { Authorization: authorization } });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { Authorization: authorization, 'Content-Type': 'application/octet-stream' }, body: bytes });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/** Pushes a one-layer OCI image as repository:tag; returns the digest the registry reports and the manifest's bytes. */
export async function pushTestImage(
  registry: { url: string },
  auth: { user: string; password: string },
  repository: string,
  tag: string,
  content = `layer of ${repository}:${tag}`,
): Promise<{ digest: string; manifest: Buffer }> {
  const authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  const layer = Buffer.from(content);
  const layerDigest = await pushBlob(registry.url, repository, authorization, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} }));
  const configDigest = await pushBlob(registry.url, repository, authorization, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { Authorization: authorization, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (put.status !== 201) throw new Error(`manifest upload: HTTP ${put.status} ${await put.text()}`);
  return { digest: put.headers.get('docker-content-digest')!, manifest };
}

/** A docker config.json with one registry's credentials, as `docker login` writes it. */
export function dockerConfig(host: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
}
