/** A backend that gives a stage machines to run on, and takes them back. */
import type { ComputeLease, ComputeRequest, ReleaseResult } from '../types.ts';

export interface ComputeProvider {
  /** Creates the attempt's compute or adopts it when it already exists (same derived name). */
  acquire(request: ComputeRequest, heartbeat: (details?: unknown) => void): Promise<ComputeLease>;
  /** Deletes the attempt's compute; not-found counts as released. */
  release(request: ComputeRequest): Promise<ReleaseResult>;
}
