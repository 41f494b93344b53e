/** progress.json of the running attempt: written at start, then at most every interval, replaced atomically. */
import { join } from 'node:path';
import { MARKER_SCHEMA, progressMarkerPath, type ProgressMarker } from '../../pipeline/markers.ts';
import type { WrapperConfig } from './env.ts';
import { replaceAtomically } from './markers-writer.ts';
import type { OutputLines } from './output-lines.ts';

export class ProgressWriter {
  private readonly config: WrapperConfig;
  private readonly lines: OutputLines;
  private readonly startedAt: Date;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private warned = false;

  constructor(config: WrapperConfig, lines: OutputLines, startedAt: Date) {
    this.config = config;
    this.lines = lines;
    this.startedAt = startedAt;
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.config.progressIntervalMs);
  }

  /** No more writes; resolves once a write in flight has finished (so it cannot land after the verdict). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private tick(): void {
    if (this.inFlight !== undefined) return; // a slow mount: skip this one rather than queue writes
    const marker: ProgressMarker = {
      schema: MARKER_SCHEMA,
      stage: this.config.stage,
      attempt: this.config.attempt,
      worker: this.config.worker,
      startedAt: this.startedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      lines: this.lines.lines,
      lastLine: this.lines.lastLine,
    };
    const path = join(this.config.outputDir, progressMarkerPath(this.config.attempt));
    this.inFlight = replaceAtomically(path, `${JSON.stringify(marker, null, 2)}\n`)
      .catch((error: unknown) => {
        // Progress is informative only: say so once and keep the stage running.
        if (!this.warned) process.stderr.write(`recogdrive-stage: ${(error as Error).message}\n`);
        this.warned = true;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }
}
