/**
 * The world a bare cloud VM meets, on this machine: the Cloud Storage emulator (code archive,
 * models, datasets, the runs' bucket), an authenticated registry holding the stage image, and a
 * bare test bed whose VMs reach both (test/testbed/ "Bare VMs"). The registry accepts the VMs'
 * service-account token as Artifact Registry does (`oauth2accesstoken` + the token).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { ensureRegistry, startRegistry, type RunningRegistry } from '../../infra/local/registry.ts';
import { containerHost, podman, writeContainerHost } from '../testbed/podman.ts';
import { installImageStore, stageImageStore } from '../testbed/stage-image.ts';
import { startTestbed, type Testbed } from '../testbed/testbed.ts';
import { startCountingProxy, type CountingProxy } from './counting-proxy.ts';
import { startGcsEmulator, type GcsEmulator } from './gcs-emulator.ts';

const run = promisify(execFile);

/** The token every VM's service account hands out here, and the registry's password for `oauth2accesstoken`. */
export const VM_TOKEN = 'ya29.vm-service-account-token';
export const VM_ACCOUNT = { email: 'recogdrive-vm@test-project.iam.gserviceaccount.com', token: VM_TOKEN };
export const REGISTRY_USER = 'oauth2accesstoken';

export interface BareWorld {
  emulator: GcsEmulator;
  storage: Storage;
  registry: RunningRegistry;
  bed: Testbed;
  /** With countVmTraffic: what the VMs (gcsfuse) sent to and got from Cloud Storage. */
  vmTraffic?: CountingProxy;
  /** The stage image in the registry, by tag ("127.0.0.1:P/recogdrive-tpu:stage1") and its digest. */
  image: string;
  digest: string;
  stop(): Promise<void>;
}

/** Pushes the test bed's stage image to the registry under `reference` (podman, from the cached image store). */
export async function pushStageImage(reference: string, password = VM_TOKEN): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rd-push-'));
  const host = containerHost(join(dir, 'host'));
  try {
    writeContainerHost(host);
    const store = await stageImageStore(['recogdrive-tpu:stage1']);
    await installImageStore(store.graphRoot, host.graphRoot);
    const pushed = await podman(host, ['push', '--tls-verify=false', '--digestfile', join(dir, 'digest'), '--creds', `${REGISTRY_USER}:${password}`, 'recogdrive-tpu:stage1', `docker://${reference}`]);
    if (pushed.code !== 0) throw new Error(`podman push ${reference} failed: ${pushed.stderr}`);
    return (await readFile(join(dir, 'digest'), 'utf8')).trim();
  } finally {
    await rm(host.stateDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startBareWorld(options: { workers: number; dir: string; gpus?: readonly number[]; buckets?: readonly string[]; /** More registry users (the worker's own, say). */ extraUsers?: Record<string, string>; /** The VMs reach Cloud Storage through a counting proxy. */ countVmTraffic?: boolean }): Promise<BareWorld> {
  await ensureRegistry();
  const emulator = await startGcsEmulator();
  const stops: Array<() => Promise<void>> = [() => emulator.stop()];
  try {
    for (const bucket of options.buckets ?? []) await emulator.createBucket(bucket);
    const registry = await startRegistry({ dir: join(options.dir, 'registry'), users: { [REGISTRY_USER]: VM_TOKEN, ...options.extraUsers } });
    stops.unshift(() => registry.stop());
    const image = `${registry.host}/recogdrive/recogdrive-tpu:stage1`;
    const digest = await pushStageImage(image);
    const vmTraffic = options.countVmTraffic === true ? await startCountingProxy(emulator.apiEndpoint) : undefined;
    if (vmTraffic !== undefined) stops.unshift(() => vmTraffic.close());
    const bed = await startTestbed({
      workers: options.workers,
      dir: join(options.dir, 'bed'),
      bare: true,
      insecureRegistries: [registry.host],
      gcsEndpoint: `${vmTraffic?.endpoint ?? emulator.apiEndpoint}/storage/v1/`,
      ...(options.gpus === undefined ? {} : { gpus: options.gpus }),
    });
    stops.unshift(() => bed.stop());
    const storage = new Storage({ apiEndpoint: emulator.apiEndpoint, projectId: emulator.projectId });
    return {
      emulator,
      storage,
      registry,
      bed,
      ...(vmTraffic === undefined ? {} : { vmTraffic }),
      image,
      digest,
      stop: async () => {
        for (const stop of stops) await stop().catch(() => {});
      },
    };
  } catch (error) {
    for (const stop of stops) await stop().catch(() => {});
    throw error;
  }
}

/** Uploads a local folder under gs://bucket/prefix (one object per file). */
export async function uploadFolder(storage: Storage, localDir: string, bucket: string, prefix: string): Promise<number> {
  const { stdout } = await run('find', [localDir, '-type', 'f', '-printf', '%P\\n']);
  const files = stdout.split('\n').filter((line) => line !== '');
  for (const file of files) await storage.bucket(bucket).upload(join(localDir, file), { destination: `${prefix}/${file}`, resumable: false });
  return files.length;
}

/** A tar.gz of a folder (with a top folder, as `git archive --prefix=recogdrive/` makes), leaving out `exclude` (relative paths). */
export async function archiveFolder(localDir: string, file: string, exclude: readonly string[] = []): Promise<void> {
  await run('tar', ['-czf', file, ...exclude.map((path) => `--exclude=recogdrive/${path}`), '--transform', 's,^\\.,recogdrive,', '-C', localDir, '.']);
}
