/**
 * The janitor on a real Temporal dev server with the embedded default: leaked compute of runs
 * unknown to Temporal or closed is deleted with the reason; compute of a running run, fresh
 * compute (grace period) and compute not ours are kept; a dry run deletes nothing; the CLI
 * prints the report; the schedule is created once and updated in place.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ScheduleNotFoundError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ComputeRequest } from '../../activities/types.ts';
import type { JanitorReport } from '../../pipeline/janitor.ts';
import type { StageName } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { runJanitorOnce } from '../../workers/janitor-command.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { describeSchedule } from '../../workers/schedule.ts';
import { processesMentioning, startTestEnv, waitUntilRunning, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

let janitorRuns = 0;
const janitor = (options: { dryRun: boolean; graceMs: number }): Promise<JanitorReport> =>
  runJanitorOnce(env.stack.client, { ...options, taskQueue: env.stack.taskQueue, workflowId: `janitor-test-${++janitorRuns}` });

function request(runId: string, stage: StageName, attempt = 1): ComputeRequest {
  return { runId, stage, attempt, compute: { backend: 'local', simulate: { durationMs: 0 } } };
}

/** A leaked machine: acquired and never released, as after a crash. */
async function plant(runId: string, stage: StageName = 'stage2', attempt = 1): Promise<string> {
  return (await env.compute.acquire(request(runId, stage, attempt))).name;
}

const leaseNames = async () => (await env.compute.list()).map((l) => l.name).sort();
const entry = <T extends { name: string }>(list: T[], name: string): T | undefined => list.find((e) => e.name === name);

test('an orphan of a run unknown to Temporal is deleted; the lease of a running run and one not ours are spared, and the run completes', async () => {
  const handle = await env.start('janitor-live', env.input({ stages: ['stage1'], durationMs: 8000 }));
  await waitUntilRunning(handle, 'stage1');
  const [live] = (await env.compute.list()).filter((l) => l.labels.run === 'janitor-live').map((l) => l.name);
  assert.equal(live, 'rd-janitor-live-stage1-1');
  const ghost = await plant('ghost-run');
  // Someone else's machine in the same place: no owner label of ours.
  const foreign = join(env.compute.root, 'rd-foreign-stage2-1');
  await mkdir(foreign);
  await writeFile(join(foreign, 'lease.json'), JSON.stringify({ name: 'rd-foreign-stage2-1', labels: { run: 'ghost-run', stage: 'stage2', attempt: '1', owner: 'someone-else' }, createdAt: new Date(0).toISOString() }));

  const report = await janitor({ dryRun: false, graceMs: 0 });
  assert.equal(report.dryRun, false);
  assert.deepEqual(report.failed, []);
  assert.deepEqual(
    report.deleted.map((e) => [e.name, e.outcome, e.reason, e.run, e.stage, e.attempt]),
    [[ghost, 'deleted', 'run ghost-run unknown to Temporal', 'ghost-run', 'stage2', '1']],
  );
  assert.equal(entry(report.kept, live!)?.reason, 'run janitor-live is running');
  assert.equal(entry(report.kept, 'rd-foreign-stage2-1')?.reason, 'not ours (owner label "someone-else")');
  assert.deepEqual(await leaseNames(), ['rd-foreign-stage2-1', live!].sort(), 'the orphan is gone, the others are there');

  // The spared stage goes on to verified completion and releases its own compute.
  const summary = (await handle.result()) as RunSummary;
  const stage1 = summary.stages.find((s) => s.stage === 'stage1');
  assert.deepEqual([stage1?.decision, stage1?.attempts, stage1?.computeName], ['RUN', 1, live], 'completed on its first attempt, on the spared compute');
  assert.equal((await handle.describe()).status.name, 'COMPLETED');
  assert.deepEqual(await leaseNames(), ['rd-foreign-stage2-1']);
  assert.deepEqual(await processesMentioning(env.compute.root), []);

  // Not ours is kept on every run, never deleted.
  const again = await janitor({ dryRun: false, graceMs: 0 });
  assert.deepEqual(again.deleted, []);
  assert.deepEqual(again.kept.map((e) => e.name), ['rd-foreign-stage2-1']);
  await rm(foreign, { recursive: true });
});

