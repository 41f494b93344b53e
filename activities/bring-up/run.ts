/**
 * Carries out a bring-up on every machine of a slice over SSH, step by step (steps.ts), each
 * step's output kept in the attempt's bring-up log, so a failed bring-up says which step failed
 * on which worker and why. Chosen over a startup script: the worker sees each step's exit and
 * output as it happens, a retry resumes where the last try stopped, and the same steps run on
 * TPU VMs, Compute Engine VMs and the test bed.
 */
import type { BringUpSpec } from '../../pipeline/bring-up.ts';
import type { SshEndpoint, SshPool } from '../ssh/pool.ts';
import { SshConnectionLost, SshUnreachable } from '../ssh/errors.ts';
import { bringUpSteps, FAILURE_PREFIX, type BringUpStepName } from './steps.ts';

export interface BringUpOptions {
  pool: SshPool;
  /** Run the steps with `sudo -n` (TPU VM logins are not root). */
  sudo: boolean;
  /** Appends to a worker's bring-up log. */
  log(worker: number, text: string): Promise<void>;
  /** Aborted when the activity is cancelled: no further step starts. */
  signal: AbortSignal;
  /** Where the launch expects a gs:// bucket on the VM. */
  mountPointOf?(bucket: string): string;
}

export interface StepTiming {
  worker: number;
  step: BringUpStepName;
  label: string;
  ms: number;
}

/** A step that failed on a worker: `permanent` when no retry on any machine can help. */
export class BringUpFailed extends Error {
  override name = 'BringUpFailed';
  readonly worker: number;
  readonly step: BringUpStepName;
  readonly permanent: boolean;
  constructor(worker: number, step: BringUpStepName, permanent: boolean, message: string) {
    super(message);
    this.worker = worker;
    this.step = step;
    this.permanent = permanent;
  }
}

const MAX_STEP_OUTPUT = 64 * 1024;

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}

/** Runs every step on every worker (workers in parallel); the first failure is thrown once all workers settled. */
export async function bringUpSlice(endpoints: readonly SshEndpoint[], spec: BringUpSpec, options: BringUpOptions): Promise<StepTiming[]> {
  const steps = bringUpSteps(spec, options.mountPointOf);
  const timings: StepTiming[] = [];
  const results = await Promise.allSettled(
    endpoints.map(async (endpoint, worker) => {
      for (const step of steps) {
        options.signal.throwIfAborted();
        await options.log(worker, `[bring-up ${stamp()}] ${step.name}: ${step.label}\n`);
        const started = Date.now();
        let result;
        try {
          result = await options.pool.exec(endpoint, [...(options.sudo ? ['sudo', '-n'] : []), 'bash', '-c', step.script], {
            signal: options.signal,
            mergeStderr: true,
            maxOutputBytes: MAX_STEP_OUTPUT,
          });
        } catch (error) {
          if (error instanceof SshUnreachable || error instanceof SshConnectionLost) {
            await options.log(worker, `[bring-up ${stamp()}] ${step.name}: the VM stopped answering: ${error.message}\n`).catch(() => {});
            throw new BringUpFailed(worker, step.name, false, `worker ${worker} stopped answering during bring-up step ${step.name}: ${error.message}`);
          }
          throw error;
        }
        const lines = result.stdout.split('\n').filter((line) => line.trim() !== '');
        const ms = Date.now() - started;
        await options.log(worker, lines.map((line) => `  ${line}\n`).join('') + `[bring-up ${stamp()}] ${step.name}: ${result.code === 0 ? 'done' : `failed (exit ${result.code})`} in ${(ms / 1000).toFixed(1)}s\n`);
        if (result.code !== 0) {
          const verdict = lines.findLast((line) => line.startsWith(FAILURE_PREFIX));
          const match = verdict?.slice(FAILURE_PREFIX.length).trim().match(/^(permanent|transient): (.*)$/);
          const reason = match?.[2] ?? `exit ${result.code}: ${lines.slice(-3).join(' ').slice(0, 400)}`;
          throw new BringUpFailed(worker, step.name, match?.[1] === 'permanent', `bring-up step ${step.name} (${step.label}) failed on worker ${worker}: ${reason}`);
        }
        timings.push({ worker, step: step.name, label: step.label, ms });
      }
    }),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return timings;
}
