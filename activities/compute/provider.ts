/** A backend that gives a stage machines to run on, and takes them back. */
import type { LeaseRecord } from '../../pipeline/janitor.ts';
import type { ComputeLease, ComputeRequest, LeaseHealth, ReleaseResult } from '../types.ts';

/** A machine a backend holds, with its labels (run, stage, attempt, owner): what the janitor lists. */
export type { LeaseRecord } from '../../pipeline/janitor.ts';

export interface ComputeProvider {
  /** Creates the attempt's compute or adopts it when it already exists (same derived name). */
  acquire(request: ComputeRequest, heartbeat: (details?: unknown) => void): Promise<ComputeLease>;
  /** Deletes the attempt's compute; not-found counts as released. */
  release(request: ComputeRequest): Promise<ReleaseResult>;
  /**
   * The attempt's machine as the cloud sees it now (request as given to acquire, with its
   * placement). Optional: backends whose machines are not taken away (local, static) have none.
   * 'lost' when preempted, terminated, under maintenance or gone; errors reading it are thrown.
   */
  health?(request: ComputeRequest): Promise<LeaseHealth>;
  /**
   * Every labelled machine this backend holds (the janitor's view). Optional: a backend that
   * cannot leak has nothing to list. `labels.run` must be the exact run id. A backend that
   * could list only part of what it holds (some static hosts unreachable) throws
   * IncompleteListing with that part.
   */
  listLeases?(): Promise<LeaseRecord[]>;
  /**
   * Deletes the machine `record` names, as listed (a newer machine that took the same name is
   * not it). True when it was deleted; false when it was not found (counts as gone).
   */
  deleteLease?(record: LeaseRecord): Promise<boolean>;
}

/**
 * A listing with parts missing (e.g. static hosts that did not answer): `leases` is what was
 * listed. A caller that does not know this error treats the backend as not listed, which stays
 * true; the janitor cleans what was listed and reports the backend as not (fully) listed.
 */
export class IncompleteListing extends Error {
  override name = 'IncompleteListing';
  readonly leases: LeaseRecord[];
  constructor(message: string, leases: LeaseRecord[]) {
    super(message);
    this.leases = leases;
  }
}
