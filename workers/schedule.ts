/**
 * The nightly retraining: a Temporal Schedule that starts `recogdrivePipeline` with a fixed
 * input (infra/schedules/). Creating it again from the same file updates it in place, so the
 * config file is the truth and `schedule create` is idempotent. A scheduled run's workflow id
 * is `<scheduleId>-<action time>` (Temporal appends the time); with unchanged inputs it reuses
 * every verified output and acquires no compute.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  ServiceError,
  isGrpcServiceError,
  type CalendarSpec,
  type CalendarSpecDescription,
  type Client,
  type IntervalSpecDescription,
  type LooseRange,
  type Range,
  type ScheduleDescription,
  type ScheduleOptionsAction,
  type ScheduleSpec,
  type ScheduleUpdateOptions,
} from '@temporalio/client';
import {
  DAYS_OF_WEEK,
  InvalidScheduleConfig,
  MONTHS,
  parseScheduleConfig,
  type CalendarConfig,
  type ScheduleConfig,
  type ScheduleConfigFile,
} from '../infra/schedules/schedule-config.ts';

export const PIPELINE_WORKFLOW = 'recogdrivePipeline';

/** What the schedule does, from a parsed config: the same for create and update. */
function scheduleBody(config: ScheduleConfig, taskQueue: string): ScheduleUpdateOptions {
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: PIPELINE_WORKFLOW,
    taskQueue,
    // Temporal appends the action time: <scheduleId>-2026-01-01T01:30:00Z.
    workflowId: config.scheduleId,
    args: [config.input],
  };
  return {
    spec: scheduleSpec(config),
    action,
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: config.catchupWindow, pauseOnFailure: false },
    state: { paused: config.paused, ...(config.note === undefined ? {} : { note: config.note }) },
  };
}

function scheduleSpec(config: ScheduleConfig): ScheduleSpec {
  const when: ScheduleSpec = config.cron !== undefined ? { cronExpressions: [config.cron] } : { calendars: [calendarSpec(config.calendar!)] };
  return { ...when, timezone: config.timeZone };
}

type FieldConfig<U> = '*' | U | { start: U; end?: U | undefined; step?: number | undefined } | Array<U | { start: U; end?: U | undefined; step?: number | undefined }>;

function looseRanges<U>(value: FieldConfig<U> | undefined): LooseRange<U> | LooseRange<U>[] | '*' | undefined {
  if (value === undefined || value === '*') return value;
  const one = (item: U | { start: U; end?: U | undefined; step?: number | undefined }): LooseRange<U> => {
    if (typeof item !== 'object' || item === null) return item;
    const range = item as { start: U; end?: U; step?: number };
    if (range.step !== undefined) return { start: range.start, end: range.end ?? range.start, step: range.step };
    return range.end === undefined ? { start: range.start } : { start: range.start, end: range.end };
  };
  return Array.isArray(value) ? value.map(one) : one(value);
}

function calendarSpec(calendar: CalendarConfig): CalendarSpec {
  const spec: CalendarSpec = {};
  const set = <K extends keyof CalendarSpec>(key: K, value: CalendarSpec[K] | undefined) => {
    if (value !== undefined) spec[key] = value;
  };
  set('second', looseRanges(calendar.second));
  set('minute', looseRanges(calendar.minute));
  set('hour', looseRanges(calendar.hour));
  set('dayOfMonth', looseRanges(calendar.dayOfMonth));
  set('month', looseRanges(calendar.month));
  set('dayOfWeek', looseRanges(calendar.dayOfWeek));
  set('comment', calendar.comment);
  return spec;
}

/** Temporal's own refusal of a spec (a cron line it cannot parse), as a config error. */
function asConfigError(error: unknown, config: ScheduleConfig): unknown {
  if (error instanceof TypeError) return new InvalidScheduleConfig([`${config.cron !== undefined ? 'cron' : 'calendar'}: Temporal refused it: ${error.message}`]);
  if (error instanceof ServiceError && isGrpcServiceError(error.cause) && error.cause.code === 3) {
    return new InvalidScheduleConfig([`(config): Temporal refused it: ${error.cause.details}`]);
  }
  return error;
}

