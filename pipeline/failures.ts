/**
 * Failure types of a stage and how each is retried. A code error or a bad output never burns
 * TPU hours in a retry loop; infrastructure trouble (lost host, busy TPU, hang) gets a fresh
 * attempt on fresh compute.
 */
import type { StageName } from './stages.ts';

export const FailureType = {
  InvalidPipelineInput: 'InvalidPipelineInput',
  /** The run was started with a workflow id that is not a run id (pipeline/naming.ts runIdProblem). */
  InvalidRunId: 'InvalidRunId',
  BackendUnavailable: 'BackendUnavailable',
  StageCodeError: 'StageCodeError',
  StageOutOfMemory: 'StageOutOfMemory',
  StageHang: 'StageHang',
  StageInfrastructureError: 'StageInfrastructureError',
  StageVerificationFailed: 'StageVerificationFailed',
  StageTimeout: 'StageTimeout',
  StageFailed: 'StageFailed',
  /** An output given by URI (providedArtifacts) does not satisfy its stage's contract. */
  StageInputInvalid: 'StageInputInvalid',
  /** A bare VM could not be made ready in a way no retry fixes (no such image, no service account, a missing gs:// input, a full disk). */
  StageBringUpFailed: 'StageBringUpFailed',
  /** The artifact store could not be read (outage, 5xx, I/O error): retried, never taken for "absent". */
  ArtifactStoreUnavailable: 'ArtifactStoreUnavailable',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Failures after which a new attempt on fresh compute may succeed. */
export const RETRYABLE_STAGE_FAILURES: readonly FailureType[] = [FailureType.StageHang, FailureType.StageInfrastructureError];

/** Errors an activity raises that no retry can fix. */
export const NON_RETRYABLE_ACTIVITY_ERRORS: readonly string[] = [
  FailureType.InvalidPipelineInput,
  FailureType.BackendUnavailable,
  FailureType.InvalidRunId,
  FailureType.StageBringUpFailed,
  'InvalidLaunchSpec',
];

/** How a stage's container(s) ended, as the watcher saw it. */
export interface ExitOutcome {
  /** null when the process vanished without an exit status (host lost, killed with the VM). */
  exitCode: number | null;
  oomKilled: boolean;
  /** Stopped by the watcher after no progress for the hang timeout. */
  hung: boolean;
  /** Last lines of the log, for the error message. */
  logTail: string[];
  /** Which of the contract's log patterns were seen anywhere in the log. */
  seenPatterns: string[];
  /** The worker whose container failed first (multi-host slices). */
  failedWorker?: number;
  /** Why there is no exit status (e.g. the host stopped answering). */
  lostReason?: string;
  startedAt: number;
  exitedAt: number;
}

export type ExitVerdict = { ok: true } | { ok: false; type: FailureType; message: string };

/** libtpu's messages when a previous process still holds the accelerator. */
const TPU_BUSY = [
  'The TPU is already in use by process',
  'libtpu multi-process lockfile',
  'Device or resource busy',
];

export function classifyExit(stage: StageName, outcome: ExitOutcome): ExitVerdict {
  const tail = outcome.logTail.slice(-20).join('\n');
  const withLog = (text: string) => (tail === '' ? text : `${text}; last log lines:\n${tail}`);
  if (outcome.hung) return { ok: false, type: FailureType.StageHang, message: withLog(`${stage} made no progress and was stopped`) };
  if (outcome.exitCode === 0) return { ok: true };
  const where = outcome.failedWorker === undefined ? stage : `${stage} (worker ${outcome.failedWorker})`;
  if (outcome.exitCode === null) {
    const why = outcome.lostReason === undefined ? 'vanished without an exit status' : `was lost: ${outcome.lostReason}`;
    return { ok: false, type: FailureType.StageInfrastructureError, message: withLog(`${where} ${why}`) };
  }
  if (outcome.oomKilled || outcome.exitCode === 137) {
    return { ok: false, type: FailureType.StageOutOfMemory, message: withLog(`${where} was killed for memory (exit ${outcome.exitCode})`) };
  }
  if (TPU_BUSY.some((marker) => tail.includes(marker))) {
    return { ok: false, type: FailureType.StageInfrastructureError, message: withLog(`${where} found the TPU busy`) };
  }
  return { ok: false, type: FailureType.StageCodeError, message: withLog(`${where} exited with code ${outcome.exitCode}`) };
}
