/**
 * progress.json of the running attempt: written at start, then at most every interval and
 * whenever the output growth changed, replaced atomically. Beyond pipeline/markers.ts's
 * ProgressMarker it carries `output` (pipeline/output-growth.ts GrowthRecord) once the output
 * folder has been walked: files, bytes, when it was walked and when the totals last changed.
 */
import { join } from 'node:path';
import { markerFiles, MARKER_SCHEMA, type ProgressMarker } from '../../pipeline/markers.ts';
import type { GrowthRecord } from '../../pipeline/output-growth.ts';
import type { WrapperConfig } from './env.ts';
import { replaceAtomically } from './markers-writer.ts';
import type { OutputLines } from './output-lines.ts';

/** What the wrapper writes: the protocol's ProgressMarker plus the output folder's growth. */
export interface WrapperProgressMarker extends ProgressMarker {
  output?: GrowthRecord;
}

export interface ProgressSources {
  lines: OutputLines;
  startedAt: Date;
  /** The output folder's last walk, if any. */
  output?: () => GrowthRecord | undefined;
  /** Reports a failed write (once). */
  say: (line: string) => void;
}

export class ProgressWriter {
  private readonly config: WrapperConfig;
  private readonly sources: ProgressSources;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  /** A write was asked for while one was in flight: write once more after it. */
  private again = false;
  private stopped = false;
  private warned = false;

  constructor(config: WrapperConfig, sources: ProgressSources) {
    this.config = config;
    this.sources = sources;
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.config.progressIntervalMs);
  }

  /** Writes now (the output grew), or right after the write in flight. */
  update(): void {
    if (this.inFlight !== undefined) this.again = true;
    else this.tick();
  }

  /** No more writes; resolves once a write in flight has finished (so it cannot land after the verdict). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private tick(): void {
    if (this.stopped || this.inFlight !== undefined) return; // a slow mount: skip this one rather than queue writes
    const output = this.sources.output?.();
    const marker: WrapperProgressMarker = {
      schema: MARKER_SCHEMA,
      stage: this.config.stage,
      attempt: this.config.attempt,
      worker: this.config.worker,
      startedAt: this.sources.startedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      lines: this.sources.lines.lines,
      lastLine: this.sources.lines.lastLine,
      ...(output === undefined ? {} : { output }),
    };
    const path = join(this.config.markers.uri, markerFiles(this.config.markers.layout).progress(this.config.attempt));
    this.inFlight = replaceAtomically(path, `${JSON.stringify(marker, null, 2)}\n`)
      .catch((error: unknown) => {
        // Progress is informative only: say so once and keep the stage running.
        if (!this.warned) this.sources.say((error as Error).message);
        this.warned = true;
      })
      .finally(() => {
        this.inFlight = undefined;
        if (this.again) {
          this.again = false;
          this.tick();
        }
      });
  }
}
