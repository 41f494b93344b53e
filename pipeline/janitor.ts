/**
 * The janitor's rules (pure: the workflow, the CLI and the future API share them). A leased
 * machine — labelled `rd-<run>-<stage>-<attempt>` with run, stage, attempt and owner — is
 * deleted only when it is ours, its run is closed or unknown to Temporal, and it is older
 * than the grace period. Compute of a running run, and anything without our owner label, is
 * never deleted.
 */
import { z } from 'zod';
import type { ComputeBackend } from './input.ts';
import { stageWorkflowId } from './naming.ts';
import { isStageName } from './stages.ts';

/** The owner label every machine this project creates carries. */
export const LEASE_OWNER = 'recogdrive';

/** Workflow type, schedule id and workflow-id prefix of the janitor. */
export const JANITOR_WORKFLOW = 'recogdriveJanitor';
export const JANITOR_SCHEDULE_ID = 'recogdrive-janitor';
export const InvalidJanitorInputType = 'InvalidJanitorInput';

/**
 * One machine a compute backend holds, as its listing shows it. `labels.run` must be the exact
 * run (workflow) id: a backend whose labels cannot hold it (Cloud labels are [a-z0-9_-], ≤ 63)
 * has to keep it elsewhere (metadata, description) and map it back when listing, or the run
 * would look unknown to Temporal.
 */
export interface LeaseRecord {
  name: string;
  backend: ComputeBackend;
  /** run, stage, attempt, owner (and whatever else the backend keeps). */
  labels: Readonly<Record<string, string>>;
  /** ISO time the machine was created. */
  createdAt: string;
  zone?: string;
}

export const JanitorInput = z.strictObject({
  dryRun: z.boolean(),
  /** A machine younger than this is kept whatever its run's state (clock skew, runs being created). */
  graceMs: z.number().int().min(0).max(30 * 86_400_000),
});
export type JanitorInput = z.output<typeof JanitorInput>;

export class InvalidJanitorInput extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid janitor input:\n  - ${issues.join('\n  - ')}`);
    this.name = InvalidJanitorInputType;
    this.issues = issues;
  }
}

export function parseJanitorInput(raw: unknown): JanitorInput {
  const result = JanitorInput.safeParse(raw);
  if (result.success) return result.data;
  throw new InvalidJanitorInput(result.error.issues.map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`));
}

/** A workflow's state as the janitor sees it. */
export type RunState = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed out' | 'unknown' | 'unreadable';
export interface RunStateInfo {
  state: RunState;
  /** Why the state could not be read ('unreadable'). */
  detail?: string;
}

/** Temporal's execution status name → the janitor's state. Anything it does not know is unreadable: kept. */
export function runStateOf(statusName: string): RunStateInfo {
  switch (statusName) {
    // A describe without a run id shows the latest execution; a continued chain goes on.
    case 'RUNNING':
    case 'PAUSED':
    case 'CONTINUED_AS_NEW':
      return { state: 'running' };
    case 'COMPLETED':
      return { state: 'completed' };
    case 'FAILED':
      return { state: 'failed' };
    case 'CANCELLED':
      return { state: 'cancelled' };
    case 'TERMINATED':
      return { state: 'terminated' };
    case 'TIMED_OUT':
      return { state: 'timed out' };
    default:
      return { state: 'unreadable', detail: `Temporal status ${statusName}` };
  }
}

/** The stage workflow that holds a lease (`<run>/<stage>`), when the labels name a stage. */
function stageWorkflowOf(lease: LeaseRecord): string | undefined {
  const { run, stage } = lease.labels;
  return run !== undefined && stage !== undefined && isStageName(stage) ? stageWorkflowId(run, stage) : undefined;
}

/** The workflow ids whose states decideLeaks needs: each of our leases' run and its stage workflow. */
export function workflowsToCheck(leases: readonly LeaseRecord[]): string[] {
  const ids = new Set<string>();
  for (const lease of leases) {
    if (lease.labels.owner !== LEASE_OWNER || lease.labels.run === undefined) continue;
    ids.add(lease.labels.run);
    const stageWorkflow = stageWorkflowOf(lease);
    if (stageWorkflow !== undefined) ids.add(stageWorkflow);
  }
  return [...ids].sort();
}