test('a lease inside the grace period is kept, even when its run is unknown to Temporal', async () => {
  const ghost = await plant('ghost-fresh');
  const report = await janitor({ dryRun: false, graceMs: 3_600_000 });
  assert.match(entry(report.kept, ghost)?.reason ?? '', /^created \d+ s ago, inside the grace period \(1 h\)$/);
  assert.equal(entry(report.deleted, ghost), undefined);
  assert.deepEqual(await leaseNames(), [ghost]);
  await env.compute.release(request('ghost-fresh', 'stage2'));
});

test('a dry run deletes nothing and reports what it would delete, with the reason', async () => {
  const ghost = await plant('ghost-dry', 'eval', 2);
  const report = await janitor({ dryRun: true, graceMs: 0 });
  assert.equal(report.dryRun, true);
  assert.deepEqual(
    report.deleted.map((e) => [e.name, e.outcome, e.reason]),
    [[ghost, 'would-delete', 'run ghost-dry unknown to Temporal']],
  );
  assert.deepEqual(await leaseNames(), [ghost], 'still there');
  // The same janitor without dry run deletes it.
  const real = await janitor({ dryRun: false, graceMs: 0 });
  assert.deepEqual(real.deleted.map((e) => [e.name, e.outcome]), [[ghost, 'deleted']]);
  assert.deepEqual(await leaseNames(), []);
});

test('leases of a completed run are deleted ("run X completed"), also when its stage workflow exists and has closed', async () => {
  const handle = await env.start('janitor-done', env.input({ stages: ['stage1'], durationMs: 200 }));
  await handle.result();
  assert.equal((await handle.describe()).status.name, 'COMPLETED');
  // As if a release had been lost: attempt 1 of stage1 (its stage workflow completed) and a stage that never started.
  const leaked = [await plant('janitor-done', 'stage1'), await plant('janitor-done', 'stage2')].sort();
  const report = await janitor({ dryRun: false, graceMs: 0 });
  assert.deepEqual(
    report.deleted.map((e) => [e.name, e.outcome, e.reason]).sort(),
    leaked.map((name) => [name, 'deleted', 'run janitor-done completed']),
  );
  assert.deepEqual(report.kept, []);
  assert.deepEqual(await leaseNames(), []);
});

test('a bad janitor input fails the workflow at once naming the field, and deletes nothing', async () => {
  const ghost = await plant('ghost-bad-input');
  const error = await env.stack.client.workflow
    .execute('recogdriveJanitor', { workflowId: 'janitor-bad-input', taskQueue: env.stack.taskQueue, args: [{ dryRun: 'no', graceMs: 0 }] })
    .then(
      () => assert.fail('the janitor accepted a bad input'),
      (e: unknown) => e,
    );
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure, String(error));
  assert.equal(error.cause.type, 'InvalidJanitorInput');
  assert.match(error.cause.message, /dryRun/);
  assert.deepEqual(await leaseNames(), [ghost]);
  await env.compute.release(request('ghost-bad-input', 'stage2'));
});

