/**
 * Schedule files that would never start a run (February 31) or start one every second are
 * refused before Temporal sees them, naming the field and the bound; the nightly kinds pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidScheduleConfig, parseScheduleConfig } from '../../infra/schedules/schedule-config.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';

const input = { experiment: 'exp-1', artifactRoot: 'file:///tmp/artifacts', paths: { hostRepoDir: '/data/recogdrive' }, upstreamFixes: [...UPSTREAM_FIXES] };
const file = (when: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ scheduleId: 'nightly', timeZone: 'UTC', catchupWindow: '6h', input, ...when, ...extra });

function issuesOf(raw: unknown): readonly string[] {
  try {
    parseScheduleConfig(raw);
  } catch (error) {
    assert.ok(error instanceof InvalidScheduleConfig, String(error));
    return error.issues;
  }
  assert.fail('config was accepted');
}

const REFUSED: Array<{ name: string; when: Record<string, unknown>; issue: RegExp }> = [
  { name: 'calendar on February 31', when: { calendar: { hour: 2, minute: 30, dayOfMonth: 31, month: 'FEB' } }, issue: /^calendar: never fires/ },
  { name: 'calendar on February 30', when: { calendar: { hour: 2, minute: 30, dayOfMonth: 30, month: 'February' } }, issue: /^calendar: never fires/ },
  { name: 'calendar on April, June, September, November 31', when: { calendar: { hour: 2, minute: 0, dayOfMonth: 31, month: ['APR', 'JUN', 'SEP', 'NOV'] } }, issue: /^calendar: never fires/ },
  { name: 'calendar with an empty hour range', when: { calendar: { hour: { start: 5, end: 3 }, minute: 0 } }, issue: /^calendar: never fires/ },
  { name: 'calendar every second', when: { calendar: { second: '*', hour: '*', minute: '*' } }, issue: /^calendar: fires 3600 times an hour: a schedule starts at most one run an hour/ },
  { name: 'calendar every minute', when: { calendar: { hour: '*', minute: '*' } }, issue: /^calendar: fires 60 times an hour/ },
  { name: 'calendar every 15 minutes', when: { calendar: { hour: 2, minute: { start: 0, end: 59, step: 15 } } }, issue: /^calendar: fires 4 times an hour/ },
  { name: 'cron every minute', when: { cron: '* * * * *' }, issue: /^cron: fires 60 times an hour/ },
  { name: 'cron every 5 minutes', when: { cron: '*/5 2 * * *' }, issue: /^cron: fires 12 times an hour/ },
  { name: 'cron every second (7 fields)', when: { cron: '* 0 2 * * * *' }, issue: /^cron: fires 60 times an hour/ },
  { name: 'cron on February 31', when: { cron: '30 2 31 2 *' }, issue: /^cron: never fires/ },
  { name: 'cron on November 31 by name', when: { cron: '0 3 31 NOV *' }, issue: /^cron: never fires/ },
  { name: '@every 1s', when: { cron: '@every 1s' }, issue: /^cron: @every: at least 1h between runs/ },
  { name: '@every 59m', when: { cron: '@every 59m' }, issue: /^cron: @every: at least 1h/ },
  { name: 'a catch-up window of a year', when: { cron: '30 2 * * *', catchupWindow: '365 days' }, issue: /^catchupWindow: at most 30 days/ },
];

for (const { name, when, issue } of REFUSED) {
  test(`a schedule is refused naming why: ${name}`, () => {
    const issues = issuesOf(file(when));
    assert.ok(issues.some((i) => issue.test(i)), JSON.stringify(issues));
  });
}

const ACCEPTED: Array<{ name: string; when: Record<string, unknown> }> = [
  { name: 'cron nightly', when: { cron: '30 2 * * *' } },
  { name: 'cron hourly', when: { cron: '0 * * * *' } },
  { name: 'cron on February 29 (leap years)', when: { cron: '0 3 29 2 *' } },
  { name: 'cron on the 31st of every month that has one', when: { cron: '0 3 31 * *' } },
  { name: '@daily', when: { cron: '@daily' } },
  { name: '@every 6h', when: { cron: '@every 6h' } },
  { name: 'calendar Monday and Friday at 03:15', when: { calendar: { hour: 3, minute: 15, dayOfWeek: ['MONDAY', 'fri'] } } },
  { name: 'calendar every hour on the hour', when: { calendar: { hour: '*', minute: 0 } } },
  { name: 'calendar on days 30-31 of January to March', when: { calendar: { hour: 1, minute: 0, dayOfMonth: { start: 30, end: 31 }, month: { start: 'JAN', end: 'MAR' } } } },
];

for (const { name, when } of ACCEPTED) {
  test(`a schedule that fires at most hourly is accepted: ${name}`, () => {
    assert.doesNotThrow(() => parseScheduleConfig(file(when)));
  });
}

test("a cron line the file's checks cannot read is left to Temporal's parser, which gives its own message", () => {
  assert.doesNotThrow(() => parseScheduleConfig(file({ cron: '75 2 * * *' })));
});

test("a schedule's pipeline input gets the input's bounds too", () => {
  const issues = issuesOf(file({ cron: '30 2 * * *' }, { input: { ...input, stage2: { epochs: 1e9 } } }));
  assert.ok(issues.includes('input.stage2.epochs: at most 1,000 epochs'), JSON.stringify(issues));
});
