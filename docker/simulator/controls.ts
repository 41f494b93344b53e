/** The knobs a test or the local backend turns through the environment: pacing, faults, state. */
import os from 'node:os';
import path from 'node:path';
import { SimulatorError } from './errors.ts';

export const FAULT_KINDS = ['crash', 'hang', 'oom', 'partial'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Controls {
  /** Total wall time of the stage's work (RECOGDRIVE_SIM_DURATION_MS, default 1500). */
  durationMs: number;
  /**
   * Injected fault (RECOGDRIVE_SIM_FAULT); undefined = healthy. With RECOGDRIVE_SIM_FAULT_WORKER set,
   * only the container whose RECOGDRIVE_WORKER (the worker index the orchestrator passes) equals it
   * gets the fault: one worker of a multi-host slice fails, the others stay healthy.
   */
  fault: FaultKind | undefined;
  /** Fraction of the work done before the fault fires (RECOGDRIVE_SIM_FAULT_AT, default 0.5). */
  faultAt: number;
  /** Host directory for what lives "inside the container" between commands (RECOGDRIVE_SIM_STATE_DIR). */
  stateDir: string;
}

export function readControls(env: NodeJS.ProcessEnv): Controls {
  const durationMs = number(env, 'RECOGDRIVE_SIM_DURATION_MS', 1500);
  if (durationMs < 0) throw new SimulatorError('RECOGDRIVE_SIM_DURATION_MS must be >= 0');
  const faultAt = number(env, 'RECOGDRIVE_SIM_FAULT_AT', 0.5);
  if (faultAt < 0 || faultAt > 1) throw new SimulatorError('RECOGDRIVE_SIM_FAULT_AT must be between 0 and 1');
  const rawFault = env.RECOGDRIVE_SIM_FAULT;
  let fault: FaultKind | undefined;
  if (rawFault !== undefined && rawFault !== '') {
    fault = FAULT_KINDS.find((kind) => kind === rawFault);
    if (fault === undefined) {
      throw new SimulatorError(`RECOGDRIVE_SIM_FAULT must be one of ${FAULT_KINDS.join(', ')} (got ${rawFault})`);
    }
  }
  if (fault !== undefined && !faultTargetsThisWorker(env)) fault = undefined;
  return { durationMs, fault, faultAt, stateDir: stateDir(env) };
}

/** RECOGDRIVE_SIM_FAULT_WORKER unset: every worker; set: only the worker with that RECOGDRIVE_WORKER. */
function faultTargetsThisWorker(env: NodeJS.ProcessEnv): boolean {
  const target = env.RECOGDRIVE_SIM_FAULT_WORKER;
  if (target === undefined || target === '') return true;
  if (!/^\d+$/.test(target)) throw new SimulatorError(`RECOGDRIVE_SIM_FAULT_WORKER must be a worker index (got ${target})`);
  const worker = env.RECOGDRIVE_WORKER;
  return worker !== undefined && worker !== '' && Number(worker) === Number(target);
}

/** Without an explicit directory, one per hostname: each container has its own hostname. */
function stateDir(env: NodeJS.ProcessEnv): string {
  const explicit = env.RECOGDRIVE_SIM_STATE_DIR;
  if (explicit !== undefined && explicit !== '') return path.resolve(explicit);
  return path.join(os.tmpdir(), `recogdrive-sim-${os.hostname()}`);
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new SimulatorError(`${name} must be a number (got ${raw})`);
  return value;
}
