/** Configuration of the worker and local tools, from the environment, validated at start. */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './project-root.ts';
import { ARTIFACT_MOUNT_ROOT } from '../pipeline/launch.ts';
import type { RegistryAccess } from '../activities/images/registry-access.ts';

export const DEFAULT_TASK_QUEUE = 'recogdrive';

const AbsolutePath = z.string().startsWith('/', 'must be an absolute path');
const PositiveInt = z.coerce.number().int().positive();
/** "a,b , c" → ['a','b','c'], each matching `pattern`; unset or empty → []. */
const CommaList = (pattern: RegExp, what: string) =>
  z
    .string()
    .default('')
    .transform((text) => text.split(',').map((item) => item.trim()).filter((item) => item !== ''))
    .refine((items) => items.every((item) => pattern.test(item)), `a comma-separated list of ${what}`);

/** user@host[:port], user and host as a run's static compute accepts them (pipeline/input.ts). */
const STATIC_HOST = /^([a-z_][a-z0-9_-]{0,31})@([A-Za-z0-9.-]+)(?::([1-9]\d{0,4}))?$/;
export interface StaticHostConfig {
  user: string;
  address: string;
  port: number;
}
function parseStaticHost(item: string): StaticHostConfig {
  const [, user, address, port] = STATIC_HOST.exec(item)!;
  return { user: user!, address: address!, port: port === undefined ? 22 : Number(port) };
}

