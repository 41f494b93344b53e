/**
 * TPU-hours a planned stage would cost, estimated only where there is an honest basis: the
 * stage runs on Cloud TPU with the same accelerator as in the source run, and the source run
 * ran it to completion (its wall time × the slice's chips). Otherwise null ("no estimate").
 */
import { gpuHoursOf, tpuHoursOf } from '../../pipeline/cost.ts';
import type { PipelineConfig } from '../../pipeline/input.ts';
import type { PlannedStage } from '../../pipeline/plan.ts';
import type { StageStatus } from '../../pipeline/status.ts';

/** Chips of a v6e slice: the number in its name (v6e-4: 4 chips). */
export function chipsOf(accelerator: string): number | undefined {
  const match = /^v\d+[a-z]*-(\d+)$/.exec(accelerator);
  return match === null ? undefined : Number(match[1]);
}

export interface SourceRun {
  /** The source run's validated input (undefined when it does not validate any more). */
  config?: PipelineConfig;
  /** The source run's per-stage status (undefined when it could not be queried). */
  stages?: readonly StageStatus[];
}

export function estimateTpuHours(step: PlannedStage, source: SourceRun): number | null {
  if (step.decision !== 'RUN') return 0;
  const compute = step.compute;
  if (compute?.backend !== 'tpu-api') return null;
  const before = source.config?.[step.stage].compute;
  if (before?.backend !== 'tpu-api' || before.accelerator !== compute.accelerator) return null;
  const ran = source.stages?.find((s) => s.stage === step.stage);
  if (ran?.state !== 'succeeded' || ran.startedAt === undefined || ran.endedAt === undefined) return null;
  const chips = chipsOf(compute.accelerator);
  const wallMs = Date.parse(ran.endedAt) - Date.parse(ran.startedAt);
  if (chips === undefined || !Number.isFinite(wallMs) || wallMs < 0) return null;
  return Math.round(((chips * wallMs) / 3_600_000) * 100) / 100;
}

/** The sum, or null when any stage has no estimate. */
export function totalTpuHours(estimates: ReadonlyArray<number | null>): number | null {
  let total = 0;
  for (const e of estimates) {
    if (e === null) return null;
    total += e;
  }
  return Math.round(total * 100) / 100;
}

/**
 * TPU-hours a run has used so far, per stage, from the cost record: every machine a stage held
 * (chips × acquired → released, one still held up to now), failed and preempted attempts
 * included; 0 for stages without cloud TPUs (local, static, CPU VMs) and reused stages.
 */
export function tpuHoursSoFar(stages: readonly StageStatus[], now: number): { total: number; byStage: Record<string, number> } {
  const byStage: Record<string, number> = {};
  let total = 0;
  for (const s of stages) {
    const hours = tpuHoursOf(s.compute ?? [], now);
    byStage[s.stage] = hours;
    total += hours;
  }
  return { total: Math.round(total * 100) / 100, byStage };
}

/**
 * GPU-hours a run has used so far, per stage, from the cost record: GPUs × held time of every
 * machine a stage held (GPU VMs on compute-engine; preempted and failed attempts included); 0 for
 * stages without GPUs, and for records written before GPUs were recorded.
 */
export function gpuHoursSoFar(stages: readonly StageStatus[], now: number): { total: number; byStage: Record<string, number> } {
  const byStage: Record<string, number> = {};
  let total = 0;
  for (const s of stages) {
    const hours = gpuHoursOf(s.compute ?? [], now);
    byStage[s.stage] = hours;
    total += hours;
  }
  return { total: Math.round(total * 100) / 100, byStage };
}
