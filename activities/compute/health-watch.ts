/**
 * Watches a running stage and, beside it, the health of its cloud machine: a preempted or
 * terminated VM ends the watch within one check interval instead of after the SSH poll's
 * lost-host timeouts, and a watch that ended badly (lost host, killed container, error) is told
 * apart from a node loss by one more check. A failing health read is not a verdict: it is noted and retried.
 */
import { ApplicationFailure } from '@temporalio/common';
import { COMPUTE_FAILURES } from '../../pipeline/compute-failures.ts';
import type { ExitOutcome } from '../../pipeline/failures.ts';
import type { LeaseHealth } from '../types.ts';

type Lost = Extract<LeaseHealth, { state: 'lost' }>;

export interface HealthWatchOptions {
  /** Aborted when the activity is cancelled. */
  cancelled: AbortSignal;
  check: () => Promise<LeaseHealth>;
  intervalMs: number;
  /** The machine's name, for the failure message. */
  name: string;
  note: (message: string) => void;
}

/** The node loss as the typed, non-retryable failure the stage workflow reprovisions on. */
export function nodeLossFailure(name: string, lost: Lost): ApplicationFailure {
  return ApplicationFailure.create({
    type: COMPUTE_FAILURES[lost.failureClass].type,
    message: `${name}: ${lost.detail}`,
    nonRetryable: true,
    details: [{ node: name, failureClass: lost.failureClass }],
  });
}

export async function watchWithHealth(watch: (signal: AbortSignal) => Promise<ExitOutcome>, options: HealthWatchOptions): Promise<ExitOutcome> {
  const controller = new AbortController();
  const forwardCancel = (): void => controller.abort(options.cancelled.reason);
  if (options.cancelled.aborted) forwardCancel();
  else options.cancelled.addEventListener('abort', forwardCancel, { once: true });

  let lost: Lost | undefined;
  const probe = async (): Promise<Lost | undefined> => {
    try {
      const health = await options.check();
      return health.state === 'lost' ? health : undefined;
    } catch (error) {
      options.note(`health check of ${options.name} failed (${(error as Error).message}); checking again`);
      return undefined;
    }
  };
  let checking = false;
  const timer = setInterval(() => {
    if (checking || lost !== undefined) return;
    checking = true;
    void probe()
      .then((found) => {
        if (found !== undefined && lost === undefined) {
          lost = found;
          controller.abort(nodeLossFailure(options.name, found));
        }
      })
      .finally(() => {
        checking = false;
      });
  }, options.intervalMs);

  try {
    let outcome: ExitOutcome;
    try {
      outcome = await watch(controller.signal);
    } catch (error) {
      if (lost !== undefined) throw nodeLossFailure(options.name, lost);
      if (options.cancelled.aborted) throw error;
      // An SSH failure may be the VM going away: ask the cloud before calling it an infrastructure error.
      const found = await probe();
      if (found !== undefined) throw nodeLossFailure(options.name, found);
      throw error;
    }
    if (lost !== undefined) throw nodeLossFailure(options.name, lost);
    // A VM going away can also end the container by signal (137/143) before the check notices.
    if (outcome.exitCode !== 0 && !outcome.hung) {
      const found = await probe();
      if (found !== undefined) throw nodeLossFailure(options.name, found);
    }
    return outcome;
  } finally {
    clearInterval(timer);
    options.cancelled.removeEventListener('abort', forwardCancel);
  }
}