export interface CreateOrUpdateResult {
  scheduleId: string;
  outcome: 'created' | 'updated';
}

/**
 * Creates the schedule, or, when one with this id exists, replaces its spec, action (input),
 * policies and state with the config's: the second call with a changed file applies it.
 * The config is validated first: a bad one throws InvalidScheduleConfig and changes nothing.
 */
export async function createOrUpdateSchedule(client: Client, file: ScheduleConfigFile | ScheduleConfig, taskQueue: string): Promise<CreateOrUpdateResult> {
  const config = parseScheduleConfig(file);
  const body = scheduleBody(config, taskQueue);
  try {
    await client.schedule.create({ scheduleId: config.scheduleId, ...body });
    return { scheduleId: config.scheduleId, outcome: 'created' };
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw asConfigError(error, config);
  }
  try {
    await client.schedule.getHandle(config.scheduleId).update(() => body);
  } catch (error) {
    throw asConfigError(error, config);
  }
  return { scheduleId: config.scheduleId, outcome: 'updated' };
}

export async function pauseSchedule(client: Client, scheduleId: string, reason?: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).pause(reason ?? 'paused with recogdrive schedule pause');
}

export async function unpauseSchedule(client: Client, scheduleId: string, reason?: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).unpause(reason ?? 'unpaused with recogdrive schedule unpause');
}

export async function deleteSchedule(client: Client, scheduleId: string): Promise<void> {
  await client.schedule.getHandle(scheduleId).delete();
}

export type TriggerResult =
  | { scheduleId: string; outcome: 'started'; workflowId: string }
  /** A run of the schedule was still going: overlap SKIP, so this trigger started nothing. */
  | { scheduleId: string; outcome: 'skipped'; running: string[] }
  /** Temporal took the trigger but had not acted on it yet when we stopped waiting. */
  | { scheduleId: string; outcome: 'pending' };

/**
 * Takes the schedule's action now, under the schedule's overlap policy (SKIP; the SDK's
 * default for a trigger would be ALLOW_ALL), and waits up to `waitMs` to say what happened.
 */
export async function triggerSchedule(client: Client, scheduleId: string, waitMs = 10_000): Promise<TriggerResult> {
  const handle = client.schedule.getHandle(scheduleId);
  const before = await handle.describe();
  const running = before.info.runningActions.map((a) => a.workflow.workflowId);
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const now = await handle.describe();
    if (now.info.numActionsTaken > before.info.numActionsTaken) {
      const known = new Set(before.info.recentActions.map((a) => a.action.workflow.workflowId));
      const started = now.info.recentActions.map((a) => a.action.workflow.workflowId).filter((id) => !known.has(id));
      return { scheduleId, outcome: 'started', workflowId: started.at(-1) ?? now.info.recentActions.at(-1)!.action.workflow.workflowId };
    }
    if (now.info.numActionsSkippedOverlap > before.info.numActionsSkippedOverlap) {
      const stillRunning = now.info.runningActions.map((a) => a.workflow.workflowId);
      return { scheduleId, outcome: 'skipped', running: stillRunning.length > 0 ? stillRunning : running };
    }
    if (Date.now() >= deadline) return { scheduleId, outcome: 'pending' };
    await sleep(200);
  }
}

