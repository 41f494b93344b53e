/**
 * `recogdrive status <run> [--watch]`: the run's per-stage state, attempt, progress bar and ETA;
 * with --watch it redraws until the run ends (in place on a terminal, one block per change
 * otherwise) and its exit code says how the run ended.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { RunStatus } from '../pipeline/status.ts';
import { formatStatus } from './format.ts';
import { runStatus } from './runs.ts';

export interface WatchOptions {
  intervalMs: number;
  json: boolean;
  write(text: string): void;
  /** True when the output is a terminal: redraw in place. */
  tty: boolean;
}

/** Prints the status until the run is no longer running; returns the final state. */
export async function watchStatus(client: Client, runId: string, options: WatchOptions): Promise<RunStatus['state']> {
  let last = '';
  for (;;) {
    const status = await runStatus(client, runId);
    const text = options.json ? `${JSON.stringify(status)}\n` : `${formatStatus(status)}\n`;
    if (text !== last) {
      // Clear the screen and home the cursor: the view stays in one place on a terminal.
      options.write(options.tty && !options.json ? `\u001b[2J\u001b[H${text}` : text);
      last = text;
    }
    if (status.state !== 'running') return status.state;
    await sleep(options.intervalMs);
  }
}
