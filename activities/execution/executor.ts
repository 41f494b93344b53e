/** Runs a stage's container(s) on the workers of a lease, watches them and stops them. */
import type { Progress } from '../../pipeline/progress.ts';
import type { BringUpRequest, BringUpResult, LaunchRequest, LaunchResult, StopRequest, WatchRequest, WatchResult, WorkerEndpoint } from '../types.ts';

/** Where a stage's per-worker logs go so they outlive the compute (the artifact store). */
export interface StageLogs {
  /** Appends new output of a worker while the stage runs (for `recogdrive logs --follow`). */
  append(worker: number, chunk: string): Promise<void>;
  /** Writes a worker's whole (bounded) log when the attempt ends; replaces what was appended. */
  save(worker: number, content: string): Promise<void>;
}

/** Logs kept per worker: the last 10 MiB (a multi-day run's first lines are rarely the interesting ones). */
export const MAX_SAVED_LOG_BYTES = 10 * 1024 * 1024;

export interface WatchContext {
  /** Records liveness (and a checkpoint) with Temporal; cheap to call often. */
  heartbeat(details?: unknown): void;
  /** Aborted when the activity is cancelled (the stage or run was cancelled). */
  cancelled: AbortSignal;
  /** Shows progress in the run's `status` query; the executor calls it at most once per interval. */
  reportProgress(progress: Progress): Promise<void>;
  logs: StageLogs;
  /** The previous try's last heartbeat (a retried watcher resumes from it). */
  resumeFrom: unknown;
}

/** What a launch needs from Temporal: it may outlive a heartbeat timeout, and a retry may overtake it. */
export interface LaunchContext {
  /** Records liveness with Temporal; called while the launch waits (a slow or unreachable host). */
  heartbeat(): void;
  /** Aborted when the try lost its lease (cancelled, timed out, superseded): it must start nothing more. */
  cancelled: AbortSignal;
  /** Temporal's attempt number of this launch activity: with the stage attempt, the try's fence token. */
  tryNumber: number;
}

export interface StageExecutor {
  /** Starts the stage (fenced: a superseded try creates nothing), or adopts this attempt's container when it already exists. */
  launch(request: LaunchRequest, context?: LaunchContext): Promise<LaunchResult>;
  /** Returns when the stage exited, vanished, or hung (made no progress for hangTimeoutMs). */
  watch(request: WatchRequest, context: WatchContext): Promise<WatchResult>;
  /** Stops the stage's container(s) if running, saves every worker's log, removes the container(s). Idempotent. */
  stop(request: StopRequest, logs: StageLogs): Promise<void>;
  /** Makes bare machines ready for the stage (image by digest, code, data, bucket mounts); each step logged per worker. */
  bringUp?(request: BringUpRequest, context: { cancelled: AbortSignal; log(worker: number, text: string): Promise<void> }): Promise<BringUpResult>;
  /** The digest ("sha256:...") an image reference resolves to on a worker (pulled first when absent). */
  imageDigest?(worker: WorkerEndpoint, image: string): Promise<string>;
}
