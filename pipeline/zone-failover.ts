/**
 * Where to provision next after a compute failure: an ordered zone list (the artifact bucket's
 * region first), fail-over on capacity failures, rounds over the list with growing back-off,
 * reprovisioning after a preemption or maintenance, and an optional spot → on-demand fall-back.
 *
 * Pure and deterministic (no clock, no randomness: back-off is computed from counts), and the
 * state is plain JSON, so a workflow can keep it, query it and carry it over continue-as-new.
 *
 * Counting: capacity failures are bounded by `maxCapacityRounds` per provisioning episode (an
 * episode ends when a node is lost and a new one is needed); node losses by `maxNodeLosses`.
 * Nothing here touches the stage's code-error budget (`maxAttempts`), whatever the failure.
 */
import {
  COMPUTE_FAILURES,
  type ClassifiedComputeError,
  type ComputeFailureClass,
} from './compute-failures.ts';

export interface BackoffPolicy {
  initialMs: number;
  factor: number;
  maxMs: number;
}

export interface FailoverPolicy {
  /** Tries in one zone per round for failures worth retrying in place (`internal`); ≥ 1. */
  maxAttemptsPerZone: number;
  /** Back-off between rounds over the zone list and between same-zone retries. */
  backoff: BackoffPolicy;
  /** Passes over the zone list for capacity failures before giving up (per provisioning episode); ≥ 1. */
  maxCapacityRounds: number;
  /** After this many preemptions a spot stage continues on on-demand; unset = stay on spot. */
  spotFallbackAfterPreemptions?: number;
  /** Node losses (preemptions + maintenance) after which the stage gives up; unset = no limit (the stage timeout bounds it). */
  maxNodeLosses?: number;
}

export const DEFAULT_FAILOVER_POLICY: FailoverPolicy = {
  // §2 of the research notes: an opaque internal error is worth one more try, then treat it like a stockout.
  maxAttemptsPerZone: 2,
  // 1, 2, 4, 8, 16 minutes between rounds; the notes suggest blocking a stocked-out zone ~30 min.
  backoff: { initialMs: 60_000, factor: 2, maxMs: 30 * 60_000 },
  maxCapacityRounds: 6,
  maxNodeLosses: 20,
};

export type FailoverAction =
  /** Provision again in the same zone after `backoffMs`. */
  | 'retry-same-zone'
  /** Provision in another zone (`zone`) after `backoffMs`. */
  | 'next-zone'
  /** The node was lost: delete it, provision a new one (zone list from the start). */
  | 'reprovision'
  /** Like reprovision, but on on-demand capacity from now on (`spot: false`). */
  | 'fall-back-to-on-demand'
  /** Stop: the stage fails with the failure's type. */
  | 'give-up';

export interface FailoverState {
  /** Zones in the order they are tried (orderZones). */
  zones: string[];
  /** The zone of the current (or last) provisioning try. */
  zone: string;
  spot: boolean;
  /** Pass over the zone list in the current provisioning episode, 0-based. */
  round: number;
  /** Failed tries per zone in the current round. */
  attemptsInRound: Record<string, number>;
  /** Failed provisioning tries per zone over the whole stage (for status and reports). */
  attemptsPerZone: Record<string, number>;
  /** Zones passed over for the rest of this round (a regional or project quota). */
  skippedInRound: string[];
  /** Zones that cannot work while on this capacity type (quota limit 0). */
  excluded: string[];
  preemptions: number;
  /** Node losses other than preemption (maintenance, termination, failed repair). */
  maintenanceEvents: number;
}

export interface FailoverStep {
  action: FailoverAction;
  /** Where to provision next (for give-up: the zone that failed last). */
  zone: string;
  spot: boolean;
  backoffMs: number;
  reason: string;
  /** The state to keep for the next failure. */
  state: FailoverState;
}

/** 'us-east5-b' → 'us-east5'. */
export function regionOfZone(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}

/** Predefined dual-regions of Cloud Storage and their regions. */
const DUAL_REGIONS: Readonly<Record<string, readonly string[]>> = {
  nam4: ['us-central1', 'us-east1'],
  eur4: ['europe-north1', 'europe-west4'],
  asia1: ['asia-northeast1', 'asia-northeast2'],
};
/** Cloud Storage multi-regions and the region-name prefix of their members. */
const MULTI_REGIONS: Readonly<Record<string, string>> = { us: 'us-', eu: 'europe-', asia: 'asia-' };

