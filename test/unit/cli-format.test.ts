/** The CLI's human-readable output cannot be used to drive the terminal: text from runs has its control characters escaped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunStatus } from '../../pipeline/status.ts';
import { formatStatus, printable } from '../../workers/format.ts';

test('control characters other than newline and tab are shown escaped', () => {
  assert.equal(printable('a\u001b[2Jb'), 'a\\u001b[2Jb');
  assert.equal(printable('line\r\nnext\ttab\u0007\u009b'), 'line\\u000d\nnext\ttab\\u0007\\u009b');
  assert.equal(printable('plain text, ünïcode'), 'plain text, ünïcode');
});

test('a stage error holding a terminal escape (a log line of the trainer) is printed escaped by status', () => {
  const status: RunStatus = {
    runId: 'exp-1',
    experiment: 'exp',
    state: 'failed',
    startedAt: '2026-01-01T00:00:00Z',
    stages: [{ stage: 'stage2', decision: 'RUN', state: 'failed', attempt: 1, error: 'exit 1: \u001b]0;pwned\u0007\u001b[2J' }],
  };
  const text = formatStatus(status);
  assert.ok([...text].every((c) => c === '\n' || (c >= ' ' && c !== '\u007f' && !(c >= '\u0080' && c <= '\u009f'))), 'no control character but newlines');
  assert.match(text, /error: exit 1: \\u001b\]0;pwned\\u0007\\u001b\[2J/);
});
