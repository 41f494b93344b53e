/** A backend that gives a stage machines to run on, and takes them back. */
import type { LeaseRecord } from '../../pipeline/janitor.ts';
import type { ComputeLease, ComputeRequest, ReleaseResult } from '../types.ts';

/** A machine a backend holds, with its labels (run, stage, attempt, owner): what the janitor lists. */
export type { LeaseRecord } from '../../pipeline/janitor.ts';

export interface ComputeProvider {
  /** Creates the attempt's compute or adopts it when it already exists (same derived name). */
  acquire(request: ComputeRequest, heartbeat: (details?: unknown) => void): Promise<ComputeLease>;
  /** Deletes the attempt's compute; not-found counts as released. */
  release(request: ComputeRequest): Promise<ReleaseResult>;
  /**
   * Every labelled machine this backend holds (the janitor's view). Optional: a backend that
   * creates nothing (static) has nothing to list. `labels.run` must be the exact run id.
   */
  listLeases?(): Promise<LeaseRecord[]>;
  /**
   * Deletes the machine `record` names, as listed (a newer machine that took the same name is
   * not it). True when it was deleted; false when it was not found (counts as gone).
   */
  deleteLease?(record: LeaseRecord): Promise<boolean>;
}
