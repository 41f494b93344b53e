/**
 * Reads a growing log in chunks: progress lines, wanted patterns, the last lines for errors, and
 * the stage wrapper's output-growth lines (pipeline/output-growth.ts), which are liveness, not output.
 */
import { z } from 'zod';
import { GROWTH_LINE_PREFIX, parseGrowthLine, type OutputTotals } from '../../pipeline/output-growth.ts';
import { ProgressTracker, type Progress, type ProgressHints, type ProgressState } from '../../pipeline/progress.ts';

/** What a watcher heartbeats so that a retried one continues where it stopped (beside the executor's own position in the log). */
export interface ScannerCheckpoint {
  seen: string[];
  /** Progress as last reported, for whoever reads the heartbeat. */
  progress?: Progress;
  tracker: ProgressState;
}

const Count = z.number().finite().min(0);
const ProgressSchema = z.looseObject({
  epoch: Count.optional(),
  step: Count.optional(),
  totalSteps: Count.optional(),
  fraction: z.number().min(0).max(1).optional(),
  loss: z.number().finite().optional(),
  reward: z.number().finite().optional(),
  etaSeconds: Count.optional(),
  output: z.object({ files: Count, bytes: Count }).optional(),
  line: z.string(),
  updatedAt: Count,
});
/** Heartbeat details come back through Temporal from an earlier try, maybe of an older worker: checked, not trusted. */
const CheckpointSchema = z.looseObject({
  seen: z.array(z.string()).optional(),
  tracker: z
    .object({
      datasetSamples: Count,
      batchSize: Count.optional(),
      current: ProgressSchema.optional(),
      basis: z.enum(['steps', 'chunks', 'output']).optional(),
      baseline: z.object({ kind: z.enum(['steps', 'coarse']), value: z.number().finite(), at: Count }).optional(),
      counters: z.array(z.tuple([z.string(), z.string()])),
    })
    .optional(),
});

const TAIL_LINES = 40;

export class LogScanner {
  private readonly tracker: ProgressTracker;
  private readonly patterns: readonly string[];
  private readonly seen = new Set<string>();
  private readonly tail: string[] = [];
  private partial = '';
  private reportedRevision = 0;
  private growth: OutputTotals | undefined;
  /** When a progress line last moved progress (epoch ms); undefined until the first one. */
  progressedAt: number | undefined;
  /** When the stage last printed a line of its own (wrapper growth lines are not its output); starts when the scanner does. */
  outputAt: number;
  /** When a growth line last showed the output folder changed; undefined until the first one. */
  grewAt: number | undefined;

  /**
   * `alreadySeen`: patterns a previous watcher saw before this one resumed mid-log. `now`: when
   * watching starts (the "no output" clock starts there).
   */
  constructor(hints: ProgressHints, patterns: readonly string[], alreadySeen: readonly string[] = [], now = Date.now()) {
    this.tracker = new ProgressTracker(hints);
    this.patterns = patterns;
    this.outputAt = now;
    for (const pattern of alreadySeen) if (patterns.includes(pattern)) this.seen.add(pattern);
  }

  /** What the next watcher needs to continue: patterns seen and what progress has learned (totals, ETA basis). */
  checkpoint(): ScannerCheckpoint {
    const progress = this.tracker.snapshot();
    return { seen: this.seenPatterns(), ...(progress === undefined ? {} : { progress }), tracker: this.tracker.state() };
  }

  /**
   * Continues from a previous watcher's heartbeat (`resumeFrom`): its seen patterns and its
   * progress, so totals, bar and ETA survive a retry. Details it cannot read are ignored (progress
   * then starts over, as it did before watchers carried it); returns whether progress was restored.
   */
  resume(details: unknown): boolean {
    const parsed = CheckpointSchema.safeParse(details);
    if (!parsed.success) return false;
    for (const pattern of parsed.data.seen ?? []) if (this.patterns.includes(pattern)) this.seen.add(pattern);
    const tracker = parsed.data.tracker;
    if (tracker === undefined) return false;
    this.tracker.restore(tracker as ProgressState);
    return true;
  }

