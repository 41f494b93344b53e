/**
 * The nightly retraining schedule on a real Temporal dev server with the embedded default:
 * create/update in place, the policies Temporal actually holds, pause, trigger, the nightly
 * "nothing changed" run, refusal of bad configs (nothing created), and the CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidScheduleConfig, parseScheduleConfig, type ScheduleConfigFile } from '../../infra/schedules/schedule-config.ts';
import { STAGES } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import {
  createOrUpdateSchedule,
  deleteSchedule,
  describeSchedule,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
} from '../../workers/schedule.ts';
import { assertNothingLeaked } from '../helpers/assertions.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

const client = () => env.stack.client;

/** A config for the embedded default: stages of 200 ms, reuse of verified outputs on (the product default). */
function config(scheduleId: string, extra: Partial<ScheduleConfigFile> = {}): ScheduleConfigFile {
  return {
    scheduleId,
    cron: '30 2 * * *',
    timeZone: 'Europe/Berlin',
    catchupWindow: '6h',
    input: env.input({ experiment: 'nightly', durationMs: 200, reuse: { policy: 'verified' } }),
    ...extra,
  };
}

/** Deletes the schedule at the end of a test, whatever happened. */
async function withSchedule(scheduleId: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await deleteSchedule(client(), scheduleId).catch((error: unknown) => {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    });
  }
}

async function assertNoSchedule(scheduleId: string): Promise<void> {
  await assert.rejects(client().schedule.getHandle(scheduleId).describe(), ScheduleNotFoundError);
  const listed: string[] = [];
  for await (const s of client().schedule.list()) listed.push(s.scheduleId);
  assert.ok(!listed.includes(scheduleId), `${scheduleId} is not listed: ${listed.join(', ')}`);
}

