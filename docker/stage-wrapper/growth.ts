/**
 * Output growth (pipeline/output-growth.ts): walks the stage's output folder now and then and
 * tells when its count of files or bytes changed, so a stage that writes for hours while printing
 * nothing (the metric cache's Ray workers) still shows it is alive.
 *
 * Cheap by construction: one walk at a time; the next starts no sooner than the interval after
 * the previous one started, nor sooner than GROWTH_COST_FACTOR (20) × the previous walk's duration
 * (walks take at most ~5% of wall time, whatever the mount: a gcsfuse listing is slow); a missing
 * folder counts as empty; files vanishing or unreadable mid-walk are skipped.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isMarkerPath, type MarkerLayout } from '../../pipeline/markers.ts';
import { nextGrowthScanDelay, type GrowthRecord, type OutputTotals } from '../../pipeline/output-growth.ts';

/** Folders read, or files stat'ed, at once (a gcsfuse mount answers each with a round trip). */
const CONCURRENCY = 16;

/**
 * Files and bytes below `root` (a symbolic link to a file counts as that file; linked folders are
 * not followed). In the old `inside` layout the protocol's own files at the root are left out.
 * Never throws: what cannot be read counts as absent. Once `signal` is aborted it stops early
 * (the totals are then partial).
 */
export async function measureOutput(root: string, layout: MarkerLayout, signal?: AbortSignal): Promise<OutputTotals> {
  const totals = { files: 0, bytes: 0 };
  const folders: string[] = [root];
  const visit = async (folder: string): Promise<void> => {
    if (signal?.aborted) return;
    const entries: Dirent[] = await readdir(folder, { withFileTypes: true }).catch(() => []);
    const files: string[] = [];
    for (const entry of entries) {
      if (folder === root && layout === 'inside' && isMarkerPath(entry.name)) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) folders.push(path);
      else if (entry.isFile() || entry.isSymbolicLink()) files.push(path);
    }
    for (let i = 0; i < files.length && !signal?.aborted; i += CONCURRENCY) {
      await Promise.all(
        files.slice(i, i + CONCURRENCY).map(async (path) => {
          const info = await stat(path).catch(() => undefined);
          if (info?.isFile()) {
            totals.files++;
            totals.bytes += info.size;
          }
        }),
      );
    }
  };
  // Up to CONCURRENCY folders at once: a cache is many small folders (one per token).
  const running = new Set<Promise<void>>();
  while ((folders.length > 0 && !signal?.aborted) || running.size > 0) {
    while (folders.length > 0 && running.size < CONCURRENCY && !signal?.aborted) {
      const task: Promise<void> = visit(folders.pop()!).finally(() => running.delete(task));
      running.add(task);
    }
    if (running.size > 0) await Promise.race(running);
  }
  return totals;
}

export interface GrowthOptions {
  outputDir: string;
  layout: MarkerLayout;
  intervalMs: number;
  /** Called after a walk whose totals differ from the previous walk's (never for the first walk, the baseline). */
  onChange(record: GrowthRecord): void;
  /** Replaceable for tests. */
  measure?: (root: string, layout: MarkerLayout, signal: AbortSignal) => Promise<OutputTotals>;
}

export class OutputGrowth {
  private readonly options: GrowthOptions;
  private readonly measure: (root: string, layout: MarkerLayout, signal: AbortSignal) => Promise<OutputTotals>;
  /** Cuts a walk in flight short at stop(): a long walk of a big cache must not delay the verdict. */
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private last: GrowthRecord | undefined;

  constructor(options: GrowthOptions) {
    this.options = options;
    this.measure = options.measure ?? measureOutput;
  }

  /** The last walk's totals, when it ran and when the totals last changed; undefined before the first walk ended. */
  get record(): GrowthRecord | undefined {
    return this.last === undefined ? undefined : { ...this.last };
  }

  /** The baseline walk now, then walks on the schedule until stop(). */
  start(): void {
    this.scan();
  }

  /** No more walks; a walk in flight stops early (its partial totals are dropped); resolves once it has. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private scan(): void {
    if (this.stopped || this.inFlight !== undefined) return;
    const started = performance.now();
    this.inFlight = this.measure(this.options.outputDir, this.options.layout, this.abort.signal)
      .then((totals) => this.settle(totals), () => undefined)
      .finally(() => {
        this.inFlight = undefined;
        if (this.stopped) return;
        const delay = nextGrowthScanDelay(this.options.intervalMs, performance.now() - started);
        this.timer = setTimeout(() => this.scan(), delay);
        this.timer.unref();
      });
  }

  private settle(totals: OutputTotals): void {
    if (this.stopped) return; // cut short: partial totals
    const now = new Date().toISOString();
    const previous = this.last;
    const changed = previous !== undefined && (previous.files !== totals.files || previous.bytes !== totals.bytes);
    this.last = { files: totals.files, bytes: totals.bytes, scannedAt: now, changedAt: previous === undefined || changed ? now : previous.changedAt };
    if (changed) this.options.onChange({ ...this.last });
  }
}