const cliEnv = () => ({
  ...process.env,
  TEMPORAL_ADDRESS: env.stack.server.address,
  TEMPORAL_NAMESPACE: env.stack.server.namespace,
  RECOGDRIVE_TASK_QUEUE: env.stack.taskQueue,
});
const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'janitor', ...args], { env: { ...cliEnv(), ...extraEnv } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

test('recogdrive janitor --dry-run --json prints the report and exits 0; the human report has one line per lease', async () => {
  const ghost = await plant('ghost-cli');
  const json = await cli(['--dry-run', '--grace', '1ms', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as JanitorReport;
  assert.equal(report.dryRun, true);
  assert.equal(report.graceMs, 1);
  assert.deepEqual(report.deleted.map((e) => [e.name, e.outcome, e.reason]), [[ghost, 'would-delete', 'run ghost-cli unknown to Temporal']]);
  assert.deepEqual(await leaseNames(), [ghost], 'a dry run deletes nothing');

  // Default grace period (30 min): the fresh orphan is kept, and the line says why.
  const human = await cli(['--dry-run']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^janitor at \S+: 1 lease checked, grace period 30 min \(dry run: nothing deleted\)\n {2}kept {10}rd-ghost-cli-stage2-1 \(local\) {2}created \d+ s ago, inside the grace period \(30 min\)$/m);

  assert.equal((await cli(['--grace', 'soon'])).code, 2);
  assert.equal((await cli(['--dry-run'], { TEMPORAL_ADDRESS: '127.0.0.1:1' })).code, 3);

  const deleted = await cli(['--grace', '0']);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.match(deleted.stdout, /\n {2}deleted {7}rd-ghost-cli-stage2-1 \(local\) {2}run ghost-cli unknown to Temporal$/m);
  assert.deepEqual(await leaseNames(), []);
});

test('recogdrive janitor schedule is idempotent: twice → one schedule with overlap SKIP and a catch-up window; a changed interval updates it in place', async () => {
  const client = env.stack.client;
  try {
    const first = await cli(['schedule', '--every', '1h', '--grace', '2h', '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { scheduleId: 'recogdrive-janitor', outcome: 'created', everyMs: 3_600_000, graceMs: 7_200_000, catchupWindowMs: 3_600_000 });
    const before = await describeSchedule(client, 'recogdrive-janitor');
    const second = await cli(['schedule', '--every', '1h', '--grace', '2h']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^updated schedule recogdrive-janitor: the janitor every 1 h, grace period 2 h, overlap SKIP, catch-up window 1 h$/m);

    const ids: string[] = [];
    for await (const s of client.schedule.list()) ids.push(s.scheduleId);
    assert.deepEqual(ids.filter((id) => id === 'recogdrive-janitor'), ['recogdrive-janitor'], 'one schedule');
    const view = await describeSchedule(client, 'recogdrive-janitor');
    assert.deepEqual({ ...view, updatedAt: undefined }, { ...before, updatedAt: undefined }, 'the same schedule, unchanged');
    assert.equal(view.overlap, 'SKIP');
    assert.equal(view.catchupWindowMs, 3_600_000);
    assert.deepEqual(view.spec, ['every 1h']);
    assert.equal(view.workflowType, 'recogdriveJanitor');
    assert.equal(view.taskQueue, env.stack.taskQueue);
    assert.deepEqual((await client.schedule.getHandle('recogdrive-janitor').describe()).action.args, [{ dryRun: false, graceMs: 7_200_000 }]);

    const changed = await cli(['schedule', '--every', '6h']);
    assert.equal(changed.code, 0, changed.stderr);
    const updated = await describeSchedule(client, 'recogdrive-janitor');
    assert.deepEqual([updated.spec, updated.catchupWindowMs, updated.overlap, updated.createdAt], [['every 6h'], 21_600_000, 'SKIP', before.createdAt]);
    assert.deepEqual((await client.schedule.getHandle('recogdrive-janitor').describe()).action.args, [{ dryRun: false, graceMs: 1_800_000 }]);

    assert.equal((await cli(['schedule', '--every', '10s'])).code, 2);
    assert.equal((await cli(['--dry-run', 'schedule'])).code, 2);
  } finally {
    await client.schedule
      .getHandle('recogdrive-janitor')
      .delete()
      .catch((error: unknown) => {
        if (!(error instanceof ScheduleNotFoundError)) throw error;
      });
  }
});
