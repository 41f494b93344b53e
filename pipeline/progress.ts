/**
 * Turns the trainers' own log lines, and the growth of their output folder, into progress (step,
 * epoch, loss, fraction, ETA). The scripts print no totals, so totals are derived from what they
 * do print (dataset length, number of samples, tqdm counters) and the stage's settings (epochs,
 * batch size, expected output files).
 *
 * Real lines carry logging prefixes (hydra's `[time][name][LEVEL] - `, Stage 1's
 * `time - LEVEL - name - `, nuplan's build_logger format), so every pattern matches the message
 * anywhere in the line, never at column 0. The shapes read (upstream, zorrofox/recogdrive and navsim/nuplan):
 *
 * - `Epoch: E, Step: S, Loss: L[, Reward: R][, Time: t]` (Stage 1, the torchax trainers): S is the
 *   0-based global step, printed every `logging_steps` / every 10 steps: S + 1 steps are done.
 * - `Add dataset: <name> with length: N` (Stage 1), `Num training samples: N` (Stages 2/3): the total.
 * - `Starting Inference on N samples...`, `Adjusted batch size: B`, `Batch i: 1.23s (4 samples). ...`
 *   (every 10 batches) and the tqdm `Caching: n/N` bar (feature cache): batch i done means i + 1 batches.
 * - `Rank 0 processing scenario i / N in thread_id=..., node_id=0` (evaluation, rank 0 only): step i of N.
 *   navsim's bare `Processing scenario i / N in thread_id=...` counts one worker thread's chunk
 *   (the metric cache on a thread pool): it shows the stage alive but is no step of the whole.
 * - `Epoch E:  45%|████▌     | 9/20 [...]`: PyTorch Lightning's training bar (the GPU scripts),
 *   batch n of N in epoch E (0-based): E × N + n steps of epochs × N.
 * - tqdm bars, by description: WORK_BARS count the stage's work (`Caching`), CHUNK_BARS count
 *   whole chunks of it (nuplan's worker_map gives each worker thread one chunk: `Ray objects: 0/8`
 *   sits at 0 until the end), LOADING_BARS only load data before the work (`Loading Valid Caches`
 *   counts logs, twice, before Stage 2/3 train). A loading bar, and a bar of any other
 *   description, never sets the step or the fraction: a wrong 100% is worse than none. Their
 *   moving counters still show the stage is alive (`feed` returns true).
 * - Output growth (the stage wrapper's `recogdrive-stage: output N files, M bytes`, see
 *   pipeline/output-growth.ts): with `expectedFiles` it gives the fraction when no finer source
 *   does (the metric cache), and a chunk bar never moves the fraction backwards.
 *
 * The ETA is measured from the first work progress (never from a loading bar, nor from a bar's
 * `0/N` start, which comes before compilation).
 */
import { formatGrowthLine, type OutputTotals } from './output-growth.ts';

export interface ProgressHints {
  epochs?: number;
  batchSize?: number;
  gradientAccumulation?: number;
  /** Files the complete output holds (caches: tokens × files per token): growth gives the fraction when nothing finer does. */
  expectedFiles?: number;
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
  /** The output folder as the stage wrapper last reported it (it reports only changes). */
  output?: OutputTotals;
  /** The last line that moved progress. */
  line: string;
  updatedAt: number;
}

/** tqdm descriptions of bars that count the stage's own work, item by item. */
export const WORK_BARS: readonly string[] = ['Caching'];
/** tqdm descriptions of bars that count whole chunks of the work (one per worker thread: they move only near the end). */
export const CHUNK_BARS: readonly string[] = ['Ray objects', 'ThreadPoolExecutor'];
/** tqdm descriptions of bars that load data before the work starts. */
export const LOADING_BARS: readonly string[] = ['Loading Valid Caches', 'Loading logs', 'Caching Dataset'];

