/**
 * What a worker process can run on: always the embedded default (local); with an SSH key
 * configured, also `static` hosts through docker over SSH, and with RECOGDRIVE_GCP_PROJECTS
 * too, TPU VMs (tpu-api) and Compute Engine VMs (compute-engine).
 */
import { StaticComputeProvider } from '../activities/compute/static.ts';
import { DockerSshExecutor } from '../activities/execution/docker-ssh.ts';
import type { ActivityDependencies } from '../activities/index.ts';
import { loadSshKey } from '../activities/ssh/credentials.ts';
import { SshPool } from '../activities/ssh/pool.ts';
import { defaultHostPath } from '../pipeline/launch.ts';
import { allowedRoots, configFromEnv, registryAccess } from './config.ts';
import { localBackend } from './local-backend.ts';

export interface WorkerBackend {
  deps: ActivityDependencies;
  close(): void;
}

export async function createBackend(env: NodeJS.ProcessEnv = process.env, dataDir?: string): Promise<WorkerBackend> {
  const config = configFromEnv(env);
  const local = { ...localBackend(dataDir ?? config.RECOGDRIVE_DATA_DIR, env), allowedRoots: allowedRoots(config, dataDir), registry: registryAccess(config) };
  const key = await loadSshKey(env);
  if (key === undefined) {
    if (config.RECOGDRIVE_STATIC_HOSTS.length > 0) throw new Error('RECOGDRIVE_STATIC_HOSTS is set but no SSH key is (RECOGDRIVE_SSH_KEY_FILE or RECOGDRIVE_SSH_KEY): the janitor could not reach those hosts');
    return { deps: local, close: () => {} };
  }
  const pool = new SshPool({
    key,
    connectDeadlineMs: config.RECOGDRIVE_SSH_CONNECT_DEADLINE_MS,
    keepaliveIntervalMs: 15_000,
    maxConnections: config.RECOGDRIVE_SSH_MAX_CONNECTIONS,
    maxChannelsPerConnection: config.RECOGDRIVE_SSH_CHANNELS_PER_CONNECTION,
  });
  const ssh = new DockerSshExecutor({
    pool,
    sudo: config.RECOGDRIVE_REMOTE_SUDO,
    hostPathOf: (source) => defaultHostPath(source, config.RECOGDRIVE_ARTIFACT_MOUNT_ROOT),
    pollConnectDeadlineMs: config.RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS,
  });
  // The janitor looks at the configured static hosts as the executor reaches them (same pool, sudo, pinned keys).
  const staticProvider = new StaticComputeProvider(config.RECOGDRIVE_KNOWN_HOSTS, {
    hosts: config.RECOGDRIVE_STATIC_HOSTS,
    pool,
    sudo: config.RECOGDRIVE_REMOTE_SUDO,
    connectDeadlineMs: config.RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS,
  });
  // The Google clients take seconds to load: only workers that serve cloud projects load them.
  const cloud = config.RECOGDRIVE_GCP_PROJECTS.length === 0 ? undefined : (await import('./cloud-backends.ts')).createCloudBackends(config, key);
  return {
    deps: {
      ...local,
      compute: { ...local.compute, static: staticProvider, ...cloud?.providers },
      executors: { ...local.executors, ssh },
      ...(cloud === undefined ? {} : { cloudProjects: cloud.projects }),
    },
    close: () => {
      pool.close();
      void cloud?.close();
    },
  };
}
