import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyExit, FailureType, RETRYABLE_STAGE_FAILURES, type ExitOutcome } from '../../pipeline/failures.ts';

const base: ExitOutcome = { exitCode: 0, oomKilled: false, hung: false, logTail: [], seenPatterns: [], startedAt: 0, exitedAt: 1 };
const verdict = (o: Partial<ExitOutcome>) => classifyExit('stage2', { ...base, ...o });

test('exit 0 is success (outputs are verified next)', () => {
  assert.deepEqual(verdict({}), { ok: true });
});

test('exit 137 or an OOM kill is out-of-memory, not retried', () => {
  const v = verdict({ exitCode: 137 });
  assert.equal(v.ok === false && v.type, FailureType.StageOutOfMemory);
  assert.ok(!RETRYABLE_STAGE_FAILURES.includes(FailureType.StageOutOfMemory));
});

test('a busy TPU is infrastructure and retried on fresh compute', () => {
  const v = verdict({ exitCode: 1, logTail: ['ABORTED: The TPU is already in use by process with pid 42.'] });
  assert.equal(v.ok === false && v.type, FailureType.StageInfrastructureError);
  assert.ok(RETRYABLE_STAGE_FAILURES.includes(FailureType.StageInfrastructureError));
});

test('another non-zero exit is a code error carrying the last log lines', () => {
  const v = verdict({ exitCode: 1, logTail: ['Traceback (most recent call last):', 'ValueError: boom'] });
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.type, FailureType.StageCodeError);
    assert.match(v.message, /exited with code 1/);
    assert.match(v.message, /ValueError: boom/);
  }
});

test('a hang and a vanished process are distinct failures', () => {
  const hang = verdict({ hung: true, exitCode: null });
  const vanished = verdict({ exitCode: null });
  assert.equal(hang.ok === false && hang.type, FailureType.StageHang);
  assert.equal(vanished.ok === false && vanished.type, FailureType.StageInfrastructureError);
});
