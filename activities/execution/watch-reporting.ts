/**
 * What every executor's watch loop reports while a stage runs: a heartbeat with a checkpoint
 * the next watcher can resume from, and progress to the run's status at most once per interval.
 * A retried watcher's reporting starts from its predecessor's checkpoint (totals, ETA basis).
 */
import type { WatchContext } from './executor.ts';
import type { LogScanner } from './log-scanner.ts';

export class WatchReporting {
  private readonly scanner: LogScanner;
  private readonly context: WatchContext;
  private readonly intervalMs: number;
  private lastReportAt = 0;

  constructor(scanner: LogScanner, context: WatchContext, intervalMs: number) {
    this.scanner = scanner;
    this.context = context;
    this.intervalMs = intervalMs;
    // Before the first line is fed: the executor's log position and this state come from the same heartbeat.
    scanner.resume(context.resumeFrom);
  }

  /** Heartbeats `checkpoint` (plus what was seen so far) and reports progress when due and changed. */
  async tick(now: number, checkpoint: Record<string, unknown>): Promise<void> {
    this.beat(checkpoint);
    if (now - this.lastReportAt < this.intervalMs) return;
    const progress = this.scanner.takeProgress();
    if (progress === undefined) return;
    this.lastReportAt = now;
    await this.context.reportProgress(progress);
  }

  /** Heartbeats `checkpoint` (plus what was seen so far) without reporting: the liveness beat between ticks. */
  beat(checkpoint: Record<string, unknown>): void {
    this.context.heartbeat({ ...checkpoint, ...this.scanner.checkpoint() });
  }

  /** Reports the last progress when the stage ended, whatever the interval. */
  async flush(now: number): Promise<void> {
    this.scanner.finish(now);
    const last = this.scanner.takeProgress();
    if (last !== undefined) await this.context.reportProgress(last);
  }
}
