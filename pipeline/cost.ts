/**
 * The cost record: one entry per machine a stage held (acquired → released), kept by the stage
 * workflow and shown by the run's status, so a run reports TPU-hours and GPU-hours per stage from
 * what was really held, preemptions and failed attempts included.
 */
import type { ComputeBackend } from './input.ts';

export interface ComputeUsage {
  /** The machine's name (rd-<run>-<stage>-<attempt>). */
  name: string;
  backend: ComputeBackend;
  attempt: number;
  /** Cloud backends: where and what. */
  zone?: string;
  machine?: string;
  /** TPU chips (0 for CPU VMs and machines outside the cloud). */
  chips: number;
  /**
   * GPUs of the machine. Absent (or 0) for TPU and CPU machines, and in records written before
   * GPUs were recorded (workflow histories keep them): absent means 0.
   */
  gpus?: number;
  /** The GPUs' accelerator type (nvidia-tesla-a100, nvidia-l4...), when gpus > 0. */
  gpuType?: string;
  spot: boolean;
  /** Epoch ms: when the machine was handed to the stage, and when its release finished. */
  acquiredAt: number;
  releasedAt?: number;
  /** How the machine's time ended: the stage's outcome on it, or the loss that ended it. */
  outcome?: 'succeeded' | 'failed' | 'preempted' | 'maintenance' | 'cancelled';
}

/** TPU-hours of the records (an unreleased machine counts up to `now`), rounded to 1/100. */
export function tpuHoursOf(usages: readonly ComputeUsage[], now: number): number {
  let hours = 0;
  for (const u of usages) hours += (u.chips * Math.max(0, (u.releasedAt ?? now) - u.acquiredAt)) / 3_600_000;
  return Math.round(hours * 100) / 100;
}

/** GPU-hours of the records (GPUs × held time; an unreleased machine counts up to `now`; a record without gpus counts 0), rounded to 1/100. */
export function gpuHoursOf(usages: readonly ComputeUsage[], now: number): number {
  let hours = 0;
  for (const u of usages) hours += ((u.gpus ?? 0) * Math.max(0, (u.releasedAt ?? now) - u.acquiredAt)) / 3_600_000;
  return Math.round(hours * 100) / 100;
}

/**
 * The GPU fields of a cost record from a lease's cloud placement (`{ gpus, gpuType }` as the
 * compute-engine provider sets them): both for a machine with GPUs, nothing otherwise (no field
 * means 0 GPUs, so records of TPU and CPU machines stay as they were).
 */
export function gpuUsageOf(cloud: { gpus?: number; gpuType?: string } | undefined): Pick<ComputeUsage, 'gpus' | 'gpuType'> {
  const gpus = cloud?.gpus ?? 0;
  if (gpus <= 0) return {};
  return cloud?.gpuType === undefined ? { gpus } : { gpus, gpuType: cloud.gpuType };
}

/** The records with `usage` added, or replacing the record of the same machine and attempt. */
export function upsertUsage(usages: readonly ComputeUsage[], usage: ComputeUsage): ComputeUsage[] {
  const i = usages.findIndex((u) => u.name === usage.name && u.attempt === usage.attempt);
  return i < 0 ? [...usages, usage] : usages.map((u, j) => (j === i ? usage : u));
}
