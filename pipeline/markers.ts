/**
 * The stage completion protocol: what the stage wrapper (docker/stage-wrapper/, inside the
 * container) leaves next to a stage's outputs, and where. Types and paths only, no imports, so
 * the wrapper can use this file inside any image with nothing but a `node` binary.
 *
 *   <output>/DONE.json                            exactly once per output, when the command exited 0
 *   <output>/_recogdrive/MANIFEST.tsv             "<path>\t<bytes>\n" per output file, sorted by path
 *   <output>/_recogdrive/attempt-<N>/FAILED.json  exactly once per failed attempt
 *   <output>/_recogdrive/attempt-<N>/progress.json  replaced while the attempt runs
 *   <output>/_recogdrive/ARTIFACT.json            lineage record, written by the orchestrator once verified
 *
 * DONE.json and FAILED.json are created only if absent (O_EXCL on a file system or gcsfuse
 * mount, ifGenerationMatch=0 through the Cloud Storage API), so a second writer (a zombie
 * container, the orchestrator recording a kill) can never overwrite a verdict.
 */

/** Folder of the protocol's own files; never part of a stage's outputs (manifest, checks). */
export const MARKER_DIR = '_recogdrive';
export const DONE_MARKER = 'DONE.json';
export const MANIFEST_PATH = `${MARKER_DIR}/MANIFEST.tsv`;
export const ARTIFACT_RECORD_PATH = `${MARKER_DIR}/ARTIFACT.json`;
export const MARKER_SCHEMA = 1;

export function attemptMarkerDir(attempt: number): string {
  return `${MARKER_DIR}/attempt-${attempt}`;
}
export function failedMarkerPath(attempt: number): string {
  return `${attemptMarkerDir(attempt)}/FAILED.json`;
}
export function progressMarkerPath(attempt: number): string {
  return `${attemptMarkerDir(attempt)}/progress.json`;
}

/** True for output-relative paths that belong to the protocol, not to the stage's outputs. */
export function isMarkerPath(path: string): boolean {
  return path === DONE_MARKER || path === MARKER_DIR || path.startsWith(`${MARKER_DIR}/`);
}

/** Environment the wrapper reads (set by the launch spec and, per attempt/worker, by the executor). */
export const WRAPPER_ENV = {
  stage: 'RECOGDRIVE_STAGE',
  attempt: 'RECOGDRIVE_ATTEMPT',
  worker: 'RECOGDRIVE_WORKER',
  /** Where the outputs are as the wrapper sees them (container path; a host path for the local executor). */
  outputDir: 'RECOGDRIVE_OUTPUT_DIR',
  /** JSON of the contract's OutputCheck (pipeline/contracts/types.ts). */
  outputCheck: 'RECOGDRIVE_OUTPUT_CHECK',
  /** Milliseconds between progress.json writes (default 30000). */
  progressInterval: 'RECOGDRIVE_PROGRESS_INTERVAL_MS',
} as const;

export interface ManifestSummary {
  files: number;
  bytes: number;
  /** "sha256:<hex>" of MANIFEST.tsv's exact bytes. */
  digest: string;
  /** Output-relative path of the file list. */
  list: string;
}

export interface DoneMarker {
  schema: 1;
  stage: string;
  attempt: number;
  worker: number;
  exitCode: 0;
  startedAt: string;
  finishedAt: string;
  manifest: ManifestSummary;
  /** The contract's output check, run by the wrapper next to the data. */
  check: {
    spec: unknown;
    problems: string[];
    summary: Record<string, number | string>;
  };
}

export interface FailedMarker {
  schema: 1;
  stage: string;
  attempt: number;
  worker: number;
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  /** Last lines of the command's output (at most 50). */
  lastLines: string[];
  /** Who recorded the failure: the wrapper saw the exit; the orchestrator records kills, hangs and lost hosts. */
  writer: 'wrapper' | 'orchestrator';
  reason?: string;
}

export interface ProgressMarker {
  schema: 1;
  stage: string;
  attempt: number;
  worker: number;
  startedAt: string;
  updatedAt: string;
  /** Output lines seen so far, and the last non-empty one. */
  lines: number;
  lastLine: string;
}
