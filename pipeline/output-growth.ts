/**
 * Output growth: what the stage wrapper (docker/stage-wrapper/growth.ts) reports about the files
 * a stage writes, and how the orchestrator's watcher reads it back out of the container's log.
 * Some real stages print nothing for hours while they write thousands of files (the metric cache's
 * Ray workers): a growing output folder is how such a stage shows it is alive.
 *
 * The wrapper of worker 0 walks the output folder at most every RECOGDRIVE_GROWTH_INTERVAL_MS and,
 * whenever the count of files or bytes changed since its previous walk, prints ONE line on its
 * stderr, on a line of its own:
 *
 *   recogdrive-stage: output <files> files, <bytes> bytes
 *
 * (decimal integers, always these words, e.g. `recogdrive-stage: output 1234 files, 5678901 bytes`).
 * The first walk is the baseline and prints nothing; a folder that does not change prints nothing.
 * The same numbers go into progress.json (`output`, GrowthRecord).
 *
 * No imports: the wrapper uses this file inside any image with nothing but a `node` binary.
 */

/** Environment variable of the wrapper: milliseconds between two walks of the output folder (at least; see the wrapper's README). */
export const GROWTH_INTERVAL_ENV = 'RECOGDRIVE_GROWTH_INTERVAL_MS';
export const DEFAULT_GROWTH_INTERVAL_MS = 30_000;
/** The executors never ask for walks closer than this. */
export const MIN_GROWTH_INTERVAL_MS = 200;
/** A walk that took d ms is followed by the next one no sooner than GROWTH_COST_FACTOR × d after it started: walks cost at most 1/20 = 5% of wall time. */
export const GROWTH_COST_FACTOR = 20;

/** Start of a growth line (after the wrapper's usual `recogdrive-stage: ` prefix). */
export const GROWTH_LINE_PREFIX = 'recogdrive-stage: output ';
/** A growth line at the end of a log line (a prefix may be another stream's unfinished line it was glued to). */
const GROWTH_LINE = /recogdrive-stage: output (\d{1,15}) files, (\d{1,18}) bytes\s*$/;

export interface OutputTotals {
  files: number;
  bytes: number;
}

/** What progress.json records of the output (ISO times): the totals of the last walk, when it ran, and when the totals last changed. */
export interface GrowthRecord extends OutputTotals {
  scannedAt: string;
  changedAt: string;
}

export function formatGrowthLine(totals: OutputTotals): string {
  return `${GROWTH_LINE_PREFIX}${totals.files} files, ${totals.bytes} bytes`;
}

/**
 * The totals of a growth line, and the text before it on the same line (empty when the line is
 * only the growth line). Undefined for any other line.
 */
export function parseGrowthLine(line: string): (OutputTotals & { before: string }) | undefined {
  const match = GROWTH_LINE.exec(line);
  if (match === null) return undefined;
  const files = Number(match[1]);
  const bytes = Number(match[2]);
  if (!Number.isSafeInteger(files) || !Number.isSafeInteger(bytes)) return undefined;
  return { files, bytes, before: line.slice(0, match.index) };
}

/**
 * The walk interval an executor gives the wrapper for a stage with this hang timeout: a stage
 * that keeps writing then reports growth about six times per hang timeout (30 s at most, 200 ms at least).
 */
export function growthIntervalFor(hangTimeoutMs: number): number {
  return Math.max(MIN_GROWTH_INTERVAL_MS, Math.min(DEFAULT_GROWTH_INTERVAL_MS, Math.floor(hangTimeoutMs / 6)));
}

/**
 * How long to wait after a walk that took `scanMs` before starting the next: the interval, or
 * GROWTH_COST_FACTOR × the walk's duration if that is longer, counted from the walk's start.
 */
export function nextGrowthScanDelay(intervalMs: number, scanMs: number): number {
  return Math.max(0, Math.max(intervalMs, GROWTH_COST_FACTOR * scanMs) - scanMs);
}