export interface LeaseDecision {
  lease: LeaseRecord;
  action: 'delete' | 'keep';
  reason: string;
}

/** "45 s", "3 min", "2 h", "3 d" (rounded down). */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/**
 * Per lease: delete or keep, with the reason. In this order: not ours → keep; run or its stage
 * workflow running, or its state unreadable → keep; younger than the grace period → keep; run
 * closed or unknown to Temporal → delete. `runStates` is keyed by workflow id (see workflowsToCheck).
 */
export function decideLeaks(
  leases: readonly LeaseRecord[],
  runStates: Readonly<Record<string, RunStateInfo>>,
  now: number,
  graceMs: number,
): LeaseDecision[] {
  return leases.map((lease) => {
    const keep = (reason: string): LeaseDecision => ({ lease, action: 'keep', reason });
    const { owner, run } = lease.labels;
    if (owner !== LEASE_OWNER) return keep(owner === undefined ? 'not ours (no owner label)' : `not ours (owner label "${owner}")`);
    if (run === undefined || run === '') return keep('no run label: whose it is cannot be told');

    const state = runStates[run];
    if (state === undefined) return keep(`state of run ${run} was not checked`);
    if (state.state === 'running') return keep(`run ${run} is running`);
    if (state.state === 'unreadable') return keep(`state of run ${run} could not be read${state.detail ? `: ${state.detail}` : ''}`);
    const stageWorkflow = stageWorkflowOf(lease);
    const stageState = stageWorkflow === undefined ? undefined : runStates[stageWorkflow];
    // A stage whose run closed may still be stopping its container and releasing (REQUEST_CANCEL).
    if (stageState?.state === 'running') return keep(`stage workflow ${stageWorkflow} is still running`);
    if (stageState?.state === 'unreadable') return keep(`state of stage workflow ${stageWorkflow} could not be read${stageState.detail ? `: ${stageState.detail}` : ''}`);

    const created = Date.parse(lease.createdAt);
    if (Number.isNaN(created)) return keep(`creation time "${lease.createdAt}" is unreadable`);
    const age = now - created;
    if (age < graceMs) return keep(`created ${formatAge(age)} ago, inside the grace period (${formatAge(graceMs)})`);

    const reason = state.state === 'unknown' ? `run ${run} unknown to Temporal` : `run ${run} ${state.state}`;
    return { lease, action: 'delete', reason };
  });
}

/** One lease in the janitor's report. */
export interface JanitorEntry {
  name: string;
  backend: ComputeBackend;
  zone?: string;
  run?: string;
  stage?: string;
  attempt?: string;
  createdAt: string;
  reason: string;
}

export interface DeletedEntry extends JanitorEntry {
  /** 'would-delete' in a dry run; 'already-gone' when the backend no longer had it. */
  outcome: 'deleted' | 'already-gone' | 'would-delete';
}

export interface FailedEntry extends JanitorEntry {
  error: string;
}

export interface JanitorReport {
  checkedAt: string;
  dryRun: boolean;
  graceMs: number;
  /** Deleted, or in a dry run: what would be deleted (outcome 'would-delete'). */
  deleted: DeletedEntry[];
  kept: JanitorEntry[];
  failed: FailedEntry[];
  /** Backends whose machines could not be listed this time (their leaks, if any, wait for the next run). */
  unlisted?: Array<{ backend: string; error: string }>;
}

export function janitorEntry(lease: LeaseRecord, reason: string): JanitorEntry {
  const { run, stage, attempt } = lease.labels;
  return {
    name: lease.name,
    backend: lease.backend,
    ...(lease.zone === undefined ? {} : { zone: lease.zone }),
    ...(run === undefined ? {} : { run }),
    ...(stage === undefined ? {} : { stage }),
    ...(attempt === undefined ? {} : { attempt }),
    createdAt: lease.createdAt,
    reason,
  };
}

/** What deleteLeases did with one lease. 'spared': the run was found running when checked again just before deleting. */
export type DeleteOutcome =
  | { name: string; backend: ComputeBackend; outcome: 'deleted' | 'already-gone' }
  | { name: string; backend: ComputeBackend; outcome: 'spared'; reason: string }
  | { name: string; backend: ComputeBackend; outcome: 'error'; error: string };
