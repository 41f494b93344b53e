/**
 * Turns the trainers' own log lines into progress (step, epoch, loss, fraction, ETA). The
 * scripts print no totals, so totals are derived from what they do print (dataset length,
 * number of training samples, tqdm counters) and the stage's settings (epochs, batch size).
 */
export interface ProgressHints {
  epochs?: number;
  batchSize?: number;
  gradientAccumulation?: number;
}

export interface Progress {
  epoch?: number;
  step?: number;
  totalSteps?: number;
  /** 0..1 when a total is known. */
  fraction?: number;
  loss?: number;
  reward?: number;
  /** Seconds until done at the rate seen so far. */
  etaSeconds?: number;
  /** The last line that moved progress. */
  line: string;
  updatedAt: number;
}

const EPOCH_STEP = /Epoch: (\d+), Step: (\d+), Loss: ([-+\w.]+)(?:, Reward: ([-+\w.]+))?/;
const DATASET_LENGTH = /Add dataset: \S+ with length: (\d+)/;
const TRAINING_SAMPLES = /Num training samples: (\d+)/;
const TQDM = /(\d+)%\|[^|]*\|\s*(\d+)\/(\d+)/;
const CACHING_BATCH = /^Batch (\d+): /;

export class ProgressTracker {
  private readonly hints: ProgressHints;
  private datasetSamples = 0;
  private current: Progress | undefined;
  private firstAt: { step: number; at: number } | undefined;

  constructor(hints: ProgressHints = {}) {
    this.hints = hints;
  }

  /** Feeds one log line; returns true when it changed the progress. */
  feed(line: string, now: number): boolean {
    const dataset = DATASET_LENGTH.exec(line);
    if (dataset) {
      this.datasetSamples += Number(dataset[1]);
      return this.update({ totalSteps: this.stepsFor(this.datasetSamples, true) }, line, now);
    }
    const samples = TRAINING_SAMPLES.exec(line);
    if (samples) return this.update({ totalSteps: this.stepsFor(Number(samples[1]), false) }, line, now);
    const epochStep = EPOCH_STEP.exec(line);
    if (epochStep) {
      return this.update(
        {
          epoch: Number(epochStep[1]),
          step: Number(epochStep[2]),
          loss: Number(epochStep[3]),
          ...(epochStep[4] === undefined ? {} : { reward: Number(epochStep[4]) }),
        },
        line,
        now,
      );
    }
    const tqdm = TQDM.exec(line);
    if (tqdm) return this.update({ step: Number(tqdm[2]), totalSteps: Number(tqdm[3]) }, line, now);
    const batch = CACHING_BATCH.exec(line);
    if (batch) return this.update({ step: Number(batch[1]) + 1 }, line, now);
    return false;
  }

  snapshot(): Progress | undefined {
    return this.current === undefined ? undefined : { ...this.current };
  }

  private stepsFor(samples: number, accumulate: boolean): number | undefined {
    const batch = this.hints.batchSize;
    if (batch === undefined || samples === 0) return undefined;
    const perStep = batch * (accumulate ? (this.hints.gradientAccumulation ?? 1) : 1);
    return Math.ceil(samples / perStep) * (this.hints.epochs ?? 1);
  }

  private update(fields: Partial<Progress>, line: string, now: number): boolean {
    const next: Progress = { ...this.current, ...fields, line: line.slice(0, 300), updatedAt: now };
    if (next.totalSteps === undefined) delete next.totalSteps;
    if (next.step !== undefined && next.totalSteps !== undefined && next.totalSteps > 0) {
      next.fraction = Math.min(1, next.step / next.totalSteps);
      if (this.firstAt === undefined) this.firstAt = { step: next.step, at: now };
      const doneSince = next.step - this.firstAt.step;
      const elapsed = (now - this.firstAt.at) / 1000;
      if (doneSince > 0 && elapsed > 0) {
        next.etaSeconds = Math.round(((next.totalSteps - next.step) * elapsed) / doneSince);
      }
    }
    this.current = next;
    return true;
  }
}
