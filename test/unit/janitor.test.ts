/** The janitor's rules (pipeline/janitor.ts), its report format, and the local backend's lease listing and deletion. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalComputeProvider } from '../../activities/compute/local.ts';
import {
  decideLeaks,
  InvalidJanitorInput,
  parseJanitorInput,
  runStateOf,
  workflowsToCheck,
  type JanitorReport,
  type LeaseRecord,
  type RunStateInfo,
} from '../../pipeline/janitor.ts';
import { formatJanitorReport, janitorWorkflowId } from '../../workers/janitor-command.ts';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const MIN = 60_000;
const GRACE = 30 * MIN;

function lease(run: string, options: { stage?: string; ageMs?: number; owner?: string | null; createdAt?: string } = {}): LeaseRecord {
  const stage = options.stage ?? 'stage2';
  const labels: Record<string, string> = { run, stage, attempt: '1' };
  if (options.owner !== null) labels.owner = options.owner ?? 'recogdrive';
  return {
    name: `rd-${run}-${stage}-1`,
    backend: 'local',
    labels,
    createdAt: options.createdAt ?? new Date(NOW - (options.ageMs ?? 2 * 3_600_000)).toISOString(),
  };
}

const decide = (leases: LeaseRecord[], states: Record<string, RunStateInfo>, graceMs = GRACE) =>
  decideLeaks(leases, states, NOW, graceMs).map((d) => [d.lease.name, d.action, d.reason]);

test('a running run keeps its compute, whatever its age', () => {
  assert.deepEqual(decide([lease('exp-1', { ageMs: 30 * 86_400_000 })], { 'exp-1': { state: 'running' } }), [
    ['rd-exp-1-stage2-1', 'keep', 'run exp-1 is running'],
  ]);
});

test('closed runs and runs unknown to Temporal lose their compute, each with its reason', () => {
  const states: Record<string, RunStateInfo> = {
    done: { state: 'completed' },
    bad: { state: 'failed' },
    stopped: { state: 'cancelled' },
    killed: { state: 'terminated' },
    slow: { state: 'timed out' },
    ghost: { state: 'unknown' },
  };
  assert.deepEqual(
    decide(Object.keys(states).map((run) => lease(run)), states).map(([, action, reason]) => [action, reason]),
    [
      ['delete', 'run done completed'],
      ['delete', 'run bad failed'],
      ['delete', 'run stopped cancelled'],
      ['delete', 'run killed terminated'],
      ['delete', 'run slow timed out'],
      ['delete', 'run ghost unknown to Temporal'],
    ],
  );
});

test('inside the grace period a lease is kept even when its run is closed or unknown; at the boundary it goes', () => {
  assert.deepEqual(decide([lease('ghost', { ageMs: 3 * MIN + 20_000 })], { ghost: { state: 'unknown' } }), [
    ['rd-ghost-stage2-1', 'keep', 'created 3 min ago, inside the grace period (30 min)'],
  ]);
  // A creation time ahead of this clock (skew between machines) is inside the grace period too.
  assert.equal(decide([lease('ghost', { ageMs: -5 * MIN })], { ghost: { state: 'completed' } })[0]![1], 'keep');
  assert.equal(decide([lease('ghost', { ageMs: GRACE })], { ghost: { state: 'completed' } })[0]![1], 'delete');
  assert.equal(decide([lease('ghost', { ageMs: 0 })], { ghost: { state: 'completed' } }, 0)[0]![1], 'delete', 'grace 0: no grace');
});

test('not ours (owner label) is never deleted, whatever its run', () => {
  assert.deepEqual(
    decide([lease('ghost', { owner: 'someone-else' }), lease('ghost', { owner: null, stage: 'stage1' })], { ghost: { state: 'unknown' } }),
    [
      ['rd-ghost-stage2-1', 'keep', 'not ours (owner label "someone-else")'],
      ['rd-ghost-stage1-1', 'keep', 'not ours (no owner label)'],
    ],
  );
});

test('doubt keeps: no run label, an unreadable or unchecked state, an unreadable creation time, a stage still releasing', () => {
  const noRun: LeaseRecord = { name: 'rd-x', backend: 'local', labels: { owner: 'recogdrive' }, createdAt: new Date(0).toISOString() };
  const decisions = decide(
    [noRun, lease('flaky'), lease('unchecked'), lease('odd-time', { createdAt: 'yesterday' }), lease('closed', { stage: 'stage3' })],
    {
      flaky: { state: 'unreadable', detail: 'deadline exceeded' },
      'odd-time': { state: 'unknown' },
      closed: { state: 'terminated' },
      'closed/stage3': { state: 'running' },
    },
  );
  assert.deepEqual(decisions, [
    ['rd-x', 'keep', 'no run label: whose it is cannot be told'],
    ['rd-flaky-stage2-1', 'keep', 'state of run flaky could not be read: deadline exceeded'],
    ['rd-unchecked-stage2-1', 'keep', 'state of run unchecked was not checked'],
    ['rd-odd-time-stage2-1', 'keep', 'creation time "yesterday" is unreadable'],
    ['rd-closed-stage3-1', 'keep', 'stage workflow closed/stage3 is still running'],
  ]);
  // Once the stage workflow has closed too, the lease goes.
  assert.equal(decide([lease('closed', { stage: 'stage3' })], { closed: { state: 'terminated' }, 'closed/stage3': { state: 'cancelled' } })[0]![1], 'delete');
});

test('workflowsToCheck: each of our leases\' run and stage workflow, once; nothing of leases not ours', () => {
  assert.deepEqual(
    workflowsToCheck([lease('a'), lease('a', { stage: 'stage1' }), lease('b', { stage: 'not-a-stage' }), lease('c', { owner: 'other' })]),
    ['a', 'a/stage1', 'a/stage2', 'b'],
  );
});

test('Temporal statuses: running-like ones keep, unknown ones are unreadable (kept)', () => {
  assert.deepEqual(
    ['RUNNING', 'CONTINUED_AS_NEW', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'TIMED_OUT', 'UNSPECIFIED'].map((s) => runStateOf(s).state),
    ['running', 'running', 'running', 'completed', 'failed', 'cancelled', 'terminated', 'timed out', 'unreadable'],
  );
});

test('the janitor input: dryRun and a grace period in ms, nothing else', () => {
  assert.deepEqual(parseJanitorInput({ dryRun: true, graceMs: 0 }), { dryRun: true, graceMs: 0 });
  assert.throws(
    () => parseJanitorInput({ dryRun: 'yes', graceMs: -1, extra: 1 }),
    (e: unknown) => e instanceof InvalidJanitorInput && e.issues.length === 3 && /dryRun/.test(e.message) && /graceMs/.test(e.message) && /extra/.test(e.message),
  );
  assert.throws(() => parseJanitorInput(undefined), InvalidJanitorInput);
});

test('the human report: one line per lease with what happened and why', () => {
  const report: JanitorReport = {
    checkedAt: '2026-03-01T12:00:00.000Z',
    dryRun: false,
    graceMs: GRACE,
    deleted: [{ name: 'rd-ghost-stage2-1', backend: 'local', run: 'ghost', createdAt: '', reason: 'run ghost unknown to Temporal', outcome: 'deleted' }],
    kept: [{ name: 'rd-live-stage1-1', backend: 'local', run: 'live', createdAt: '', reason: 'run live is running' }],
    failed: [{ name: 'rd-x-eval-1', backend: 'tpu-api', zone: 'us-east5-b', createdAt: '', reason: 'run x completed', error: 'quota' }],
  };
  assert.equal(
    formatJanitorReport(report),
    [
      'janitor at 2026-03-01T12:00:00.000Z: 3 leases checked, grace period 30 min',
      '  deleted       rd-ghost-stage2-1 (local)  run ghost unknown to Temporal',
      '  FAILED        rd-x-eval-1 (tpu-api us-east5-b)  run x completed: quota',
      '  kept          rd-live-stage1-1 (local)  run live is running',
    ].join('\n'),
  );
  const dry = formatJanitorReport({ ...report, dryRun: true, failed: [], kept: [], deleted: [{ ...report.deleted[0]!, outcome: 'would-delete' }] });
  assert.match(dry, /\(dry run: nothing deleted\)\n {2}would delete {2}rd-ghost-stage2-1/);
  assert.match(janitorWorkflowId(new Date('2026-03-01T12:00:00.123Z')), /^recogdrive-janitor-20260301-120000-123$/);
});

test('local compute: listLeases shows every machine with its labels; deleteLease deletes the machine as listed, not-found is false', async () => {
  const root = await mkdtemp(join(tmpdir(), 'janitor-unit-'));
  try {
    const compute = new LocalComputeProvider(root);
    const request = { runId: 'ghost-run', stage: 'stage2' as const, attempt: 1, compute: { backend: 'local' as const, simulate: { durationMs: 0 } } };
    await compute.acquire(request);
    const [listed, ...rest] = await compute.listLeases();
    assert.equal(rest.length, 0);
    assert.deepEqual({ ...listed!, createdAt: undefined }, {
      name: 'rd-ghost-run-stage2-1',
      backend: 'local',
      labels: { run: 'ghost-run', stage: 'stage2', attempt: '1', owner: 'recogdrive' },
      createdAt: undefined,
    });
    assert.ok(!Number.isNaN(Date.parse(listed!.createdAt)));

    // A newer machine under the same name (different creation time) is not the one listed.
    assert.equal(await compute.deleteLease({ ...listed!, createdAt: '2000-01-01T00:00:00.000Z' }), false);
    assert.equal((await compute.list()).length, 1);
    await assert.rejects(compute.deleteLease({ ...listed!, name: '../escape' }), /not a local machine name/);
    await assert.rejects(compute.deleteLease({ ...listed!, backend: 'tpu-api' }), /tpu-api lease/);

    assert.equal(await compute.deleteLease(listed!), true);
    assert.deepEqual(await readdir(root), []);
    assert.equal(await compute.deleteLease(listed!), false, 'gone: not found');
    // release() after the janitor deleted it still counts as released (not found).
    assert.deepEqual(await compute.release(request), { name: 'rd-ghost-run-stage2-1', released: false });

    // A folder without a lease record is not a machine: not listed.
    await writeFile(join(root, 'stray'), 'x');
    assert.deepEqual(await compute.listLeases(), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