const EPOCH_STEP = /\bEpoch: (\d+), Step: (\d+)(?:, Loss: ([^,\s]+))?(?:, Reward: ([^,\s]+))?/;
const DATASET_LENGTH = /\bAdd dataset: \S+ with length: (\d+)/;
const TRAINING_SAMPLES = /\bNum training samples: (\d+)/;
const INFERENCE_SAMPLES = /\bStarting Inference on (\d+) samples/;
const ADJUSTED_BATCH = /\bAdjusted batch size: (\d+)/;
const CACHING_BATCH = /\bBatch (\d+): [\d.]+s \(\d+ samples\)/;
const RANK_SCENARIO = /\bRank (\d+) processing scenario (\d+) \/ (\d+)\b/;
const THREAD_SCENARIO = /\bProcessing scenario (\d+) \/ (\d+)\b(?: in thread_id=([^,\s]+))?/;
/** Lightning's training bar: `Epoch 3:  45%|████▌     | 9/20 [00:02<00:02, 4.40it/s, v_num=0]`. */
const LIGHTNING_EPOCH = /\bEpoch (\d+):\s+\d{1,3}%\|[^|]*\|\s*(\d+)\/(\d+)(?![\d.kMGTP])/;
/** The training loss in the bar's postfix (`self.log("train/loss", ..., prog_bar=True)` in AgentLightningModule). */
const LIGHTNING_LOSS = /\btrain\/loss_step=([^,\]\s]+)/;
/** A tqdm bar: `desc: 42%|████▏     | 42/100 [...]` (the description may be empty; unit-scaled counts like 1.2k are not read). */
const TQDM = /(\d{1,3})%\|[^|]*\|\s*(\d+)\/(\d+)(?![\d.kMGTP])/;

type BarKind = 'work' | 'chunks' | 'loading' | 'other';
/** Where the fraction comes from: step counters of the stage's work, chunk bars, or output growth. */
type Basis = 'steps' | 'chunks' | 'output';

/**
 * What a tracker has learned, to carry over to the tracker of a retried watcher: totals come from
 * one early log line (dataset length, number of samples) that a watcher resuming mid-log never
 * reads again, and the ETA needs its baseline. Plain JSON (it travels in heartbeat details).
 */
export interface ProgressState {
  datasetSamples: number;
  batchSize?: number;
  current?: Progress;
  basis?: Basis;
  baseline?: { kind: 'steps' | 'coarse'; value: number; at: number };
  counters: Array<[string, string]>;
}

interface WorkUpdate {
  step: number;
  totalSteps?: number;
  basis: 'steps' | 'chunks';
  epoch?: number;
  loss?: number;
  reward?: number;
}

export class ProgressTracker {
  private readonly hints: ProgressHints;
  private datasetSamples = 0;
  private batchSize: number | undefined;
  private current: Progress | undefined;
  private basis: Basis | undefined;
  private baseline: { kind: 'steps' | 'coarse'; value: number; at: number } | undefined;
  /** The last counter seen per source (a repeated line, e.g. a tqdm redraw, is not a move). */
  private readonly counters = new Map<string, string>();
  private changes = 0;

  constructor(hints: ProgressHints = {}) {
    this.hints = hints;
    this.batchSize = hints.batchSize;
  }

  /** What this tracker has learned (see ProgressState). */
  state(): ProgressState {
    return {
      datasetSamples: this.datasetSamples,
      ...(this.batchSize === undefined ? {} : { batchSize: this.batchSize }),
      ...(this.current === undefined ? {} : { current: this.snapshot()! }),
      ...(this.basis === undefined ? {} : { basis: this.basis }),
      ...(this.baseline === undefined ? {} : { baseline: { ...this.baseline } }),
      // Per-thread counters (one per worker thread) only show liveness: left out, the heartbeat stays small.
      counters: [...this.counters].filter(([source]) => !source.startsWith('thread:')),
    };
  }

  /** Continues from a previous tracker's state (a retried watcher); counts as a change, so it is reported again. */
  restore(state: ProgressState): void {
    this.datasetSamples = state.datasetSamples;
    this.batchSize = state.batchSize ?? this.hints.batchSize;
    this.current = state.current === undefined ? undefined : { ...state.current, ...(state.current.output ? { output: { ...state.current.output } } : {}) };
    this.basis = state.basis;
    this.baseline = state.baseline === undefined ? undefined : { ...state.baseline };
    this.counters.clear();
    for (const [source, counter] of state.counters) this.counters.set(source, counter);
    if (this.current !== undefined) this.changes++;
  }

  /** Counts changes of the snapshot: compare two values to know whether progress changed in between. */
  get revision(): number {
    return this.changes;
  }