  /** Feeds a chunk of log text (may end mid-line; tqdm separates updates with \r). */
  feed(chunk: string, now: number): void {
    const lines = (this.partial + chunk).split(/\r\n|\r|\n/);
    const rest = lines.pop() ?? '';
    for (const line of lines) this.line(line, now);
    // An unfinished line is output already (not an unfinished growth line of the wrapper). A
    // complete tqdm update redrawn with \r and no newline yet (`... 3/8 [00:01<00:02, 2.1it/s]`)
    // may move progress: the tracker ignores the same counter when the line is finished later.
    if (rest !== this.partial && rest.trim() !== '' && !GROWTH_LINE_PREFIX.startsWith(rest) && !rest.startsWith(GROWTH_LINE_PREFIX)) {
      this.outputAt = now;
      if (TQDM_UPDATE.test(rest) && this.tracker.feed(rest, now)) this.progressedAt = now;
    }
    this.partial = rest;
  }

  /** Flushes a last line without newline (at exit). */
  finish(now: number): void {
    if (this.partial !== '') this.line(this.partial, now);
    this.partial = '';
  }

  /** Progress if it changed since the last call. */
  takeProgress(): Progress | undefined {
    if (this.tracker.revision === this.reportedRevision) return undefined;
    this.reportedRevision = this.tracker.revision;
    return this.tracker.snapshot();
  }

  /**
   * Whether the stage is stuck: neither a progress line nor a change of its output folder for
   * `hangMs` once it has printed progress; before that, neither output nor a change of its
   * output folder for `hangMs` (a trainer repeating a warning is not making progress; a metric
   * cache writing thousands of files while printing nothing is).
   */
  stalled(now: number, hangMs: number): boolean {
    const lastSign = Math.max(this.progressedAt ?? this.outputAt, this.grewAt ?? Number.NEGATIVE_INFINITY);
    return now - lastSign > hangMs;
  }

  /** Progress as it is now (whether or not it was taken). */
  progress(): Progress | undefined {
    return this.tracker.snapshot();
  }

  /** The output folder as the wrapper last reported it. */
  output(): OutputTotals | undefined {
    return this.growth === undefined ? undefined : { ...this.growth };
  }

  seenPatterns(): string[] {
    return [...this.seen];
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  private line(raw: string, now: number): void {
    let line = raw;
    const growth = parseGrowthLine(raw);
    if (growth !== undefined) {
      this.grew(growth, now);
      // The wrapper's line may be glued to another stream's unfinished line: that part is output.
      line = growth.before;
    }
    if (line.trim() === '') return;
    this.outputAt = now;
    if (this.tracker.feed(line, now)) this.progressedAt = now;
    for (const pattern of this.patterns) if (line.includes(pattern)) this.seen.add(pattern);
    this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }

  private grew(totals: OutputTotals, now: number): void {
    const previous = this.growth;
    this.growth = { files: totals.files, bytes: totals.bytes };
    // The wrapper prints only changes; a repeated line (a re-read) is not one.
    if (previous !== undefined && previous.files === totals.files && previous.bytes === totals.bytes) return;
    this.grewAt = now;
    this.tracker.output(totals, now);
  }
}

/** Log lines without the wrapper's growth lines (the part of a line a growth line was glued to stays). */
export function withoutGrowthLines(lines: readonly string[]): string[] {
  return lines.flatMap((line) => {
    const growth = parseGrowthLine(line);
    if (growth === undefined) return [line];
    return growth.before.trim() === '' ? [] : [growth.before];
  });
}

/** A whole tqdm update: counter, then tqdm's closing `[elapsed<remaining, rate]`. */
const TQDM_UPDATE = /%\|.*\d\/\d+ \[[^\]]*\]\s*$/;
