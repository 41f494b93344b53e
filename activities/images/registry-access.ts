/**
 * How this process reaches image registries (its auth file, the plain-http registries on this
 * machine), and the digest of a tag asked with it: one entry point for the worker's resolveImages
 * and the CLI's plan.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseImageReference } from '../../pipeline/image-reference.ts';
import { resolveImageDigest } from './registry-client.ts';
import { registryCredentials } from './registry-credentials.ts';

export interface RegistryAccess {
  /** A docker config.json (RECOGDRIVE_REGISTRY_AUTH_FILE). */
  authFile: string;
  /** host:port of registries on this machine that speak plain http (RECOGDRIVE_REGISTRY_INSECURE_HOSTS). */
  insecureHosts: readonly string[];
  /** Per request; 30 s when omitted. */
  timeoutMs?: number;
}

/** Docker's defaults: ~/.docker/config.json, https everywhere. */
export const DEFAULT_REGISTRY_ACCESS: RegistryAccess = { authFile: join(homedir(), '.docker', 'config.json'), insecureHosts: [] };

/** "sha256:..." of the manifest the tagged `image` names now. Throws ImageNotFound, RegistryAuthFailed, RegistryUnavailable, InvalidRegistryCredentials. */
export async function resolveTag(image: string, access: RegistryAccess): Promise<string> {
  const ref = parseImageReference(image);
  return resolveImageDigest(ref, {
    credentials: () => registryCredentials(ref.registry, { authFile: access.authFile }),
    insecureHosts: access.insecureHosts,
    ...(access.timeoutMs === undefined ? {} : { timeoutMs: access.timeoutMs }),
  });
}
