/**
 * What a bare cloud VM needs before its stage can start, decided once by the pipeline workflow
 * (recorded in the stage's input, so a deploy does not change it for a run in flight) and carried
 * out over SSH by the bring-up activity (activities/bring-up/). Pure.
 */
import { parseImageReference, pinnedDigest, pinnedReference } from './image-reference.ts';
import { isCloudBackend, type PipelineConfig } from './input.ts';
import type { LaunchSpec } from './launch.ts';
import type { StageName } from './stages.ts';

/** Where a VM keeps what its bring-up fetched (work files, markers of finished steps); gs:// buckets are mounted under ARTIFACT_MOUNT_ROOT (launch.ts). */
export const VM_STATE_DIR = '/var/lib/recogdrive';

export type CodeSpec =
  | { kind: 'archive'; uri: string; /** base64 MD5 of the archive the plan fingerprinted (Cloud Storage's md5Hash), checked after download. */ md5?: string }
  | { kind: 'git'; url: string; commit: string };

export interface DataSpec {
  uri: string;
  /** Absolute path on the VM (inside repoDir). */
  dir: string;
  mode: 'copy' | 'mount';
}

export interface BringUpSpec {
  /** The image by digest (name@sha256:...): pulled before the launch, and what the launch runs. */
  image: string;
  /** The registry to log in to with the VM's own service account; absent for images the VM pulls anonymously. */
  registry?: string;
  /** The checkout on the VM (paths.hostRepoDir), mounted at /recogdrive. */
  repoDir: string;
  /** Absent: repoDir must already exist on the machine (a prepared image or disk). */
  code?: CodeSpec;
  data: DataSpec[];
  /** Buckets of the stage's gs:// inputs and outputs, mounted read-write with gcsfuse at ARTIFACT_MOUNT_ROOT/<bucket>. */
  buckets: string[];
}

/** The registry a VM logs in to for an image: none for Docker Hub (pulled anonymously). */
export function registryToLogIn(image: string): string | undefined {
  const ref = parseImageReference(image);
  return ref.registry === 'docker.io' ? undefined : ref.registry;
}

function bucketOf(uri: string): string | undefined {
  return uri.startsWith('gs://') ? uri.slice('gs://'.length).split('/')[0] : undefined;
}

/** The MD5 recorded in an archive's fingerprint component ("gs://... md5=<base64> generation=<n>"). */
export function archiveMd5(codeVersion: string | undefined): string | undefined {
  return codeVersion?.match(/ md5=([A-Za-z0-9+/=]+)/)?.[1];
}

/**
 * The bring-up of a stage on cloud compute; undefined on the local and static backends (their
 * machines are prepared by their owners). `imageDigest` is the registry digest the plan resolved,
 * `codeVersion` the fingerprint's record of the code (with the archive's MD5).
 */
export function bringUpSpecFor(
  config: PipelineConfig,
  stage: StageName,
  launch: Pick<LaunchSpec, 'image' | 'mounts'>,
  imageDigest: string,
  codeVersion?: string,
): BringUpSpec | undefined {
  if (!isCloudBackend(config[stage].compute.backend)) return undefined;
  const repoDir = config.paths.hostRepoDir.replace(/\/+$/, '');
  const code = config.sources?.code;
  const md5 = archiveMd5(codeVersion);
  const registry = registryToLogIn(launch.image);
  const buckets = [...new Set(launch.mounts.flatMap((m) => (m.source.kind === 'artifact' ? [bucketOf(m.source.uri)] : [])).filter((b): b is string => b !== undefined))];
  return {
    image: pinnedDigest(launch.image) === undefined && /^sha256:[a-f0-9]{64}$/.test(imageDigest) ? pinnedReference(parseImageReference(launch.image), imageDigest) : launch.image,
    ...(registry === undefined ? {} : { registry }),
    repoDir,
    ...(code === undefined
      ? {}
      : { code: 'archive' in code ? { kind: 'archive' as const, uri: code.archive, ...(md5 === undefined ? {} : { md5 }) } : { kind: 'git' as const, url: code.git, commit: code.commit } }),
    data: (config.sources?.data ?? []).map((d) => ({ uri: d.uri, dir: `${repoDir}/${d.path}`, mode: d.mode })),
    buckets: buckets.sort(),
  };
}
