/**
 * How often a schedule fires, checked before Temporal sees it: a spec that can never fire
 * (February 31, April 31) is refused, and so is one that fires more than once an hour (every
 * second, every minute, `@every 5m`): each firing starts a pipeline run. What this cannot read
 * (syntax Temporal's own parser may refuse, out-of-range values) is left to Temporal, which
 * refuses it with its own message.
 */

/** A schedule fires at most once per this interval. */
export const MIN_SCHEDULE_INTERVAL_MS = 3_600_000;

/** Days a month can have (February 29 exists in leap years), January first. */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

type CalendarItem<U> = U | { start: U; end?: U | undefined; step?: number | undefined };
export type CalendarField<U> = '*' | CalendarItem<U> | Array<CalendarItem<U>>;

/** The values a calendar field matches, `all` when it is `*` or omitted with "any" meaning. */
function expandCalendar<U>(field: CalendarField<U> | undefined, all: readonly number[], toNumber: (u: U) => number, omitted: 'any' | 'zero'): Set<number> {
  if (field === undefined) return new Set(omitted === 'any' ? all : [0]);
  if (field === '*') return new Set(all);
  const items = Array.isArray(field) ? field : [field];
  const values = new Set<number>();
  for (const item of items) {
    if (typeof item === 'object' && item !== null) {
      const range = item as { start: U; end?: U; step?: number };
      const start = toNumber(range.start);
      const end = range.end === undefined ? start : toNumber(range.end);
      for (let v = start; v <= end; v += range.step ?? 1) values.add(v);
    } else {
      values.add(toNumber(item));
    }
  }
  return values;
}

const span = (min: number, max: number): number[] => Array.from({ length: max - min + 1 }, (_, i) => min + i);

/** Whether some month has one of the days: false for {February, 30-31} or {April, 31}. */
function someDayExists(days: ReadonlySet<number>, months: ReadonlySet<number>): boolean {
  return [...months].some((month) => [...days].some((day) => day >= 1 && day <= (MONTH_DAYS[month - 1] ?? 0)));
}

function frequencyProblems(seconds: ReadonlySet<number>, minutes: ReadonlySet<number>, hours: ReadonlySet<number>, days: ReadonlySet<number>, months: ReadonlySet<number>): string[] {
  const problems: string[] = [];
  if (seconds.size === 0 || minutes.size === 0 || hours.size === 0 || days.size === 0 || months.size === 0 || !someDayExists(days, months)) {
    problems.push('never fires: no such date or time (e.g. day 30 or 31 of February, day 31 of a 30-day month, or an empty range)');
  } else if (seconds.size * minutes.size > 1) {
    problems.push(`fires ${seconds.size * minutes.size} times an hour: a schedule starts at most one run an hour (give one minute and at most one second)`);
  }
  return problems;
}

export interface CalendarFields {
  second?: CalendarField<number> | undefined;
  minute: CalendarField<number>;
  hour: CalendarField<number>;
  dayOfMonth?: CalendarField<number> | undefined;
  month?: CalendarField<string> | undefined;
}

/** Problems of a calendar spec (omitted second: 0; omitted day of month and month: any). */
export function calendarFrequencyProblems(calendar: CalendarFields, monthNames: readonly string[]): string[] {
  return frequencyProblems(
    expandCalendar(calendar.second, span(0, 59), Number, 'zero'),
    expandCalendar(calendar.minute, span(0, 59), Number, 'zero'),
    expandCalendar(calendar.hour, span(0, 23), Number, 'any'),
    expandCalendar(calendar.dayOfMonth, span(1, 31), Number, 'any'),
    expandCalendar(calendar.month, span(1, 12), (name) => monthNames.indexOf(name) + 1, 'any'),
  );
}

const CRON_MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];

/** One cron field's values; undefined when it is not plain cron syntax or out of range (Temporal decides). */
function expandCron(text: string, min: number, max: number, names: readonly string[] = []): Set<number> | undefined {
  const value = (token: string): number | undefined => {
    const named = names.indexOf(token.toUpperCase());
    if (named >= 0) return named + min;
    if (!/^\d+$/.test(token)) return undefined;
    const n = Number(token);
    return n >= min && n <= max ? n : undefined;
  };
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\*|[A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?(?:\/(\d+))?$/.exec(part);
    if (match === null) return undefined;
    const [, from, to, stepText] = match;
    const start = from === '*' ? min : value(from!);
    const end = from === '*' ? max : to === undefined ? (stepText === undefined ? start : max) : value(to);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (start === undefined || end === undefined || step < 1) return undefined;
    for (let v = start; v <= end; v += step) values.add(v);
  }
  return values;
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Problems of a cron line as Temporal reads it (5, 6 or 7 fields, @shorthands, @every). */
export function cronFrequencyProblems(cron: string): string[] {
  const line = cron.split('#')[0]!.trim();
  const every = /^@every\s+(\d+)([smhd])(?:\/\S+)?$/i.exec(line);
  if (every !== null) {
    const ms = Number(every[1]) * UNIT_MS[every[2]!.toLowerCase()]!;
    return ms < MIN_SCHEDULE_INTERVAL_MS ? ['@every: at least 1h between runs (a schedule starts at most one run an hour)'] : [];
  }
  if (line.startsWith('@')) return [];
  const fields = line.split(/\s+/);
  const [second, rest] = fields.length === 7 ? [fields[0]!, fields.slice(1)] : ['0', fields];
  const [minute, hour, day, month] = rest;
  if (minute === undefined || hour === undefined || day === undefined || month === undefined) return [];
  const sets = [expandCron(second, 0, 59), expandCron(minute, 0, 59), expandCron(hour, 0, 23), expandCron(day, 1, 31), expandCron(month, 1, 12, CRON_MONTHS)];
  if (sets.some((s) => s === undefined)) return [];
  const [s, m, h, d, mo] = sets as Array<Set<number>>;
  return frequencyProblems(s!, m!, h!, d!, mo!);
}
