/**
 * Failures of the compute layer (Cloud TPU API v2, Compute Engine) — what each one means, which
 * ApplicationFailure type carries it and how it is retried. Pure and data-driven: activities map
 * an API error or a node state to a class with the classifiers below, raise
 * `ApplicationFailure.create({ type: COMPUTE_FAILURES[cls].type, nonRetryable: true, ... })`, and
 * the stage workflow asks `nextStep` (zone-failover.ts) what to do next. Capacity, node-loss and
 * configuration types must be non-retryable for Temporal's activity retry policy (the failover
 * policy decides where to go next); `internal` may be retried by the activity's own policy first,
 * in which case the workflow sees it once those retries are spent and counts it as one try.
 *
 * The signals are those of the research notes (../shared/research/tpu-gcp.md §2, §6) and the
 * Compute Engine "Troubleshoot resource availability errors" page for the GCE wordings.
 *
 * Callers handle two codes before classifying, because they are not failures: ALREADY_EXISTS (6)
 * on create = the node from an earlier try exists, go poll it; NOT_FOUND (5) on delete = done.
 */

/**
 * - `stockout`: the zone has no capacity for the accelerator right now (TPU code 8 "There is no
 *   more capacity in the zone", GCE ZONE_RESOURCE_POOL_EXHAUSTED).
 * - `quota`: a project quota is used up (code 8 / HTTP 429 with quota wording, GCE QUOTA_EXCEEDED);
 *   see `quotaScope` for zone / region / project.
 * - `reservation`: the reservation asked for (or assumed) has no room (code 9 "Insufficient reserved
 *   capacity", any reservation wording).
 * - `invalid-config`: the accelerator / runtime / zone combination is rejected (code 3 "the
 *   accelerator v6e-N was not found in zone", "invalid AcceleratorType", "Location … is not found or
 *   access is unauthorized").
 * - `internal`: opaque or transient API trouble (INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED,
 *   "unable to queue the operation", API rate limits) and anything not recognised.
 * - `preemption`: a spot/preemptible node was taken back (state PREEMPTED, "… in state PREEMPTED",
 *   a queued resource SUSPENDED by the SERVICE).
 * - `maintenance`: the node was lost for another reason (state TERMINATED, health
 *   UNHEALTHY_MAINTENANCE, REPAIRING/RESTARTING, state UNKNOWN after a failed repair, stopped or
 *   deleted under the run).
 * - `bad-input`: our own request or project setup is wrong (permission denied, API disabled, VPC or
 *   subnet missing, a malformed argument): no retry or other zone can fix it.
 */
export type ComputeFailureClass =
  | 'stockout'
  | 'quota'
  | 'reservation'
  | 'invalid-config'
  | 'internal'
  | 'preemption'
  | 'maintenance'
  | 'bad-input';

export const COMPUTE_FAILURE_CLASSES: readonly ComputeFailureClass[] = [
  'stockout',
  'quota',
  'reservation',
  'invalid-config',
  'internal',
  'preemption',
  'maintenance',
  'bad-input',
];

export interface ComputeFailureRule {
  /** The ApplicationFailure type name the activity raises. */
  type: string;
  /** Lack of capacity somewhere: bounded by the failover's capacity rounds. */
  capacity: boolean;
  /** Another try in the same zone may succeed (bounded by maxAttemptsPerZone, then failover). */
  retrySameZone: boolean;
  /** Move on to the next zone of the ordered list at once. */
  failover: boolean;
  /** The node is gone while the stage ran: delete it, provision a new one from the first zone. */
  reprovision: boolean;
  /** Never retried: the stage fails at once. */
  giveUp: boolean;
  /**
   * Whether it consumes the stage's code-error retry budget (`maxAttempts` for StageCodeError and
   * friends). No compute failure does: capacity and node losses are the cloud's doing, the
   * give-up classes end the stage without consulting any budget.
   */
  countsAgainstCodeErrorBudget: boolean;
  /** What a human should know or do. */
  hint: string;
}

