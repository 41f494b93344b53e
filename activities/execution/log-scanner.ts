/** Reads a growing log in chunks: progress lines, wanted patterns, and the last lines for errors. */
import { ProgressTracker, type Progress, type ProgressHints } from '../../pipeline/progress.ts';

const TAIL_LINES = 40;

export class LogScanner {
  private readonly tracker: ProgressTracker;
  private readonly patterns: readonly string[];
  private readonly seen = new Set<string>();
  private readonly tail: string[] = [];
  private partial = '';
  private progressChanged = false;
  /** When a progress line last moved progress (epoch ms); undefined until the first one. */
  progressedAt: number | undefined;

  /** `alreadySeen`: patterns a previous watcher saw before this one resumed mid-log. */
  constructor(hints: ProgressHints, patterns: readonly string[], alreadySeen: readonly string[] = []) {
    this.tracker = new ProgressTracker(hints);
    this.patterns = patterns;
    for (const pattern of alreadySeen) if (patterns.includes(pattern)) this.seen.add(pattern);
  }

  /** Feeds a chunk of log text (may end mid-line; tqdm separates updates with \r). */
  feed(chunk: string, now: number): void {
    const lines = (this.partial + chunk).split(/\r\n|\r|\n/);
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line, now);
  }

  /** Flushes a last line without newline (at exit). */
  finish(now: number): void {
    if (this.partial !== '') this.line(this.partial, now);
    this.partial = '';
  }

  /** Progress if it changed since the last call. */
  takeProgress(): Progress | undefined {
    if (!this.progressChanged) return undefined;
    this.progressChanged = false;
    return this.tracker.snapshot();
  }

  /**
   * Whether the stage is stuck: no progress line for `hangMs` once it has printed progress, or no
   * output at all for `hangMs` before that (a trainer repeating a warning is not making progress).
   */
  stalled(now: number, lastOutputAt: number, hangMs: number): boolean {
    return now - (this.progressedAt ?? lastOutputAt) > hangMs;
  }

  /** Progress as it is now (whether or not it was taken). */
  progress(): Progress | undefined {
    return this.tracker.snapshot();
  }

  seenPatterns(): string[] {
    return [...this.seen];
  }

  lastLines(): string[] {
    return [...this.tail];
  }

  private line(line: string, now: number): void {
    if (line.trim() === '') return;
    if (this.tracker.feed(line, now)) {
      this.progressChanged = true;
      this.progressedAt = now;
    }
    for (const pattern of this.patterns) if (line.includes(pattern)) this.seen.add(pattern);
    this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }
}