/** The workflow ids of the runs the schedule started, from visibility (eventually consistent: waits for `count`). */
async function scheduledRuns(scheduleId: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ids: string[] = [];
    for await (const wf of client().workflow.list({ query: `TemporalScheduledById = "${scheduleId}"` })) ids.push(wf.workflowId);
    if (ids.length >= count || Date.now() > deadline) return ids.sort();
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function stageWorkflowsOf(runId: string): Promise<string[]> {
  const found: string[] = [];
  for (const stage of STAGES) {
    try {
      await client().workflow.getHandle(`${runId}/${stage}`).describe();
      found.push(stage);
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    }
  }
  return found;
}

test('the example config is valid and carries the TPU example input unchanged', async () => {
  const example = JSON.parse(await readFile(join(PROJECT_ROOT, 'infra', 'schedules', 'nightly.example.json'), 'utf8')) as Record<string, unknown>;
  const spec = JSON.parse(await readFile(join(PROJECT_ROOT, 'examples', 'spec-tpu.json'), 'utf8')) as unknown;
  const parsed = parseScheduleConfig(example);
  assert.deepEqual(parsed.input, spec);
  assert.equal(parsed.catchupWindow, 6 * 3_600_000);
  assert.equal(parsed.overlap, 'SKIP');
  assert.equal(parsed.paused, false);
});

test('create twice: one schedule, the second call updates spec, time zone, input, policies and state in place', async () => {
  const id = 'sched-update';
  await withSchedule(id, async () => {
    assert.deepEqual(await createOrUpdateSchedule(client(), config(id, { note: 'first' }), env.stack.taskQueue), { scheduleId: id, outcome: 'created' });
    const first = await describeSchedule(client(), id);
    assert.deepEqual(first.spec, ['30 2 * * *']);
    assert.equal(first.timeZone, 'Europe/Berlin');
    assert.equal(first.overlap, 'SKIP');
    assert.equal(first.catchupWindow, '6h');
    assert.equal(first.catchupWindowMs, 21_600_000);
    assert.equal(first.paused, false);
    assert.equal(first.note, 'first');
    assert.equal(first.workflowType, 'recogdrivePipeline');
    assert.equal(first.taskQueue, env.stack.taskQueue);
    assert.equal(first.experiment, 'nightly');
    // 02:30 in Berlin is 00:30 or 01:30 UTC, every day.
    assert.ok(first.nextActionTimes.length > 0 && first.nextActionTimes.every((t) => /T0[01]:30:00/.test(t)), first.nextActionTimes.join(', '));

    const second = config(id, {
      cron: undefined,
      calendar: { hour: 3, minute: 15, dayOfWeek: ['MONDAY', 'fri'] },
      timeZone: 'UTC',
      catchupWindow: '90 minutes',
      paused: true,
      note: 'second',
      input: env.input({ experiment: 'nightly-b', durationMs: 200, reuse: { policy: 'verified' } }),
    });
    assert.deepEqual(await createOrUpdateSchedule(client(), second, env.stack.taskQueue), { scheduleId: id, outcome: 'updated' });
    const updated = await describeSchedule(client(), id);
    assert.deepEqual(updated.spec, ['15 3 * * MON,FRI']);
    assert.equal(updated.timeZone, 'UTC');
    assert.equal(updated.catchupWindow, '90m');
    assert.equal(updated.overlap, 'SKIP');
    assert.equal(updated.paused, true);
    assert.equal(updated.note, 'second');
    assert.equal(updated.experiment, 'nightly-b');
    assert.equal(updated.createdAt, first.createdAt, 'the same schedule, not a new one');
    assert.ok(updated.updatedAt !== undefined);
    for (const t of updated.nextActionTimes) {
      assert.match(t, /T03:15:00/);
      assert.ok([1, 5].includes(new Date(t).getUTCDay()), `${t} is a Monday or Friday`);
    }

    // A third call with the same file changes nothing visible: idempotent.
    assert.equal((await createOrUpdateSchedule(client(), second, env.stack.taskQueue)).outcome, 'updated');
    const again = await describeSchedule(client(), id);
    assert.deepEqual({ ...again, updatedAt: undefined }, { ...updated, updatedAt: undefined });
  });
});

test('pause and unpause with a reason show in describe', async () => {
  const id = 'sched-pause';
  await withSchedule(id, async () => {
    await createOrUpdateSchedule(client(), config(id), env.stack.taskQueue);
    await pauseSchedule(client(), id, 'cluster maintenance');
    const paused = await describeSchedule(client(), id);
    assert.equal(paused.paused, true);
    assert.equal(paused.note, 'cluster maintenance');
    await unpauseSchedule(client(), id, 'maintenance over');
    const unpaused = await describeSchedule(client(), id);
    assert.equal(unpaused.paused, false);
    assert.equal(unpaused.note, 'maintenance over');
  });
});

test('trigger starts a run that completes; the next trigger with unchanged input reuses every stage and starts no stage workflow', async () => {
  const id = 'sched-nightly';
  await withSchedule(id, async () => {
    await createOrUpdateSchedule(client(), config(id), env.stack.taskQueue);

    const first = await triggerSchedule(client(), id);
    assert.equal(first.outcome, 'started');
    const firstRun = first.outcome === 'started' ? first.workflowId : '';
    assert.ok(firstRun.startsWith(`${id}-`), firstRun);
    assert.deepEqual(await scheduledRuns(id, 1), [firstRun], 'Temporal knows the run as started by the schedule');
    const ran = (await client().workflow.getHandle(firstRun).result()) as RunSummary;
    assert.deepEqual(new Set(ran.stages.map((s) => s.decision)), new Set(['RUN']));
    assert.equal(ran.nothingChanged, false);
    assert.deepEqual(await stageWorkflowsOf(firstRun), [...STAGES]);

    const second = await triggerSchedule(client(), id);
    assert.equal(second.outcome, 'started');
    const secondRun = second.outcome === 'started' ? second.workflowId : '';
    assert.notEqual(secondRun, firstRun);
    const nightly = (await client().workflow.getHandle(secondRun).result()) as RunSummary;
    assert.deepEqual(
      nightly.stages.map((s) => [s.stage, s.decision]),
      STAGES.map((stage) => [stage, 'REUSE']),
    );
    assert.equal(nightly.nothingChanged, true);
    for (const stage of STAGES) {
      await assert.rejects(client().workflow.getHandle(`${secondRun}/${stage}`).describe(), WorkflowNotFoundError, `${stage} started no stage workflow`);
    }
    assert.deepEqual(await scheduledRuns(id, 2), [firstRun, secondRun].sort());
    const view = await describeSchedule(client(), id);
    assert.deepEqual(view.recentActions.map((a) => a.workflowId), [firstRun, secondRun]);
    assert.equal(view.actionsTaken, 2);
    await assertNothingLeaked(env);
  });
});

test('overlap SKIP: a trigger while a run of the schedule is still going starts nothing', async () => {
  const id = 'sched-overlap';
  await withSchedule(id, async () => {
    // One slow stage, nothing to reuse: the run is still going when the second trigger arrives.
    const input = env.input({ experiment: 'nightly-slow', stages: ['stage1'], durationMs: 4000, reuse: { policy: 'never' } });
    await createOrUpdateSchedule(client(), config(id, { input }), env.stack.taskQueue);
    const first = await triggerSchedule(client(), id);
    assert.equal(first.outcome, 'started');
    const running = first.outcome === 'started' ? first.workflowId : '';
    const second = await triggerSchedule(client(), id);
    assert.deepEqual(second, { scheduleId: id, outcome: 'skipped', running: [running] });
    const view = await describeSchedule(client(), id);
    assert.equal(view.actionsTaken, 1);
    assert.equal(view.skippedOverlap, 1);
    assert.deepEqual(view.running, [running]);
    await client().workflow.getHandle(running).result();
    assert.deepEqual(await scheduledRuns(id, 1), [running]);
  });
});

test('a bad config is refused naming the field, and creates or updates nothing', async () => {
  const id = 'sched-bad';
  const refused = async (file: unknown, pattern: RegExp) => {
    await assert.rejects(createOrUpdateSchedule(client(), file as ScheduleConfigFile, env.stack.taskQueue), (error: unknown) => {
      assert.ok(error instanceof InvalidScheduleConfig, String(error));
      assert.match(error.message, pattern);
      return true;
    });
  };
  await refused(config(id, { timeZone: 'Mars/Olympus_Mons' }), /timeZone: "Mars\/Olympus_Mons" is not an IANA time zone name/);
  await refused(config(id, { timeZone: 'europe/berlin' }), /timeZone: time zone names are case-sensitive: write "Europe\/Berlin"/);
  const noCatchup: Record<string, unknown> = { ...config(id) };
  delete noCatchup.catchupWindow;
  await refused(noCatchup, /catchupWindow: required/);
  const badInput = { ...env.input({ experiment: 'Bad_Name' }), stage2: { epochs: 0 } };
  await refused(config(id, { input: badInput }), /input\.experiment: use 2-40 lowercase[\s\S]*input\.stage2\.epochs: Too small/);
  await refused(config(id, { overlap: 'ALLOW_ALL' as 'SKIP' }), /overlap: only "SKIP" is allowed/);
  await refused(config(id, { calendar: { hour: 2, minute: 30 } }), /give either "cron" or "calendar", not both/);
  await refused(config(id, { cron: undefined }), /say when to run: give "cron" or "calendar"/);
  // Passes the file's checks, refused by Temporal's own cron parser: still a config error, still nothing created.
  await refused(config(id, { cron: '75 2 * * *' }), /cron: Temporal refused it: .*Minute/);
  await assertNoSchedule(id);

  // An existing schedule is left as it was by a bad update.
  await withSchedule(id, async () => {
    await createOrUpdateSchedule(client(), config(id, { note: 'good' }), env.stack.taskQueue);
    const before = await describeSchedule(client(), id);
    await refused(config(id, { note: 'bad', input: badInput }), /input\.experiment/);
    assert.deepEqual(await describeSchedule(client(), id), before);
  });
});

test('recogdrive schedule: create/update/describe/pause/delete, a bad file exits 2 and creates nothing, no server exits 3', async () => {
  const cliEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: env.stack.server.address,
    TEMPORAL_NAMESPACE: env.stack.server.namespace,
    RECOGDRIVE_TASK_QUEUE: env.stack.taskQueue,
  };
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    promisify(execFile)(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'schedule', ...args], { env: { ...cliEnv, ...extraEnv } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  const id = 'sched-cli';
  const good = join(env.dataDir, 'schedule-good.json');
  const bad = join(env.dataDir, 'schedule-bad.json');
  await writeFile(good, JSON.stringify(config(id)));
  await writeFile(bad, JSON.stringify(config(id, { timeZone: 'Nowhere/Land', input: { ...env.input(), stage2: { epochs: 0 } } })));

  const refused = await cli(['create', '--file', bad]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /schedule-bad\.json: invalid schedule config:[\s\S]*timeZone: "Nowhere\/Land"[\s\S]*input\.stage2\.epochs/);
  await assertNoSchedule(id);
  assert.equal((await cli(['create', '--file', join(env.dataDir, 'missing.json')])).code, 2);

  await withSchedule(id, async () => {
    const created = await cli(['create', '--file', good, '--json']);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout), { scheduleId: id, outcome: 'created' });
    await writeFile(good, JSON.stringify(config(id, { cron: '0 4 * * *', note: 'from the CLI' })));
    const updated = await cli(['create', '--file', good]);
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(updated.stdout, new RegExp(`updated schedule ${id}`));

    assert.equal((await cli(['pause', id, '--reason', 'disk full'])).code, 0);
    const described = await cli(['describe', id, '--json']);
    assert.equal(described.code, 0, described.stderr);
    const view = JSON.parse(described.stdout) as { spec: string[]; note: string; paused: boolean; overlap: string; catchupWindow: string };
    assert.deepEqual([view.spec, view.paused, view.note, view.overlap, view.catchupWindow], [['0 4 * * *'], true, 'disk full', 'SKIP', '6h']);
    const human = await cli(['describe', id]);
    assert.match(human.stdout, /schedule sched-cli: paused \(disk full\)\n {2}when: {6}0 4 \* \* \* \(Europe\/Berlin\)/);

    const unreachable = await cli(['describe', id], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    assert.equal(unreachable.code, 3, unreachable.stderr);

    assert.equal((await cli(['delete', id])).code, 0);
    const gone = await cli(['describe', id]);
    assert.equal(gone.code, 4, 'not found');
    assert.match(gone.stderr, /no schedule sched-cli/);
  });
});