export const COMPUTE_FAILURES: Readonly<Record<ComputeFailureClass, ComputeFailureRule>> = {
  stockout: {
    type: 'TpuStockout',
    capacity: true,
    retrySameZone: false,
    failover: true,
    reprovision: false,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'The zone has no free capacity for this accelerator right now; the next zone is tried and the list is cycled with back-off. Add zones, use a reservation or queued resources to wait for capacity.',
  },
  quota: {
    type: 'TpuQuotaExceeded',
    capacity: true,
    retrySameZone: false,
    failover: true,
    reprovision: false,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'A project quota is used up (TPU quotas are per region, spot and on-demand separately). Delete leftover nodes (preempted spot TPUs keep their quota until deleted) or request a quota increase; a limit of 0 needs a quota grant.',
  },
  reservation: {
    type: 'TpuReservationUnavailable',
    capacity: true,
    retrySameZone: false,
    failover: true,
    reprovision: false,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'The reservation has no room for this node (Google has also returned "Insufficient reserved capacity" without any reservation). Check the reservation name, zone and size, or run without it.',
  },
  'invalid-config': {
    type: 'TpuInvalidConfig',
    capacity: false,
    retrySameZone: false,
    failover: false,
    reprovision: false,
    giveUp: true,
    countsAgainstCodeErrorBudget: false,
    hint: 'The accelerator type, runtime version or zone is not valid together (e.g. v6e is not offered in that zone, or the zone is not available to the project). Fix the compute settings: `gcloud compute tpus accelerator-types list --zone Z`.',
  },
  internal: {
    type: 'TpuInternal',
    capacity: false,
    retrySameZone: true,
    failover: false,
    reprovision: false,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'The cloud API failed without saying why (internal error, unavailable, timeout, rate limit). Retried in the same zone with back-off; repeated opaque errors are treated like a stockout (seen for spot capacity) and the next zone is tried.',
  },
  preemption: {
    type: 'TpuPreempted',
    capacity: false,
    retrySameZone: false,
    failover: false,
    reprovision: true,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'The spot/preemptible TPU was taken back. It cannot be restarted: it is deleted and a new one is provisioned (first zone first), where the stage starts again as its plan note "On retry" says (no trainer resumes upstream; the metric cache skips what it already wrote). Configure spotFallbackAfterPreemptions to fall back to on-demand.',
  },
  maintenance: {
    type: 'TpuMaintenance',
    capacity: false,
    retrySameZone: false,
    failover: false,
    reprovision: true,
    giveUp: false,
    countsAgainstCodeErrorBudget: false,
    hint: 'The TPU went away under the run (maintenance, termination, failed repair, stopped or deleted). It is deleted and a new one is provisioned, where the stage starts again as its plan note "On retry" says (no trainer resumes upstream; the metric cache skips what it already wrote).',
  },
  'bad-input': {
    type: 'TpuBadInput',
    capacity: false,
    retrySameZone: false,
    failover: false,
    reprovision: false,
    giveUp: true,
    countsAgainstCodeErrorBudget: false,
    hint: 'The request or the project setup is wrong (permissions, API not enabled, network/subnet missing, malformed field). Nothing is retried; fix the configuration and rerun.',
  },
};

/** The ApplicationFailure types of compute failures (all non-retryable at the activity level). */
export const COMPUTE_FAILURE_TYPES: readonly string[] = COMPUTE_FAILURE_CLASSES.map((c) => COMPUTE_FAILURES[c].type);

/** Other type names the compute activities raise for the same classes (activities/compute/tpu-api.ts). */
export const COMPUTE_FAILURE_TYPE_ALIASES: Readonly<Record<string, ComputeFailureClass>> = {
  TpuPermissionDenied: 'bad-input',
  TpuNodeLost: 'maintenance',
};

/** Maps an ApplicationFailure type back to its class (undefined for other failures). */
export function computeFailureClassOfType(type: string | undefined): ComputeFailureClass | undefined {
  if (type === undefined) return undefined;
  return COMPUTE_FAILURE_CLASSES.find((c) => COMPUTE_FAILURES[c].type === type) ?? COMPUTE_FAILURE_TYPE_ALIASES[type];
}

// ---------------------------------------------------------------------------------------------
// API errors

export interface ComputeErrorInput {
  /** gRPC code (0-16), its name ('RESOURCE_EXHAUSTED'), or an HTTP status (429). */
  code?: number | string;
  message: string;
  /** Machine-readable reason, e.g. GCE `errors[].reason` ZONE_RESOURCE_POOL_EXHAUSTED, or an ErrorInfo reason. */
  reason?: string;
}

