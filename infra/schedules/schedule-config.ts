/**
 * A schedule config file (JSON): when the pipeline starts on its own (the nightly retraining)
 * and with which pipeline input. `recogdrive schedule create --file <json>` creates the
 * Temporal Schedule from it, or updates the existing one in place (workers/schedule.ts).
 * Everything is checked here first: a bad file creates and updates nothing.
 */
import { z } from 'zod';
import { parseDuration } from '../../pipeline/duration.ts';
import { InvalidPipelineInput, parsePipelineInput, type PipelineInputRaw } from '../../pipeline/input.ts';
import { calendarFrequencyProblems, cronFrequencyProblems } from './schedule-frequency.ts';

export const DAYS_OF_WEEK = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;
export const MONTHS = ['JANUARY', 'FEBRUARY', 'MARCH', 'APRIL', 'MAY', 'JUNE', 'JULY', 'AUGUST', 'SEPTEMBER', 'OCTOBER', 'NOVEMBER', 'DECEMBER'] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];
export type Month = (typeof MONTHS)[number];

/** Temporal raises a shorter catch-up window to 10 seconds without saying so. */
export const MIN_CATCHUP_WINDOW_MS = 10_000;
export const MAX_CATCHUP_WINDOW_MS = 30 * 86_400_000;

export const ScheduleId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,48}[a-z0-9]$/, 'use 2-50 lowercase letters, digits or dashes, starting with a letter');

/** A name from one of `names` (any case; 3-letter abbreviations too), as Temporal spells it. */
const named = <const N extends readonly string[]>(names: N, what: string) =>
  z.string().transform((value, ctx) => {
    const upper = value.toUpperCase();
    const found = names.find((n) => n === upper || n.slice(0, 3) === upper);
    if (found === undefined) {
      ctx.addIssue({ code: 'custom', message: `not a ${what} (${names.map((n) => n.slice(0, 3)).join(', ')} or the full name)` });
      return z.NEVER;
    }
    return found as N[number];
  });

/** One calendar field: `"*"`, a value, a range `{start, end?, step?}`, or a list of values and ranges. */
const field = <T extends z.ZodType>(unit: T) => {
  const range = z.strictObject({ start: unit, end: unit.optional(), step: z.number().int().positive().optional() });
  const item = z.union([unit, range]);
  return z.union([z.literal('*'), item, z.array(item).min(1)]);
};
const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** Like a cron line, but readable: `{"hour": 2, "minute": 30}` is 02:30 every day; omitted fields below the hour are 0, others any. */
const Calendar = z.strictObject({
  second: field(int(0, 59)).optional(),
  minute: field(int(0, 59)),
  hour: field(int(0, 23)),
  dayOfMonth: field(int(1, 31)).optional(),
  month: field(named(MONTHS, 'month')).optional(),
  dayOfWeek: field(named(DAYS_OF_WEEK, 'day of the week')).optional(),
  comment: z.string().max(200).optional(),
});
export type CalendarConfig = z.output<typeof Calendar>;

/** Temporal parses the cron line itself (and refuses a bad one); here only what would silently mean something else. */
const Cron = z
  .string()
  .trim()
  .min(1)
  .refine((c) => !/^(CRON_)?TZ=/i.test(c), 'give the time zone in timeZone, not in the cron line')
  .refine((c) => c.startsWith('@') || [5, 6, 7].includes(c.split('#')[0]!.trim().split(/\s+/).length), 'a cron line has 5 fields: minute hour day-of-month month day-of-week');

/**
 * An IANA time zone name as the Temporal server loads it: "Europe/Berlin", "UTC". Offsets
 * ("+01:00") are not zone names, and the server's lookup is case-sensitive.
 */
