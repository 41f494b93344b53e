/** Runs a stage's container(s) on the workers of a lease, watches them and stops them. */
import type { Progress } from '../../pipeline/progress.ts';
import type { LaunchRequest, LaunchResult, StopRequest, WatchRequest, WatchResult } from '../types.ts';

export interface WatchContext {
  /** Records liveness (and a checkpoint) with Temporal; cheap to call often. */
  heartbeat(details?: unknown): void;
  /** Aborted when the activity is cancelled (the stage or run was cancelled). */
  cancelled: AbortSignal;
  /** Shows progress in the run's `status` query; the executor calls it at most once per interval. */
  reportProgress(progress: Progress): Promise<void>;
}

export interface StageExecutor {
  /** Starts the stage, or adopts the container of the same name when it already exists. */
  launch(request: LaunchRequest): Promise<LaunchResult>;
  /** Returns when the stage exited, vanished, or hung (made no progress for hangTimeoutMs). */
  watch(request: WatchRequest, context: WatchContext): Promise<WatchResult>;
  /** Stops the stage's container(s) if running. Idempotent. */
  stop(request: StopRequest): Promise<void>;
}