export type QuotaScope = 'zone' | 'region' | 'project';

export interface ClassifiedComputeError {
  failureClass: ComputeFailureClass;
  /** The gRPC status name the code stands for, when one was given. */
  status?: GrpcStatus;
  /** For quota: what the quota is counted over (TPU quotas are per region unless the message says otherwise). */
  quotaScope?: QuotaScope;
  /** For quota: the limit is 0, so waiting cannot help there (a grant is needed). */
  quotaLimitZero?: boolean;
}

const GRPC_STATUS = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatus = (typeof GRPC_STATUS)[number];

/** HTTP status → the gRPC status Google's APIs map it from (google.rpc.Code). */
const HTTP_STATUS: Readonly<Record<number, GrpcStatus>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Normalises a gRPC code, gRPC status name or HTTP status to a gRPC status name. */
export function grpcStatusOf(code: number | string | undefined): GrpcStatus | undefined {
  if (code === undefined) return undefined;
  const text = String(code).trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < GRPC_STATUS.length) return GRPC_STATUS[n];
    return HTTP_STATUS[n];
  }
  const name = text.toUpperCase();
  return (GRPC_STATUS as readonly string[]).includes(name) ? (name as GrpcStatus) : undefined;
}

const any = (patterns: readonly RegExp[], text: string) => patterns.some((p) => p.test(text));

/** §2 "Spot/preemptible preemption", "Preempted during create"; GCE `compute.instances.preempted`. */
const PREEMPTED = [/\bstate PREEMPTED\b/i, /\bpreempted\b/i];
/** Quota that refills by itself within seconds: an API request-rate limit, not capacity. */
const RATE_LIMIT = [/\bper (minute|second|100 seconds)\b/i, /\brate limit/i, /RATE_LIMIT_EXCEEDED/];
/** §2 "Quota exceeded": "Quota limit '…' has been exceeded", google.rpc.QuotaFailure; GCE QUOTA_EXCEEDED "Quota 'CPUS' exceeded". */
const QUOTA = [/\bquota\b[^.]*\bexceeded\b/i, /\bexceeded\b[^.]*\bquota\b/i, /QuotaFailure/, /\bQUOTA_EXCEEDED\b/, /\bquota limit\b/i];
/** §2 "Insufficient reservation": code 9 "Insufficient reserved capacity…"; any reservation wording. */
const RESERVATION = [/\breserv(ed|ation)/i];
/** §2 "Zone stockout" (TPU) and Compute Engine's resource-availability errors. */
const STOCKOUT = [
  /no more capacity in the zone/i,
  /\bZONE_RESOURCE_POOL_EXHAUSTED/,
  /does not have enough resources available to fulfill the request/i,
  /is currently unavailable in the .* zone/i,
  /\bstockout\b/i,
];
/** §2 "Bad type / not offered", "API off / zone unauthorized". */
const INVALID_CONFIG = [
  /\baccelerator\b.*\bnot found in zone\b/i,
  /invalid AcceleratorType/i,
  /\bLocation\b.*\bis not found or access is unauthorized\b/i,
  /\bruntime version\b.*\b(not found|invalid|not supported|unsupported)\b/i,
  /\b(invalid|unsupported|unknown)\b.*\bruntime version\b/i,
  /\bmachine type\b.*\bdoes not exist\b/i,
  /\bnot (available|supported|offered) in (the )?(zone|region|location)\b/i,
];
/** §6 SkyPilot: blocks everything on IAM/policy denial, VPC_NOT_FOUND; region on SUBNET_NOT_FOUND. */
const BAD_INPUT = [
  /has not been used in project/i,
  /\bAPI\b.*\b(is )?(disabled|not enabled)\b/i,
  /\bSERVICE_DISABLED\b/,
  /\b(VPC|SUBNET)_NOT_FOUND\b/,
  /\bIAM_PERMISSION_DENIED\b/,
  /\bpermission\b.*\bdenied\b/i,
  /\bdoes not have (the )?[^.]*permission/i,
];
/** §1.4/§2: code 13 "an internal error has occurred"; "unable to queue the operation" (concurrent op). */
const TRANSIENT = [/an internal error has occurred/i, /unable to queue the operation/i];