/** What `schedule describe` shows: plain data (JSON-friendly). */
export interface ScheduleView {
  scheduleId: string;
  workflowType: string;
  taskQueue: string;
  /** The pipeline input's experiment. */
  experiment?: string;
  /** One line per calendar (cron-like: [second] minute hour day-of-month month day-of-week [year]) or interval. */
  spec: string[];
  timeZone: string;
  overlap: string;
  catchupWindow: string;
  catchupWindowMs: number;
  paused: boolean;
  note?: string;
  createdAt: string;
  updatedAt?: string;
  actionsTaken: number;
  skippedOverlap: number;
  missedCatchupWindow: number;
  /** Workflow ids of runs of this schedule still going. */
  running: string[];
  /** Oldest first, as Temporal keeps them (the last few). */
  recentActions: Array<{ scheduledAt: string; takenAt: string; workflowId: string }>;
  nextActionTimes: string[];
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleView> {
  return scheduleView(await client.schedule.getHandle(scheduleId).describe());
}

export function scheduleView(d: ScheduleDescription): ScheduleView {
  const input = d.action.args?.[0];
  const experiment = typeof input === 'object' && input !== null ? (input as { experiment?: unknown }).experiment : undefined;
  return {
    scheduleId: d.scheduleId,
    workflowType: d.action.workflowType,
    taskQueue: d.action.taskQueue,
    ...(typeof experiment === 'string' ? { experiment } : {}),
    spec: [...(d.spec.calendars ?? []).map(calendarText), ...(d.spec.intervals ?? []).map(intervalText)],
    timeZone: d.spec.timezone ?? 'UTC',
    overlap: d.policies.overlap ?? 'SKIP', // unspecified: the server's default, SKIP
    catchupWindow: durationText(d.policies.catchupWindow),
    catchupWindowMs: d.policies.catchupWindow,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    createdAt: d.info.createdAt.toISOString(),
    ...(d.info.lastUpdatedAt === undefined ? {} : { updatedAt: d.info.lastUpdatedAt.toISOString() }),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    recentActions: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
    nextActionTimes: d.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()),
  };
}

const abbreviation = (name: string) => name.slice(0, 3);

function rangesText<U extends string | number>(ranges: Range<U>[], all: readonly U[] | undefined, name: (u: U) => string = String): string {
  if (ranges.length === 0) return '*';
  const [only] = ranges;
  if (all !== undefined && ranges.length === 1 && only!.start === all[0] && only!.end === all.at(-1) && only!.step <= 1) return '*';
  const order = (u: U): number => (typeof u === 'number' ? u : (all?.indexOf(u) ?? 0));
  return ranges
    .map((r) => {
      // Temporal reads an end before the start as the start.
      const end = order(r.end) > order(r.start) ? r.end : r.start;
      const span = end === r.start ? name(r.start) : `${name(r.start)}-${name(end)}`;
      return r.step > 1 ? `${span}/${r.step}` : span;
    })
    .join(',');
}

const numbers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A calendar as a cron-like line, e.g. "30 2 * * *" or "15 3 * * MON,FRI # comment". */
export function calendarText(c: CalendarSpecDescription): string {
  const second = rangesText(c.second, undefined);
  const fields = [
    rangesText(c.minute, numbers(0, 59)),
    rangesText(c.hour, numbers(0, 23)),
    rangesText(c.dayOfMonth, numbers(1, 31)),
    rangesText(c.month, MONTHS, abbreviation),
    rangesText(c.dayOfWeek, DAYS_OF_WEEK, abbreviation),
  ];
  const year = rangesText(c.year, undefined);
  const line = [...(second === '0' ? [] : [second]), ...fields, ...(year === '*' && second === '0' ? [] : [year])].join(' ');
  return c.comment ? `${line} # ${c.comment}` : line;
}

function intervalText(i: IntervalSpecDescription): string {
  return `every ${durationText(i.every)}${i.offset > 0 ? ` offset ${durationText(i.offset)}` : ''}`;
}

/** Milliseconds in the largest unit that divides them: 21600000 → "6h". */
export function durationText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function formatSchedule(view: ScheduleView): string {
  const lines = [
    `schedule ${view.scheduleId}: ${view.paused ? 'paused' : 'active'}${view.note ? ` (${view.note})` : ''}`,
    `  when:      ${view.spec.join('; ')} (${view.timeZone})`,
    `  starts:    ${view.workflowType} on task queue ${view.taskQueue}${view.experiment === undefined ? '' : `, experiment ${view.experiment}`}`,
    `  overlap:   ${view.overlap}; catch-up window ${view.catchupWindow}`,
    `  actions:   ${view.actionsTaken} taken, ${view.skippedOverlap} skipped (overlap), ${view.missedCatchupWindow} missed (catch-up window)`,
  ];
  if (view.running.length > 0) lines.push(`  running:   ${view.running.join(', ')}`);
  for (const action of view.recentActions) lines.push(`  recent:    ${action.takenAt} ${action.workflowId}`);
  if (!view.paused) for (const next of view.nextActionTimes) lines.push(`  next:      ${next}`);
  return lines.join('\n');
}