  /**
   * Feeds one log line; returns true when the line shows the stage moving forward: work progress,
   * or a counter (a data-loading bar, a bar of unknown description) that advanced.
   */
  feed(line: string, now: number): boolean {
    const dataset = DATASET_LENGTH.exec(line);
    if (dataset) {
      this.datasetSamples += Number(dataset[1]);
      this.setTotal(this.stepsFor(this.datasetSamples, true), line, now);
      return false;
    }
    const samples = TRAINING_SAMPLES.exec(line);
    if (samples) {
      this.setTotal(this.stepsFor(Number(samples[1]), false), line, now);
      return false;
    }
    const adjusted = ADJUSTED_BATCH.exec(line);
    if (adjusted) {
      this.batchSize = Number(adjusted[1]);
      return false;
    }
    const inference = INFERENCE_SAMPLES.exec(line);
    if (inference) {
      const batch = this.batchSize;
      if (batch !== undefined && batch > 0) this.setTotal(Math.ceil(Number(inference[1]) / batch), line, now);
      return false;
    }
    const epochStep = EPOCH_STEP.exec(line);
    if (epochStep) {
      const step = Number(epochStep[2]) + 1; // 0-based global step: step S printed means S + 1 steps done
      if (!this.moved('epoch-step', `${epochStep[1]}:${step}`)) return false;
      this.work({ step, basis: 'steps', epoch: Number(epochStep[1]), loss: finite(epochStep[3]), reward: finite(epochStep[4]) }, line, now, epochStep[4] !== undefined);
      return true;
    }
    const batch = CACHING_BATCH.exec(line);
    if (batch) {
      const step = Number(batch[1]) + 1;
      if (!this.moved('batch', String(step))) return false;
      this.work({ step, basis: 'steps' }, line, now, false);
      return true;
    }
    const scenario = RANK_SCENARIO.exec(line);
    if (scenario) {
      const step = Number(scenario[2]);
      const total = Number(scenario[3]);
      if (!this.moved(`rank:${scenario[1]}`, `${step}/${total}`)) return false;
      // Only rank 0 prints upstream; another rank's share is not the whole.
      if (scenario[1] === '0') this.work({ step, totalSteps: total, basis: 'steps' }, line, now, false);
      return true;
    }
    const lightning = LIGHTNING_EPOCH.exec(line);
    if (lightning) {
      const [epoch, n, perEpoch] = [Number(lightning[1]), Number(lightning[2]), Number(lightning[3])];
      if (!this.moved('lightning', `${epoch}:${n}/${perEpoch}`)) return false;
      const epochs = this.hints.epochs;
      const loss = finite(LIGHTNING_LOSS.exec(line)?.[1]);
      this.work({ step: epoch * perEpoch + n, ...(epochs === undefined ? {} : { totalSteps: epochs * perEpoch }), basis: 'steps', epoch, loss }, line, now, false);
      return true;
    }
    const threadScenario = THREAD_SCENARIO.exec(line);
    if (threadScenario) return this.moved(`thread:${threadScenario[3] ?? ''}`, `${threadScenario[1]}/${threadScenario[2]}`);
    const tqdm = TQDM.exec(line);
    if (tqdm) {
      const description = line.slice(0, tqdm.index).replace(/:\s*$/, '').trim();
      const n = Number(tqdm[2]);
      const total = Number(tqdm[3]);
      const kind = barKind(description);
      if (!this.moved(`bar:${kind === 'other' ? '' : description}`, `${n}/${total}`)) return false;
      if (kind === 'work' || kind === 'chunks') {
        this.work({ step: n, totalSteps: total, basis: kind === 'work' ? 'steps' : 'chunks' }, line, now, false);
      }
      return true;
    }
    return false;
  }

  /** The stage wrapper's report of the output folder (it reports only changes). */
  output(totals: OutputTotals, now: number): void {
    const fields: Partial<Progress> = { output: { files: totals.files, bytes: totals.bytes } };
    const expected = this.hints.expectedFiles;
    // Growth sets the fraction unless a step counter of the stage's own work does.
    const useGrowth = expected !== undefined && expected > 0 && this.basis !== 'steps';
    if (useGrowth || this.current === undefined) fields.line = formatGrowthLine(totals);
    this.commit(fields, now, useGrowth ? 'output' : undefined);
  }

  snapshot(): Progress | undefined {
    return this.current === undefined ? undefined : { ...this.current, ...(this.current.output ? { output: { ...this.current.output } } : {}) };
  }

  private moved(source: string, counter: string): boolean {
    if (this.counters.get(source) === counter) return false;
    this.counters.set(source, counter);
    return true;
  }

  private stepsFor(samples: number, accumulate: boolean): number | undefined {
    const batch = this.hints.batchSize;
    if (batch === undefined || samples === 0) return undefined;
    const perStep = batch * (accumulate ? (this.hints.gradientAccumulation ?? 1) : 1);
    return Math.ceil(samples / perStep) * (this.hints.epochs ?? 1);
  }

  private setTotal(totalSteps: number | undefined, line: string, now: number): void {
    if (totalSteps === undefined) return;
    this.commit({ totalSteps, line: line.slice(0, 300) }, now, undefined);
  }

