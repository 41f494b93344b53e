/**
 * The folders of the worker host a run may read and write. A worker is configured with its
 * allowed roots (RECOGDRIVE_ALLOWED_ROOTS, default its data folder); a `file://` artifact root,
 * a `file://` provided artifact, or — when a stage runs on the local backend, as a process on
 * the worker host — `paths.hostRepoDir` outside them is refused. On static and cloud backends
 * hostRepoDir is a folder of the remote machine, so the worker's roots do not apply to it.
 * Pure and lexical (no file system): the `preflight` activity checks on every channel, the API
 * and the CLI may call pathsOutsideRoots for an early answer.
 */
import type { PipelineConfig } from './input.ts';

/** One worker-host path of a run, by the input field that names it. */
export interface WorkerHostPath {
  field: string;
  path: string;
}

export interface RootRefusal {
  path: string;
  message: string;
}

const FILE_SCHEME = 'file://';

/** The worker-host paths a run reads or writes (see the module comment). */
export function workerHostPaths(config: PipelineConfig): WorkerHostPath[] {
  const paths: WorkerHostPath[] = [];
  if (config.artifactRoot.startsWith(FILE_SCHEME)) paths.push({ field: 'artifactRoot', path: config.artifactRoot.slice(FILE_SCHEME.length) });
  for (const [stage, uri] of Object.entries(config.providedArtifacts)) {
    if (uri?.startsWith(FILE_SCHEME)) paths.push({ field: `providedArtifacts.${stage}`, path: uri.slice(FILE_SCHEME.length) });
  }
  if (config.stages.some((stage) => config[stage].compute.backend === 'local')) paths.push({ field: 'paths.hostRepoDir', path: config.paths.hostRepoDir });
  return paths;
}

/** Path segments, or undefined for a path that is not absolute or steps up (`..`). */
function segments(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const parts = path.split('/').filter((s) => s !== '' && s !== '.');
  return parts.includes('..') ? undefined : parts;
}

/** Whether `path` is one of `roots` or below one, on whole segments (/data2 is not within /data). */
export function isWithinRoots(path: string, roots: readonly string[]): boolean {
  const inner = segments(path);
  if (inner === undefined) return false;
  return roots.some((root) => {
    const outer = segments(root);
    return outer !== undefined && outer.length <= inner.length && outer.every((s, i) => inner[i] === s);
  });
}

/** Refusals, by field, for each worker-host path outside `roots`. */
export function hostPathsOutsideRoots(paths: readonly WorkerHostPath[], roots: readonly string[]): RootRefusal[] {
  const allowed = roots.length === 0 ? '(none)' : roots.join(', ');
  return paths
    .filter((p) => !isWithinRoots(p.path, roots))
    .map((p) => ({ path: p.field, message: `${p.path} is outside the folders this worker may use (${allowed}); use a folder below one of them, or have the operator add one to RECOGDRIVE_ALLOWED_ROOTS` }));
}

/** The refusals for a validated input on a worker with these roots; empty when every path is inside. */
export function pathsOutsideRoots(config: PipelineConfig, roots: readonly string[]): RootRefusal[] {
  return hostPathsOutsideRoots(workerHostPaths(config), roots);
}
