/**
 * The stage completion protocol: what the stage wrapper (docker/stage-wrapper/, inside the
 * container) and the orchestrator leave beside a stage's outputs, and where. Types and paths only,
 * no imports, so the wrapper can use this file inside any image with nothing but a `node` binary.
 *
 * The markers live in a folder of their own BESIDE the output, never inside it: upstream readers
 * iterate every entry of a cache root (navsim's Dataset._load_valid_caches calls iterdir() on each),
 * so a DONE.json there crashes the evaluation and a marker folder would be taken for a log.
 *
 *   <parent>/_recogdrive/<name>/DONE.json                      exactly once per output, when the command exited 0
 *   <parent>/_recogdrive/<name>/MANIFEST.tsv                   "<path>\t<bytes>\n" per output file, sorted by path
 *   <parent>/_recogdrive/<name>/attempt-<N>/VERDICT.json       claimed once per attempt before its DONE.json or FAILED.json
 *   <parent>/_recogdrive/<name>/attempt-<N>/FAILED.json        exactly once per failed attempt
 *   <parent>/_recogdrive/<name>/attempt-<N>/progress.json      replaced while the attempt runs
 *   <parent>/_recogdrive/<name>/ARTIFACT.json                  lineage record, written by the orchestrator once verified
 *
 * for an output `<parent>/<name>` (a run's stage output `<root>/runs/<run>/<stage>` has its markers
 * in `<root>/runs/<run>/_recogdrive/<stage>`). Outputs of runs started before this layout
 * ("inside": DONE.json at the output root, the rest under `<output>/_recogdrive/`) stay readable.
 *
 * DONE.json and FAILED.json are created only if absent (O_EXCL on a file system or gcsfuse
 * mount, ifGenerationMatch=0 through the Cloud Storage API), so a second writer (a zombie
 * container, the orchestrator recording a kill) can never overwrite a verdict. One attempt has one
 * verdict: each writer first claims attempt-<N>/VERDICT.json the same way and refuses to write a
 * verdict that contradicts the claim (a zombie's DONE.json after the orchestrator declared the
 * attempt failed). Readers treat an attempt's FAILED.json as final even if its DONE.json appears.
 */

/** Name of the folder of the protocol's own files (beside the outputs; inside them in the old layout). */
export const MARKER_DIR = '_recogdrive';
export const DONE_MARKER = 'DONE.json';
export const MARKER_SCHEMA = 1;

/**
 * Where an output's markers are: `beside` (a folder of their own next to the output) or `inside`
 * (the layout of runs started before markers moved out of the data tree).
 */
export type MarkerLayout = 'beside' | 'inside';

/** An output's markers: the base URI (or path) every marker path below is relative to, and its layout. */
export interface MarkerLocation {
  layout: MarkerLayout;
  uri: string;
}

/** The marker files of a layout, relative to MarkerLocation.uri. */
export interface MarkerFiles {
  done: string;
  manifest: string;
  artifact: string;
  failed(attempt: number): string;
  progress(attempt: number): string;
  /**
   * The attempt's one verdict, claimed (created only if absent) before its DONE.json or FAILED.json
   * is written: whoever claims first decides the attempt; the other writer refuses (VerdictClaim).
   */
  verdict(attempt: number): string;
}

/** What attempt-<N>/VERDICT.json holds: which verdict the attempt has, and who gave it. */
export interface VerdictClaim {
  verdict: 'done' | 'failed';
  writer: 'wrapper' | 'orchestrator';
  at: string;
}

export function markerFiles(layout: MarkerLayout): MarkerFiles {
  const dir = layout === 'beside' ? '' : `${MARKER_DIR}/`;
  return {
    done: DONE_MARKER,
    manifest: `${dir}MANIFEST.tsv`,
    artifact: `${dir}ARTIFACT.json`,
    failed: (attempt) => `${dir}attempt-${attempt}/FAILED.json`,
    progress: (attempt) => `${dir}attempt-${attempt}/progress.json`,
    verdict: (attempt) => `${dir}attempt-${attempt}/VERDICT.json`,
  };
}

/**
 * The folder beside an output that holds its markers: `<parent>/_recogdrive/<name>` for
 * `<parent>/<name>` (URI or path). Undefined for an output without a parent (a bucket's root).
 */
export function besideMarkersUri(outputUri: string): string | undefined {
  const trimmed = outputUri.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  const parent = trimmed.slice(0, slash);
  const name = trimmed.slice(slash + 1);
  if (slash < 0 || name === '' || parent === '' || /^[a-z]+:\/?$/.test(parent) || /^gs:\/\/[^/]+$/.test(trimmed)) return undefined;
  return `${parent}/${MARKER_DIR}/${name}`;
}

/** An output's markers in a layout (a `beside` output without a parent has none: callers check besideMarkersUri first). */
export function markerLocation(outputUri: string, layout: MarkerLayout): MarkerLocation {
  if (layout === 'inside') return { layout, uri: outputUri };
  const uri = besideMarkersUri(outputUri);
  if (uri === undefined) throw new Error(`${outputUri} has no parent folder to keep its markers beside it`);
  return { layout, uri };
}

/** True for output-relative paths that belong to the old `inside` layout's protocol files, not to the stage's outputs. */
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
  /** Where the markers go, beside the outputs (same kind of path). Unset: the old `inside` layout, under outputDir. */
  markerDir: 'RECOGDRIVE_MARKER_DIR',
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
  /** Path of the file list, relative to the markers' location (MarkerLocation.uri). */
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
