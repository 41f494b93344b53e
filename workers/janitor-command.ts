/**
 * `recogdrive janitor`: runs the janitor workflow once and prints its report;
 * `recogdrive janitor schedule`: a Temporal Schedule `recogdrive-janitor` that runs it every
 * interval (overlap SKIP, catch-up window one interval), created or updated in place.
 * Registered by cli.ts, which hands over its connect() and its error type.
 */
import type { Command } from 'commander';
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, WorkflowFailedError, type Client, type ScheduleOptionsAction, type ScheduleUpdateOptions } from '@temporalio/client';
import { parseDuration } from '../pipeline/duration.ts';
import { formatAge, InvalidJanitorInput, JANITOR_SCHEDULE_ID, JANITOR_WORKFLOW, parseJanitorInput, type JanitorEntry, type JanitorReport } from '../pipeline/janitor.ts';
import { configFromEnv } from './config.ts';

export const DEFAULT_JANITOR_GRACE = '30m';
export const DEFAULT_JANITOR_EVERY = '1h';
/** A janitor run that hangs must not block the schedule's next ones forever (overlap SKIP). */
const JANITOR_EXECUTION_TIMEOUT = '1 hour';
const MIN_EVERY_MS = 60_000;

/** recogdrive-janitor-<UTC yyyymmdd-hhmmss-mmm>. */
export function janitorWorkflowId(at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').slice(0, 19);
  return `${JANITOR_SCHEDULE_ID}-${stamp}`;
}

/** Runs the janitor workflow once and waits for its report. */
export async function runJanitorOnce(client: Client, options: { dryRun: boolean; graceMs: number; taskQueue: string; workflowId?: string }): Promise<JanitorReport> {
  const input = parseJanitorInput({ dryRun: options.dryRun, graceMs: options.graceMs });
  return client.workflow.execute(JANITOR_WORKFLOW, {
    workflowId: options.workflowId ?? janitorWorkflowId(new Date()),
    taskQueue: options.taskQueue,
    args: [input],
    workflowExecutionTimeout: JANITOR_EXECUTION_TIMEOUT,
    workflowIdConflictPolicy: 'FAIL',
  }) as Promise<JanitorReport>;
}

export interface JanitorScheduleResult {
  scheduleId: string;
  outcome: 'created' | 'updated';
  everyMs: number;
  graceMs: number;
  catchupWindowMs: number;
}

function janitorScheduleBody(everyMs: number, graceMs: number, taskQueue: string): Omit<ScheduleUpdateOptions, 'state'> {
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: JANITOR_WORKFLOW,
    taskQueue,
    // Temporal appends the action time: recogdrive-janitor-2026-01-01T01:00:00Z.
    workflowId: JANITOR_SCHEDULE_ID,
    args: [parseJanitorInput({ dryRun: false, graceMs })],
    workflowExecutionTimeout: JANITOR_EXECUTION_TIMEOUT,
  };
  return {
    spec: { intervals: [{ every: everyMs }] },
    action,
    // A missed run is worth taking within one interval; later, the next one does the same work.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: everyMs, pauseOnFailure: false },
  };
}

/**
 * Creates the schedule, or updates its interval, grace period and policies in place when it
 * exists (keeping its paused state and note): running it twice leaves one schedule.
 */