/** Which quota wording scopes the quota (§2: "in region" vs "in zone"; TPU metric names say PerRegion). */
export function quotaScopeOf(text: string): QuotaScope {
  if (/\bin zone\b|PerZone/i.test(text)) return 'zone';
  if (/\bin region\b|PerRegion|\bregional\b/i.test(text)) return 'region';
  if (/\bglobal(ly)?\b|PerProject(?!Per)/i.test(text)) return 'project';
  // Cloud TPU quotas are counted per project per region unless told otherwise.
  return 'region';
}

const LIMIT_ZERO = /\bLimit:\s*0(\.0+)?(?![\d.])/i;

/** Full classification of an API error, with the quota scope when it is a quota error. */
export function describeComputeError(error: ComputeErrorInput): ClassifiedComputeError {
  const status = grpcStatusOf(error.code);
  const text = `${error.reason ?? ''} ${error.message}`;
  const withStatus = (failureClass: ComputeFailureClass): ClassifiedComputeError =>
    status === undefined ? { failureClass } : { failureClass, status };

  if (any(PREEMPTED, text)) return withStatus('preemption');
  if (any(QUOTA, text) || (status === 'RESOURCE_EXHAUSTED' && /\bquota\b/i.test(text))) {
    if (any(RATE_LIMIT, text)) return withStatus('internal');
    return { ...withStatus('quota'), quotaScope: quotaScopeOf(text), quotaLimitZero: LIMIT_ZERO.test(text) };
  }
  // Stockout before reservation: a capacity message may suggest reservations in its advice.
  if (any(STOCKOUT, text)) return withStatus('stockout');
  if (any(RESERVATION, text)) return withStatus('reservation');
  if (any(INVALID_CONFIG, text) || /\bRESOURCE_NOT_FOUND\b/.test(text)) return withStatus('invalid-config');
  if (any(BAD_INPUT, text)) return withStatus('bad-input');
  if (any(TRANSIENT, text) || any(RATE_LIMIT, text)) return withStatus('internal');

  switch (status) {
    case 'RESOURCE_EXHAUSTED':
      // Code 8 is the stockout code (§2, SkyPilot blocks the zone on 8); quota was ruled out above.
      return withStatus('stockout');
    case 'INVALID_ARGUMENT':
      // §2: INVALID_ARGUMENT about the accelerator, zone or runtime is a placement problem; about
      // anything else (node id, labels, metadata…) our request is malformed.
      return withStatus(/\b(accelerator|zone|location|region|runtime|topology|machine ?type)/i.test(text) ? 'invalid-config' : 'bad-input');
    case 'NOT_FOUND':
      // During create: the zone, accelerator or runtime named does not exist there (SkyPilot: RESOURCE_NOT_FOUND blocks the zone).
      return withStatus('invalid-config');
    case 'PERMISSION_DENIED':
    case 'UNAUTHENTICATED':
    case 'UNIMPLEMENTED':
    case 'OUT_OF_RANGE':
      return withStatus('bad-input');
    default:
      // INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, FAILED_PRECONDITION, no code:
      // opaque, retried in place and bounded by the failover policy.
      return withStatus('internal');
  }
}

/** The class of an API error from the Cloud TPU API or Compute Engine. */
export function classifyComputeError(error: ComputeErrorInput): ComputeFailureClass {
  return describeComputeError(error).failureClass;
}

// ---------------------------------------------------------------------------------------------
// Node and queued-resource states