const TimeZone = z.string().superRefine((name, ctx) => {
  let resolved: string;
  try {
    if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name)) throw new RangeError(name);
    resolved = new Intl.DateTimeFormat('en', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)} is not an IANA time zone name (e.g. "Europe/Berlin", "UTC")` });
    return;
  }
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) {
    ctx.addIssue({ code: 'custom', message: `time zone names are case-sensitive: write "${resolved}"` });
  }
});

const CatchupWindow = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not a duration (e.g. "6h", "90 minutes", or milliseconds)' });
    return z.NEVER;
  }
  if (ms < MIN_CATCHUP_WINDOW_MS) {
    ctx.addIssue({ code: 'custom', message: 'at least 10s (Temporal would raise it to 10s)' });
    return z.NEVER;
  }
  if (ms > MAX_CATCHUP_WINDOW_MS) {
    ctx.addIssue({ code: 'custom', message: 'at most 30 days (a start missed by longer is not worth taking)' });
    return z.NEVER;
  }
  return ms;
});

/**
 * Only SKIP: a night whose previous run is still going (Stage 2 alone may take days) starts
 * nothing, and the next night starts a run as usual. The schedule's input is fixed, so a
 * buffered run (BUFFER_ONE/ALL) would be the next night's run started at an arbitrary hour;
 * ALLOW_ALL would put two runs on the same TPU quota; CANCEL_OTHER would cancel a multi-day
 * training every night; TERMINATE_OTHER would also skip releasing the compute.
 */
const Overlap = z.literal('SKIP', { error: 'only "SKIP" is allowed: a run still going when the next one is due is not interrupted, and that night starts nothing' });

const ScheduleFile = z
  .strictObject({
    scheduleId: ScheduleId,
    cron: Cron.optional(),
    calendar: Calendar.optional(),
    timeZone: TimeZone,
    /**
     * Required on purpose: how late a missed start (server or worker down at 02:30) may still be
     * taken. Temporal's own default is documented both as one minute and as one year.
     */
    catchupWindow: CatchupWindow,
    overlap: Overlap.default('SKIP'),
    paused: z.boolean().default(false),
    note: z.string().max(1000).optional(),
    /** The pipeline input, exactly as `recogdrive start --input` takes it; checked with parsePipelineInput. */
    input: z.unknown(),
  })
  .superRefine((config, ctx) => {
    // Each firing starts a pipeline run: never-firing specs and more than one run an hour are refused.
    if (config.cron !== undefined) for (const message of cronFrequencyProblems(config.cron)) ctx.addIssue({ code: 'custom', path: ['cron'], message });
    if (config.calendar !== undefined) {
      for (const message of calendarFrequencyProblems(config.calendar, MONTHS)) ctx.addIssue({ code: 'custom', path: ['calendar'], message });
    }
    const ways = [config.cron, config.calendar].filter((w) => w !== undefined).length;
    if (ways !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ways === 0 ? [] : ['calendar'],
        message: ways === 0 ? 'say when to run: give "cron" or "calendar"' : 'give either "cron" or "calendar", not both',
      });
    }
  });

/** A schedule config file as written (catchupWindow as text or milliseconds). A parsed config is one too. */
export type ScheduleConfigFile = z.input<typeof ScheduleFile>;

export interface ScheduleConfig extends Omit<z.output<typeof ScheduleFile>, 'input'> {
  /** Milliseconds. */
  catchupWindow: number;
  /** The pipeline input as written, checked: each run applies the defaults of its own code version. */
  input: PipelineInputRaw;
}

export class InvalidScheduleConfig extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid schedule config:\n  - ${issues.join('\n  - ')}`);
    this.name = 'InvalidScheduleConfig';
    this.issues = issues;
  }
}

/**
 * Parses a schedule config file; throws InvalidScheduleConfig listing every failing field by
 * path, the pipeline input's as `input.<field>`. Parsing a parsed config gives it back.
 */
export function parseScheduleConfig(raw: unknown): ScheduleConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidScheduleConfig(['(config): must be one JSON object']);
  const issues: string[] = [];
  const result = ScheduleFile.safeParse(raw, { error: (issue) => (issue.input === undefined ? 'required' : undefined) });
  for (const issue of result.success ? [] : result.error.issues) {
    const path = issue.path.map(String).join('.');
    if (path === 'input') continue; // checked below, with the pipeline input's own messages
    issues.push(`${path === '' ? '(config)' : path}: ${issue.message}${issue.message === 'required' ? (REQUIRED_HINTS[path] ?? '') : ''}`);
  }
  const input = (raw as Record<string, unknown>).input;
  let valid = false;
  if (input === undefined) {
    issues.push('input: required (the pipeline input, as for recogdrive start --input)');
  } else {
    try {
      parsePipelineInput(input);
      valid = true;
    } catch (error) {
      if (!(error instanceof InvalidPipelineInput)) throw error;
      for (const issue of error.issues) issues.push(issue.startsWith('(input): ') ? `input: ${issue.slice('(input): '.length)}` : `input.${issue}`);
    }
  }
  if (!result.success || !valid || issues.length > 0) throw new InvalidScheduleConfig(issues);
  return { ...result.data, input: input as PipelineInputRaw };
}

const REQUIRED_HINTS: Readonly<Record<string, string>> = {
  scheduleId: ' (e.g. "recogdrive-nightly")',
  timeZone: ' (an IANA name such as "Europe/Berlin" or "UTC")',
  catchupWindow: ' (how late a missed start may still be taken, e.g. "6h"; explicit on purpose)',
};