  private work(update: WorkUpdate, line: string, now: number, hasReward: boolean): void {
    const fields: Partial<Progress> = { step: update.step, line: line.slice(0, 300) };
    if (update.totalSteps !== undefined) fields.totalSteps = update.totalSteps;
    if (update.epoch !== undefined) fields.epoch = update.epoch;
    if (update.basis === 'steps' && update.epoch !== undefined) {
      // A loss that is not a number (nan) must not leave the previous one standing.
      fields.loss = update.loss;
      if (hasReward) fields.reward = update.reward;
    }
    // A chunk bar never takes over from a finer step counter.
    if (update.basis === 'chunks' && this.basis === 'steps') return;
    this.commit(fields, now, update.basis);
  }

  /** Applies `fields` and recomputes fraction and ETA; `basis` says which source moved (undefined: only totals or output changed). */
  private commit(fields: Partial<Progress>, now: number, basis: Basis | undefined): void {
    const next: Progress = { line: '', ...this.current, ...fields, updatedAt: now };
    for (const key of ['totalSteps', 'loss', 'reward'] as const) if (next[key] === undefined) delete next[key];
    if (basis !== undefined && (this.basis === undefined || rank(basis) >= rank(this.basis))) this.basis = basis;

    const stepFraction = next.step !== undefined && next.totalSteps !== undefined && next.totalSteps > 0 ? Math.min(1, next.step / next.totalSteps) : undefined;
    const expected = this.hints.expectedFiles;
    const growthFraction = expected !== undefined && expected > 0 && next.output !== undefined ? Math.min(1, next.output.files / expected) : undefined;
    delete next.fraction;
    delete next.etaSeconds;
    if (this.basis === 'steps' && stepFraction !== undefined) {
      next.fraction = stepFraction;
      this.eta(next, 'steps', next.step!, next.totalSteps! - next.step!, now);
    } else {
      // Coarse sources: the best of a chunk bar and the output growth, never moving backwards.
      const coarse = [this.basis === 'chunks' ? stepFraction : undefined, growthFraction, this.current?.fraction].filter((f): f is number => f !== undefined);
      if (coarse.length > 0) {
        next.fraction = Math.max(...coarse);
        this.eta(next, 'coarse', next.fraction, 1 - next.fraction, now);
      }
    }
    this.current = next;
    this.changes++;
  }

  /**
   * Sets the ETA from the rate since the baseline: the first observation of this kind of progress
   * with some work done (a bar's 0/N start comes before compiling, a loading bar never counts).
   */
  private eta(next: Progress, kind: 'steps' | 'coarse', value: number, remaining: number, now: number): void {
    if (this.baseline?.kind !== kind) this.baseline = value > 0 ? { kind, value, at: now } : undefined;
    if (this.baseline === undefined) return;
    const done = value - this.baseline.value;
    const elapsed = (now - this.baseline.at) / 1000;
    if (done > 0 && elapsed > 0) next.etaSeconds = Math.max(0, Math.round((remaining * elapsed) / done));
  }
}

function barKind(description: string): BarKind {
  if (WORK_BARS.some((name) => describedAs(description, name))) return 'work';
  if (CHUNK_BARS.some((name) => describedAs(description, name))) return 'chunks';
  if (LOADING_BARS.some((name) => describedAs(description, name))) return 'loading';
  return 'other';
}

/** `Ray objects`, or `(pid=42) Ray objects` (Ray's prefix on forwarded output): the description, after any prefix. */
function describedAs(description: string, name: string): boolean {
  if (description === name) return true;
  return description.endsWith(name) && /[\s\])>|:]$/.test(description.slice(0, -name.length));
}

/** Steps beat chunks beat output growth. */
function rank(basis: Basis): number {
  return basis === 'steps' ? 2 : basis === 'chunks' ? 1 : 0;
}

function finite(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * The run's view of a stage's progress after an update of the same attempt. An update that lacks
 * the total steps the known progress has (a watcher that resumed without them, e.g. one of an
 * older worker) keeps the known total, with the fraction and, from the rate between the two, the
 * ETA it implies: a retry never blanks the bar. An update with its own total replaces everything.
 */
export function mergeProgress(known: Progress | undefined, update: Progress): Progress {
  const total = known?.totalSteps;
  if (known === undefined || total === undefined || total <= 0 || update.totalSteps !== undefined) return update;
  const merged: Progress = { ...update, totalSteps: total };
  if (update.step === undefined) return merged;
  if (merged.fraction === undefined) merged.fraction = Math.min(1, update.step / total);
  if (merged.etaSeconds === undefined) {
    const seconds = (update.updatedAt - known.updatedAt) / 1000;
    const done = known.step === undefined ? 0 : update.step - known.step;
    if (done > 0 && seconds > 0) merged.etaSeconds = Math.max(0, Math.round((Math.max(0, total - update.step) * seconds) / done));
    else if (known.etaSeconds !== undefined) merged.etaSeconds = known.etaSeconds;
  }
  return merged;
}