/** google.cloud.tpu.v2.Node.State (LRO results carry numbers, unary calls strings: §1.4). */
const NODE_STATE: Readonly<Record<number, string>> = {
  0: 'STATE_UNSPECIFIED',
  1: 'CREATING',
  2: 'READY',
  3: 'RESTARTING',
  4: 'REIMAGING',
  5: 'DELETING',
  6: 'REPAIRING',
  8: 'STOPPED',
  9: 'STOPPING',
  10: 'STARTING',
  11: 'PREEMPTED',
  12: 'TERMINATED',
  13: 'HIDING',
  14: 'HIDDEN',
  15: 'UNHIDING',
  16: 'UNKNOWN',
};
/** google.cloud.tpu.v2.Node.Health. */
const NODE_HEALTH: Readonly<Record<number, string>> = {
  0: 'HEALTH_UNSPECIFIED',
  1: 'HEALTHY',
  3: 'TIMEOUT',
  4: 'UNHEALTHY_TENSORFLOW',
  5: 'UNHEALTHY_MAINTENANCE',
};
/** google.cloud.tpu.v2.QueuedResourceState.State. */
const QR_STATE: Readonly<Record<number, string>> = {
  0: 'STATE_UNSPECIFIED',
  1: 'CREATING',
  2: 'ACCEPTED',
  3: 'PROVISIONING',
  4: 'FAILED',
  5: 'DELETING',
  6: 'ACTIVE',
  7: 'SUSPENDING',
  8: 'SUSPENDED',
  9: 'WAITING_FOR_RESOURCES',
};
const QR_INITIATOR: Readonly<Record<number, string>> = { 0: 'STATE_INITIATOR_UNSPECIFIED', 1: 'USER', 2: 'SERVICE' };

function enumName(value: string | number | null | undefined, names: Readonly<Record<number, string>>): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' || /^\d+$/.test(value)) return names[Number(value)] ?? String(value);
  return value.toUpperCase();
}

/** Node states in which the node is still on its way up: not (yet) a failure. */
const COMING_UP = new Set(['STATE_UNSPECIFIED', 'CREATING', 'STARTING']);

/**
 * Classifies a node found in a bad state while a stage needs it READY; undefined when it is
 * usable or still coming up. `spot`: the node is a spot/preemptible node — TERMINATED then means
 * preempted (the proto's "end of its life cycle (for preemptible nodes)"; SkyPilot#1468 saw
 * preempted TPUs in non-PREEMPTED states).
 *
 * READY with health TIMEOUT or UNHEALTHY_TENSORFLOW is left to the watcher (the container may be
 * fine; exit and hang detection decide); READY with UNHEALTHY_MAINTENANCE is a loss (the node
 * "will resume running once rescheduled": the processes on it do not).
 */
export function classifyNodeState(
  state: string | number | null | undefined,
  health?: string | number | null,
  options: { spot?: boolean } = {},
): ComputeFailureClass | undefined {
  const s = enumName(state, NODE_STATE) ?? 'STATE_UNSPECIFIED';
  const h = enumName(health, NODE_HEALTH);
  if (s === 'PREEMPTED') return 'preemption';
  if (s === 'TERMINATED') return options.spot === true ? 'preemption' : 'maintenance';
  if (s === 'READY') return h === 'UNHEALTHY_MAINTENANCE' ? 'maintenance' : undefined;
  if (COMING_UP.has(s)) return h === 'UNHEALTHY_MAINTENANCE' ? 'maintenance' : undefined;
  // RESTARTING, REIMAGING, REPAIRING, UNKNOWN (failed repair), STOPPING/STOPPED, DELETING,
  // HIDING/HIDDEN/UNHIDING and anything new: the VM the run was on is gone or being rebuilt.
  return 'maintenance';
}

/**
 * Classifies a queued resource (§1.3): SUSPENDING/SUSPENDED initiated by the SERVICE = the TPUs
 * were taken back (preemption); by the USER (or unknown) = someone deleted them (maintenance);
 * FAILED = its error classified, or a stockout when it carries none (the request could not be
 * satisfied within its timing constraint). Undefined while queued, provisioning or ACTIVE.
 */
export function classifyQueuedResourceState(
  state: string | number | null | undefined,
  initiator?: string | number | null,
  error?: ComputeErrorInput,
): ComputeFailureClass | undefined {
  const s = enumName(state, QR_STATE);
  if (s === 'SUSPENDING' || s === 'SUSPENDED') return enumName(initiator, QR_INITIATOR) === 'SERVICE' ? 'preemption' : 'maintenance';
  if (s === 'FAILED') return error === undefined ? 'stockout' : classifyComputeError(error);
  if (s === 'DELETING') return 'maintenance';
  return undefined;
}

/** The ApplicationFailure fields for a classified failure (the activity adds `nonRetryable: true`). */
export function computeFailure(failureClass: ComputeFailureClass, zone: string, detail: string): { type: string; message: string } {
  const rule = COMPUTE_FAILURES[failureClass];
  return { type: rule.type, message: `${failureClass} in ${zone}: ${detail} — ${rule.hint}` };
}