export async function createOrUpdateJanitorSchedule(client: Client, options: { everyMs: number; graceMs: number; taskQueue: string }): Promise<JanitorScheduleResult> {
  if (!Number.isInteger(options.everyMs) || options.everyMs < MIN_EVERY_MS) throw new RangeError(`the interval must be at least 1 minute, got ${options.everyMs} ms`);
  const body = janitorScheduleBody(options.everyMs, options.graceMs, options.taskQueue);
  const result = { scheduleId: JANITOR_SCHEDULE_ID, everyMs: options.everyMs, graceMs: options.graceMs, catchupWindowMs: options.everyMs };
  try {
    await client.schedule.create({ scheduleId: JANITOR_SCHEDULE_ID, ...body, state: { note: 'recogdrive janitor: deletes leaked compute of closed runs' } });
    return { ...result, outcome: 'created' };
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await client.schedule.getHandle(JANITOR_SCHEDULE_ID).update((previous) => ({ ...previous, ...body }));
  return { ...result, outcome: 'updated' };
}

function entryLine(verb: string, e: JanitorEntry): string {
  const where = e.zone === undefined ? e.backend : `${e.backend} ${e.zone}`;
  return `  ${verb.padEnd(13)} ${e.name} (${where})  ${e.reason}`;
}

/** One line per lease: what happened to it and why. */
export function formatJanitorReport(report: JanitorReport): string {
  const total = report.deleted.length + report.kept.length + report.failed.length;
  const lines = [
    `janitor at ${report.checkedAt}: ${total} lease${total === 1 ? '' : 's'} checked, grace period ${formatAge(report.graceMs)}${report.dryRun ? ' (dry run: nothing deleted)' : ''}`,
  ];
  for (const e of report.deleted) lines.push(entryLine(e.outcome === 'would-delete' ? 'would delete' : e.outcome === 'already-gone' ? 'already gone' : 'deleted', e));
  for (const e of report.failed) lines.push(`${entryLine('FAILED', e)}: ${e.error}`);
  for (const u of report.unlisted ?? []) lines.push(`  ${'NOT LISTED'.padEnd(13)} ${u.backend}: ${u.error}`);
  for (const e of report.kept) lines.push(entryLine('kept', e));
  if (total === 0) lines.push('  no leases');
  return lines.join('\n');
}

export interface JanitorCliDeps {
  /** Connects to Temporal, or throws the CLI's "unreachable" error (exit 3). */
  connect(): Promise<Client>;
  /** The CLI's error: printed as `recogdrive: <message>`, the process exits with `exitCode`. */
  fail(message: string, exitCode: number): Error;
  exit: { badInput: number; runFailed: number };
}

export function registerJanitorCommands(program: Command, deps: JanitorCliDeps): void {
  const duration = (what: string) => (value: string): number => {
    const ms = value.trim() === '0' ? 0 : parseDuration(value);
    if (ms === undefined) throw deps.fail(`${what}: not a duration: ${value} (e.g. 30m, 1h, 2 days)`, deps.exit.badInput);
    return ms;
  };
  /** The workflow's input, checked before connecting: a bad one is exit 2 even with no server around. */
  const checkInput = (graceMs: number): void => {
    try {
      parseJanitorInput({ dryRun: false, graceMs });
    } catch (error) {
      if (error instanceof InvalidJanitorInput) throw deps.fail(`--grace: ${error.issues.join('; ')}`, deps.exit.badInput);
      throw error;
    }
  };
  const withClient = async <T>(body: (client: Client) => Promise<T>): Promise<T> => {
    const client = await deps.connect();
    try {
      return await body(client);
    } finally {
      await client.connection.close();
    }
  };

  const janitor = program
    .command('janitor')
    .description('delete leaked compute: machines whose run is closed or unknown to Temporal, older than the grace period (never those of a running run)')
    .option('--dry-run', 'delete nothing; report what would be deleted')
    .option('--grace <duration>', `keep machines younger than this whatever their run (default: ${DEFAULT_JANITOR_GRACE})`, duration('--grace'))
    .option('--json', 'machine-readable output')
    .action(async (opts: { dryRun?: boolean; grace?: number; json?: boolean }) => {
      const graceMs = opts.grace ?? parseDuration(DEFAULT_JANITOR_GRACE)!;
      checkInput(graceMs);
      const report = await withClient(async (client) => {
        try {
          return await runJanitorOnce(client, { dryRun: opts.dryRun === true, graceMs, taskQueue: configFromEnv().RECOGDRIVE_TASK_QUEUE });
        } catch (error) {
          if (error instanceof WorkflowFailedError) throw deps.fail(`the janitor failed: ${error.cause?.message ?? error.message}`, deps.exit.runFailed);
          throw error;
        }
      });
      console.log(opts.json === true ? JSON.stringify(report, null, 2) : formatJanitorReport(report));
      if (report.failed.length > 0) throw deps.fail(`${report.failed.length} lease(s) could not be deleted`, deps.exit.runFailed);
      if ((report.unlisted ?? []).length > 0) throw deps.fail(`the machines of ${report.unlisted!.map((u) => u.backend).join(', ')} could not be (all) listed`, deps.exit.runFailed);
    });

  janitor
    .command('schedule')
    .description(`create or update (in place) the schedule ${JANITOR_SCHEDULE_ID} that runs the janitor every interval (overlap SKIP, catch-up window one interval)`)
    .option('--every <duration>', `interval between runs, at least 1 minute (default: ${DEFAULT_JANITOR_EVERY})`, duration('--every'))
    .option('--grace <duration>', `keep machines younger than this whatever their run (default: ${DEFAULT_JANITOR_GRACE})`, duration('--grace'))
    .option('--json', 'machine-readable output')
    .action(async (_opts: unknown, command: Command) => {
      // The program's options are not positional, so `janitor schedule --grace 2h --json` may be
      // parsed as the parent's options: read both.
      const opts = command.optsWithGlobals<{ every?: number; grace?: number; json?: boolean; dryRun?: boolean }>();
      if (opts.dryRun === true) throw deps.fail('--dry-run does not apply to the schedule (run `recogdrive janitor --dry-run` to see what it would delete)', deps.exit.badInput);
      const everyMs = opts.every ?? parseDuration(DEFAULT_JANITOR_EVERY)!;
      const graceMs = opts.grace ?? parseDuration(DEFAULT_JANITOR_GRACE)!;
      if (everyMs < MIN_EVERY_MS) throw deps.fail(`--every must be at least 1 minute`, deps.exit.badInput);
      checkInput(graceMs);
      const result = await withClient((client) =>
        createOrUpdateJanitorSchedule(client, { everyMs, graceMs, taskQueue: configFromEnv().RECOGDRIVE_TASK_QUEUE }),
      );
      console.log(
        opts.json === true
          ? JSON.stringify(result, null, 2)
          : `${result.outcome} schedule ${result.scheduleId}: the janitor every ${formatAge(result.everyMs)}, grace period ${formatAge(result.graceMs)}, overlap SKIP, catch-up window ${formatAge(result.catchupWindowMs)}`,
      );
    });
}
