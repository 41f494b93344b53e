/**
 * TPU-hours a planned stage would cost, estimated only where there is an honest basis: the
 * stage runs on Cloud TPU with the same accelerator as in the source run, and the source run
 * ran it to completion (its wall time × the slice's chips). Otherwise null ("no estimate").
 */
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
 * TPU-hours a run has used so far, per stage: the slice's chips × the stage's wall time (from
 * its start, or until its end) on Cloud TPU compute, 0 elsewhere (local, static, CPU VMs). An
 * upper bound until compute records its own acquire/release times (the compute issue's cost record).
 */
export function tpuHoursSoFar(
  config: PipelineConfig | undefined,
  stages: readonly StageStatus[],
  now: number,
): { total: number; byStage: Record<string, number> } {
  const byStage: Record<string, number> = {};
  let total = 0;
  for (const s of stages) {
    const compute = config?.[s.stage].compute;
    const chips = compute?.backend === 'tpu-api' ? chipsOf(compute.accelerator) : undefined;
    const start = s.startedAt === undefined ? Number.NaN : Date.parse(s.startedAt);
    const end = s.endedAt === undefined ? now : Date.parse(s.endedAt);
    const hours = chips === undefined || !Number.isFinite(start) || !Number.isFinite(end) || s.decision !== 'RUN' ? 0 : (chips * Math.max(0, end - start)) / 3_600_000;
    byStage[s.stage] = Math.round(hours * 100) / 100;
    total += hours;
  }
  return { total: Math.round(total * 100) / 100, byStage };
}