const Env = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[A-Za-z0-9.-]+:\d+$/, 'host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  RECOGDRIVE_TASK_QUEUE: z.string().min(1).default(DEFAULT_TASK_QUEUE),
  RECOGDRIVE_DATA_DIR: AbsolutePath.default(join(PROJECT_ROOT, '.data')),
  /**
   * Comma-separated absolute folders of this host a run may read and write (file:// artifact
   * roots and provided artifacts, the local backend's hostRepoDir). Empty: the data folder only.
   */
  RECOGDRIVE_ALLOWED_ROOTS: CommaList(/^\/(?!.*(^|\/)\.{1,2}(\/|$))[^,]*$/, 'absolute paths without . or .. segments'),
  // SSH to stage workers (static hosts, TPU VMs). The key itself is read by activities/ssh/credentials.ts.
  RECOGDRIVE_SSH_KEY_FILE: AbsolutePath.optional(),
  RECOGDRIVE_KNOWN_HOSTS: AbsolutePath.default(join(homedir(), '.ssh', 'known_hosts')),
  RECOGDRIVE_REMOTE_SUDO: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /**
   * Comma-separated `user@host[:port]` (port 22 by default): the static hosts the janitor looks
   * at for stage containers of closed runs. List every host your runs use as `static`.
   */
  RECOGDRIVE_STATIC_HOSTS: CommaList(STATIC_HOST, 'user@host[:port]')
    .transform((items) => items.map(parseStaticHost))
    .refine((hosts) => hosts.every((h) => h.port <= 65_535), 'ports are 1-65535')
    .refine((hosts) => new Set(hosts.map((h) => `${h.address}:${h.port}`)).size === hosts.length, 'each host:port once'),
  /** Where workers see gs:// artifacts (gcsfuse mount root). */
  RECOGDRIVE_ARTIFACT_MOUNT_ROOT: AbsolutePath.default(ARTIFACT_MOUNT_ROOT),
  RECOGDRIVE_SSH_CONNECT_DEADLINE_MS: PositiveInt.default(180_000),
  /** A poll of a running stage gives up connecting after this long; a host silent for 3 polls is lost. */
  RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS: PositiveInt.default(10_000),
  RECOGDRIVE_SSH_MAX_CONNECTIONS: PositiveInt.default(64),
  RECOGDRIVE_SSH_CHANNELS_PER_CONNECTION: PositiveInt.default(8),
  // Image registries, asked for the digest a tag names (activities/images/registry-client.ts).
  /** A docker config.json with registry credentials (`auths`); Google registries without an entry use Application Default Credentials. */
  RECOGDRIVE_REGISTRY_AUTH_FILE: AbsolutePath.default(join(homedir(), '.docker', 'config.json')),
  /** Comma-separated registries on this machine that speak plain http (tests, a local mirror); all others are https. */
  RECOGDRIVE_REGISTRY_INSECURE_HOSTS: CommaList(/^(?:127\.0\.0\.1|localhost|\[::1\])(?::[1-9]\d{0,4})?$/, '127.0.0.1:<port> or localhost:<port> (plain http only on this machine)'),
  // Cloud backends (tpu-api, compute-engine): on when projects are given and an SSH key is configured.
  /** Comma-separated Google Cloud projects this worker may create TPUs and VMs in (a run's gcp.project must be one). */
  RECOGDRIVE_GCP_PROJECTS: CommaList(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'project ids'),
  /** Comma-separated zones the janitor lists for leaked machines (runs may use others; list them all). */
  RECOGDRIVE_GCP_ZONES: CommaList(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/, 'zones like us-east5-b'),
  /** SSH user on cloud VMs; its public key (derived from the private key) goes into the VM's metadata. */
  RECOGDRIVE_CLOUD_SSH_USER: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'not a user name').default('recogdrive'),
  /**
   * The service account the VMs run as (their bring-up pulls the image, reads the code and data and
   * writes outputs with it; the worker's own credentials never go onto a VM). Default: the
   * project's Compute Engine default service account. It needs roles/artifactregistry.reader on
   * the image repository and roles/storage.objectUser on the buckets (README: "Before the first cloud run").
   */
  RECOGDRIVE_VM_SERVICE_ACCOUNT: z
    .string()
    .regex(/^(default|[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com|[0-9]+-compute@developer\.gserviceaccount\.com)$/, 'default, or a service account email (NAME@PROJECT.iam.gserviceaccount.com)')
    .default('default'),
  /** Comma-separated OAuth scopes of the VMs' service account (default cloud-platform: IAM roles decide). */
  RECOGDRIVE_VM_SCOPES: CommaList(/^https:\/\/www\.googleapis\.com\/auth\/[a-z.-]+$/, 'scope URLs like https://www.googleapis.com/auth/cloud-platform'),
  /** Between polls of a creating or deleting machine. */
  RECOGDRIVE_CLOUD_POLL_INTERVAL_MS: PositiveInt.default(15_000),
  /** Emulators of the Cloud TPU API (host:port, plaintext) and of Compute Engine (http://host:port), for tests. */
  RECOGDRIVE_TPU_API_ENDPOINT: z.string().regex(/^[A-Za-z0-9.-]+:\d+$/, 'host:port').optional(),
  RECOGDRIVE_COMPUTE_API_ENDPOINT: z.string().regex(/^http:\/\/[A-Za-z0-9.-]+:\d+$/, 'http://host:port').optional(),
  /**
   * Emulators only: a VM's SSH port is the one the emulator gives it — a TPU worker's network
   * endpoint port (the real API puts the TPU runtime's port there), a Compute Engine VM's guest
   * attribute recogdrive/ssh-port (real VMs have none). Never set it against the real APIs.
   */
  RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
});

export type WorkerConfig = z.output<typeof Env>;

/** The folders runs may use on this host: RECOGDRIVE_ALLOWED_ROOTS, or the data folder the worker runs with. */
export function allowedRoots(config: WorkerConfig, dataDir: string = config.RECOGDRIVE_DATA_DIR): string[] {
  return config.RECOGDRIVE_ALLOWED_ROOTS.length > 0 ? config.RECOGDRIVE_ALLOWED_ROOTS : [dataDir];
}

/** How this process reaches image registries (activities/images/registry-access.ts). */
export function registryAccess(config: WorkerConfig): RegistryAccess {
  return { authFile: config.RECOGDRIVE_REGISTRY_AUTH_FILE, insecureHosts: config.RECOGDRIVE_REGISTRY_INSECURE_HOSTS };
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n  - ${lines.join('\n  - ')}`);
  }
  return parsed.data;
}