/**
 * Zones in the order to try them: zones in the bucket's location first (its region, or a member
 * of its dual-region), then zones on the bucket's multi-region continent, then the rest; the
 * user's order is kept within each group (stable), duplicates dropped. `bucketRegion` is the
 * bucket's location as Cloud Storage reports it ('US-EAST5', 'us-east5', 'NAM4', 'US').
 */
export function orderZones(zones: readonly string[], bucketRegion?: string): string[] {
  const unique = zones.filter((zone, i) => zones.indexOf(zone) === i);
  if (bucketRegion === undefined || bucketRegion.trim() === '') return unique;
  const location = bucketRegion.trim().toLowerCase();
  const sameLocation = DUAL_REGIONS[location] ?? [location];
  const continent = MULTI_REGIONS[location];
  const rank = (zone: string): number => {
    const region = regionOfZone(zone);
    if (sameLocation.includes(region)) return 0;
    if (continent !== undefined && region.startsWith(continent)) return 1;
    return 2;
  };
  return unique.map((zone, i) => ({ zone, i, r: rank(zone) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.zone);
}

/** The state before the first try: the first zone of the ordered list. */
export function startFailover(input: { zones: readonly string[]; spot: boolean; bucketRegion?: string }): FailoverState {
  const zones = orderZones(input.zones, input.bucketRegion);
  const first = zones[0];
  if (first === undefined) throw new Error('zone failover needs at least one zone');
  return {
    zones,
    zone: first,
    spot: input.spot,
    round: 0,
    attemptsInRound: {},
    attemptsPerZone: {},
    skippedInRound: [],
    excluded: [],
    preemptions: 0,
    maintenanceEvents: 0,
  };
}

/** Back-off for the n-th wait (0-based) of a sequence: initialMs × factor^n, capped at maxMs. */
export function backoffMs(n: number, backoff: BackoffPolicy): number {
  const raw = backoff.initialMs * Math.pow(backoff.factor, Math.max(0, n));
  return Math.round(Math.min(backoff.maxMs, raw));
}

type Failure = ComputeFailureClass | ClassifiedComputeError;

/**
 * What to do after a failure in `state.zone`. Rules (per COMPUTE_FAILURES):
 * - bad-input, invalid-config: give up at once.
 * - stockout, reservation: next zone at once; past the last zone a new round starts from the first
 *   zone after back-off (initial × factor^(round-1)); after `maxCapacityRounds` rounds, give up.
 * - quota: like a stockout, but over the quota's scope — a regional quota passes over every zone
 *   of that region for the rest of the round, a project quota ends the round; a limit of 0
 *   excludes those zones for good (give up when nothing is left).
 * - internal: retry in the same zone with back-off up to `maxAttemptsPerZone` tries in the round,
 *   then treat it as a stockout of that zone.
 * - preemption, maintenance: a new node from the first zone, with a fresh capacity budget; after
 *   `spotFallbackAfterPreemptions` preemptions a spot stage falls back to on-demand; after
 *   `maxNodeLosses` losses, give up.
 */
export function nextStep(state: FailoverState, failure: Failure, policy: FailoverPolicy): FailoverStep {
  const classified: ClassifiedComputeError = typeof failure === 'string' ? { failureClass: failure } : failure;
  const cls = classified.failureClass;
  const rule = COMPUTE_FAILURES[cls];
  const zone = state.zone;
  const giveUp = (reason: string, s: FailoverState = state): FailoverStep => ({ action: 'give-up', zone, spot: s.spot, backoffMs: 0, reason, state: s });

  if (rule.giveUp) return giveUp(`${cls} in ${zone}: not retried`);

  if (rule.reprovision) {
    const preemptions = state.preemptions + (cls === 'preemption' ? 1 : 0);
    const maintenanceEvents = state.maintenanceEvents + (cls === 'preemption' ? 0 : 1);
    const losses = preemptions + maintenanceEvents;
    const counted: FailoverState = { ...state, preemptions, maintenanceEvents };
    if (policy.maxNodeLosses !== undefined && losses > policy.maxNodeLosses) {
      return giveUp(`${cls} in ${zone}: ${losses} nodes lost, more than maxNodeLosses ${policy.maxNodeLosses}`, counted);
    }
    const k = policy.spotFallbackAfterPreemptions;
    const fallBack = cls === 'preemption' && state.spot && k !== undefined && preemptions >= k;
    // On-demand has its own quota: zones excluded for a spot quota of 0 are worth trying again.
    const fresh = newEpisode(counted, fallBack ? { spot: false, excluded: [] } : {});
    const first = firstUsableZone(fresh);
    if (first === undefined) return giveUp(`${cls} in ${zone}: no zone left to provision in`, counted);
    const next = { ...fresh, zone: first };
    if (fallBack) {
      return { action: 'fall-back-to-on-demand', zone: first, spot: false, backoffMs: 0, reason: `preemption ${preemptions} in ${zone} (fall-back after ${k}): continuing on on-demand in ${first}`, state: next };
    }
    const what = cls === 'preemption' ? `preemption ${preemptions}` : `node lost (${cls}, ${maintenanceEvents} so far)`;
    return { action: 'reprovision', zone: first, spot: next.spot, backoffMs: 0, reason: `${what} in ${zone}: new node in ${first}`, state: next };
  }

  // A failed provisioning try in `zone`.
  const inZone = (state.attemptsInRound[zone] ?? 0) + 1;
  const tried: FailoverState = {
    ...state,
    attemptsInRound: { ...state.attemptsInRound, [zone]: inZone },
    attemptsPerZone: { ...state.attemptsPerZone, [zone]: (state.attemptsPerZone[zone] ?? 0) + 1 },
  };

  if (rule.retrySameZone && inZone < Math.max(1, policy.maxAttemptsPerZone)) {
    return { action: 'retry-same-zone', zone, spot: state.spot, backoffMs: backoffMs(inZone - 1, policy.backoff), reason: `${cls} in ${zone} (try ${inZone} of ${policy.maxAttemptsPerZone} there)`, state: tried };
  }

  let passed = tried;
  let why = rule.retrySameZone ? `${cls} ${inZone} times in ${zone}, treated as a stockout` : `${cls} in ${zone}`;
  if (cls === 'quota') {
    const scope = classified.quotaScope ?? 'region';
    const covered = scope === 'zone' ? [zone] : scope === 'region' ? state.zones.filter((z) => regionOfZone(z) === regionOfZone(zone)) : state.zones;
    const where = scope === 'zone' ? zone : scope === 'region' ? `region ${regionOfZone(zone)}` : 'the project';
    if (classified.quotaLimitZero === true) {
      passed = { ...passed, excluded: union(passed.excluded, covered) };
      why = `quota limit 0 for ${where} (${passed.spot ? 'spot' : 'on-demand'}): its zones are not tried again`;
      if (firstUsableZone(passed) === undefined) return giveUp(`${why}; no zone left`, passed);
    } else {
      passed = { ...passed, skippedInRound: union(passed.skippedInRound, covered) };
      why = `quota exhausted for ${where}`;
    }
  }
  return advance(passed, why, policy);
}

/** The next zone of this round, or a new round after back-off, or give-up. */
function advance(state: FailoverState, why: string, policy: FailoverPolicy): FailoverStep {
  const from = state.zones.indexOf(state.zone);
  const usable = (z: string) => !state.excluded.includes(z) && !state.skippedInRound.includes(z) && (state.attemptsInRound[z] ?? 0) === 0;
  const next = state.zones.slice(from + 1).find(usable);
  if (next !== undefined) {
    return { action: 'next-zone', zone: next, spot: state.spot, backoffMs: 0, reason: `${why}: trying ${next}`, state: { ...state, zone: next } };
  }
  const round = state.round + 1;
  if (round >= Math.max(1, policy.maxCapacityRounds)) {
    return { action: 'give-up', zone: state.zone, spot: state.spot, backoffMs: 0, reason: `${why}; no capacity in any zone after ${round} round(s) over ${state.zones.join(', ')}`, state };
  }
  const cycled: FailoverState = { ...state, round, attemptsInRound: {}, skippedInRound: [] };
  const first = firstUsableZone(cycled);
  if (first === undefined) return { action: 'give-up', zone: state.zone, spot: state.spot, backoffMs: 0, reason: `${why}; no zone left`, state };
  const wait = backoffMs(round - 1, policy.backoff);
  return {
    action: first === state.zone ? 'retry-same-zone' : 'next-zone',
    zone: first,
    spot: state.spot,
    backoffMs: wait,
    reason: `${why}; every zone tried, round ${round + 1} of ${policy.maxCapacityRounds} from ${first} in ${wait} ms`,
    state: { ...cycled, zone: first },
  };
}

function newEpisode(state: FailoverState, change: Partial<FailoverState>): FailoverState {
  return { ...state, round: 0, attemptsInRound: {}, skippedInRound: [], ...change };
}

function firstUsableZone(state: FailoverState): string | undefined {
  return state.zones.find((z) => !state.excluded.includes(z) && !state.skippedInRound.includes(z));
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...a, ...b.filter((x) => !a.includes(x))];
}
