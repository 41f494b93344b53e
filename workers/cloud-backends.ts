/**
 * The cloud backends of a worker (tpu-api, compute-engine), from its configuration: on when
 * RECOGDRIVE_GCP_PROJECTS names projects and an SSH key is configured (the VMs are reached over
 * SSH with it; its public key goes into each VM's metadata). Credentials are Application Default
 * Credentials; RECOGDRIVE_TPU_API_ENDPOINT / RECOGDRIVE_COMPUTE_API_ENDPOINT point the real
 * clients at emulators.
 */
import ssh2 from 'ssh2';
import { ComputeEngineComputeProvider } from '../activities/compute/compute-engine.ts';
import type { ComputeProvider } from '../activities/compute/provider.ts';
import { TpuApiComputeProvider } from '../activities/compute/tpu-api.ts';
import type { SshKey } from '../activities/ssh/credentials.ts';
import type { WorkerConfig } from './config.ts';
import { CLOUD_PLATFORM_SCOPE } from '../activities/compute/vm-service-account.ts';

export interface CloudBackends {
  providers: { 'tpu-api': ComputeProvider; 'compute-engine': ComputeProvider };
  projects: readonly string[];
  close(): Promise<void>;
}

/** "ssh-ed25519 AAAA…" of the private key, for the VMs' `ssh-keys` metadata. */
export function publicKeyOf(key: SshKey): string {
  const parsed = ssh2.utils.parseKey(key.material());
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (first === undefined || first instanceof Error) throw new Error(`the SSH key cannot be read: ${first instanceof Error ? first.message : 'empty'}`);
  return `${first.type} ${first.getPublicSSH().toString('base64')}`;
}

export function createCloudBackends(config: WorkerConfig, key: SshKey): CloudBackends | undefined {
  const projects = config.RECOGDRIVE_GCP_PROJECTS;
  if (projects.length === 0) return undefined;
  const scope = projects.map((project) => ({ project, zones: config.RECOGDRIVE_GCP_ZONES }));
  const common = {
    scope,
    sshUser: config.RECOGDRIVE_CLOUD_SSH_USER,
    sshPublicKey: publicKeyOf(key),
    pollIntervalMs: config.RECOGDRIVE_CLOUD_POLL_INTERVAL_MS,
    serviceAccount: { email: config.RECOGDRIVE_VM_SERVICE_ACCOUNT, scopes: config.RECOGDRIVE_VM_SCOPES.length > 0 ? config.RECOGDRIVE_VM_SCOPES : [CLOUD_PLATFORM_SCOPE] },
  };
  const tpuEndpoint = config.RECOGDRIVE_TPU_API_ENDPOINT;
  const tpu = new TpuApiComputeProvider({
    ...common,
    sshPortFromEndpoint: config.RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT,
    ...(tpuEndpoint === undefined ? {} : { clientOptions: TpuApiComputeProvider.fakeClientOptions(Number(tpuEndpoint.split(':')[1]), tpuEndpoint.split(':')[0]) }),
  });
  const gceEndpoint = config.RECOGDRIVE_COMPUTE_API_ENDPOINT;
  const gce = new ComputeEngineComputeProvider({
    ...common,
    // A VM has no field for its SSH port: an emulator publishes it as a guest attribute.
    sshPortFromGuestAttributes: config.RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT,
    ...(gceEndpoint === undefined ? {} : { clientOptions: ComputeEngineComputeProvider.fakeClientOptions(Number(new URL(gceEndpoint).port), new URL(gceEndpoint).hostname) }),
  });
  return {
    providers: { 'tpu-api': tpu, 'compute-engine': gce },
    projects,
    close: async () => {
      await Promise.allSettled([tpu.close(), gce.close()]);
    },
  };
}
