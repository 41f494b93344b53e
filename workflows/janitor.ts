/**
 * The janitor: deletes compute that a crash or a bug leaked. Lists every labelled machine the
 * compute backends hold, reads the state of each one's run (and stage workflow) in Temporal,
 * and deletes those whose run is closed or unknown, once past the grace period (the rules:
 * pipeline/janitor.ts). A dry run deletes nothing and reports what it would delete.
 * Compute of a running run is never deleted: deleteLeases reads the run's state once more
 * right before deleting.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { RecogdriveActivities } from '../activities/index.ts';
import {
  decideLeaks,
  InvalidJanitorInput,
  InvalidJanitorInputType,
  janitorEntry,
  parseJanitorInput,
  workflowsToCheck,
  type JanitorInput,
  type JanitorReport,
  type LeaseRecord,
  type RunStateInfo,
} from '../pipeline/janitor.ts';

const { listLeakCandidates, runStates } = proxyActivities<RecogdriveActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});
// Deleting is idempotent (not found = already gone), so a retried batch is safe.
const { deleteLeases } = proxyActivities<RecogdriveActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 3 },
});

export async function recogdriveJanitor(input: JanitorInput): Promise<JanitorReport> {
  const { dryRun, graceMs } = validated(input);
  const listing: LeaseRecord[] | { leases: LeaseRecord[]; unlisted: JanitorReport['unlisted'] } = await listLeakCandidates({});
  // Janitor runs started before backends were listed one by one got a plain list.
  const leases = Array.isArray(listing) ? listing : listing.leases;
  const unlisted = Array.isArray(listing) ? [] : (listing.unlisted ?? []);
  const ids = workflowsToCheck(leases);
  const states: Record<string, RunStateInfo> = ids.length === 0 ? {} : await runStates({ runIds: ids });
  const now = Date.now();
  const decisions = decideLeaks(leases, states, now, graceMs);

  const report: JanitorReport = { checkedAt: new Date(now).toISOString(), dryRun, graceMs, deleted: [], kept: [], failed: [], ...(unlisted.length === 0 ? {} : { unlisted }) };
  const toDelete = decisions.filter((d) => d.action === 'delete');
  for (const d of decisions) if (d.action === 'keep') report.kept.push(janitorEntry(d.lease, d.reason));
  if (dryRun) {
    for (const d of toDelete) report.deleted.push({ ...janitorEntry(d.lease, d.reason), outcome: 'would-delete' });
    return report;
  }
  if (toDelete.length === 0) return report;

  const outcomes = await deleteLeases({ leases: toDelete.map((d) => d.lease) });
  toDelete.forEach((d, i) => {
    const entry = janitorEntry(d.lease, d.reason);
    const outcome = outcomes[i];
    if (outcome === undefined) report.failed.push({ ...entry, error: 'no outcome reported' });
    else if (outcome.outcome === 'spared') report.kept.push({ ...entry, reason: `${outcome.reason} (checked again before deleting)` });
    else if (outcome.outcome === 'error') report.failed.push({ ...entry, error: outcome.error });
    else report.deleted.push({ ...entry, outcome: outcome.outcome });
  });
  return report;
}

function validated(input: unknown): JanitorInput {
  try {
    return parseJanitorInput(input);
  } catch (error) {
    if (error instanceof InvalidJanitorInput) throw ApplicationFailure.create({ type: InvalidJanitorInputType, message: error.message, nonRetryable: true });
    throw error;
  }
}
