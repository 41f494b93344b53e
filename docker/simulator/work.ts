/**
 * Pacing of a stage's work: RECOGDRIVE_SIM_DURATION_MS is spread evenly over its units (steps,
 * batches, tokens), and an abrupt fault fires once RECOGDRIVE_SIM_FAULT_AT of them are done.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Controls } from './controls.ts';
import { injectFault, type AbruptFault } from './faults.ts';

export class Work {
  readonly total: number;
  readonly #durationMs: number;
  readonly #faultAt: number;
  readonly #scriptName: string;
  #fault: AbruptFault | undefined;
  #done = 0;
  readonly #start = performance.now();
  #lastEnd = performance.now();

  constructor(total: number, controls: Controls, scriptName: string) {
    this.total = total;
    this.#durationMs = controls.durationMs;
    this.#faultAt = controls.faultAt;
    this.#scriptName = scriptName;
    this.#fault = controls.fault === 'partial' ? undefined : controls.fault;
  }

  get done(): number {
    return this.#done;
  }

  /**
   * Call before each unit. Fires the fault when its moment has come, then waits until the unit's
   * share of the duration has passed (deadlines, not fixed sleeps, so many tiny units stay cheap).
   * Returns the unit's wall time in seconds, for the "Time:" fields.
   */
  async next(): Promise<number> {
    await this.#faultIfDue();
    const deadline = this.#start + (this.#durationMs * (this.#done + 1)) / this.total;
    const wait = deadline - performance.now();
    if (wait > 0) await sleep(wait);
    this.#done += 1;
    const now = performance.now();
    const seconds = (now - this.#lastEnd) / 1000;
    this.#lastEnd = now;
    return seconds;
  }

  /** Call when all units are done: a fault due at the very end (or with no units at all) fires here. */
  async finish(): Promise<void> {
    await this.#faultIfDue();
  }

  async #faultIfDue(): Promise<void> {
    if (this.#fault === undefined || this.#done < this.#faultAt * this.total) return;
    const fault = this.#fault;
    this.#fault = undefined;
    await injectFault(fault, this.#scriptName);
  }
}
