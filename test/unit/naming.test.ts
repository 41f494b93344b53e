import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeName, containerName, defaultRunId, quoted, RUN_ID_MAX_LENGTH, RunId, runIdProblem, runSlug, stageArtifactUri, stageWorkflowId } from '../../pipeline/naming.ts';

test('names are derived from run, stage and attempt, and stable across calls', () => {
  assert.equal(computeName('exp-20261125-040000', 'featureCache', 2), 'rd-exp-20261125-040000-feature-cache-2');
  assert.equal(computeName('exp-20261125-040000', 'featureCache', 2), computeName('exp-20261125-040000', 'featureCache', 2));
  assert.equal(containerName('exp-1', 'stage2'), 'rd-exp-1-stage2');
  assert.equal(stageWorkflowId('exp-1', 'stage3'), 'exp-1/stage3');
});

test('run ids that are not DNS-safe get a cleaned name plus a hash, so distinct ids stay distinct', () => {
  const a = runSlug('My Run/1');
  const b = runSlug('my-run-1');
  assert.match(a, /^my-run-1-[0-9a-f]{8}$/);
  assert.equal(b, 'my-run-1');
  assert.notEqual(a, b);
});

test('VM names fit GCE limits (63 chars, [a-z0-9-]) even for long run ids', () => {
  const name = computeName('a'.repeat(200) + ' / weird id', 'metricCache', 12);
  assert.ok(name.length <= 63, name);
  assert.match(name, /^[a-z]([a-z0-9-]*[a-z0-9])?$/);
});

test('artifact URIs live under <root>/runs/<run>/<stage>', () => {
  assert.equal(stageArtifactUri('gs://b/p', 'exp-1', 'metricCache'), 'gs://b/p/runs/exp-1/metric-cache');
});

test('default run ids are <experiment>-<UTC timestamp>', () => {
  assert.equal(defaultRunId('exp', new Date('2026-11-25T04:05:06Z')), 'exp-20261125-040506');
});

test('every id the orchestrator makes is a run id: default, scheduled (with colons), rerun, idempotency-key ids, up to 200 characters', () => {
  for (const id of [
    defaultRunId('exp', new Date()),
    'recogdrive-nightly-2026-01-01T02:30:00Z',
    'exp-42-rerun-0123456789abcdef',
    'key-0123456789abcdef0123456789abcdef',
    'A.b_c-1',
    'r'.repeat(RUN_ID_MAX_LENGTH),
  ]) {
    assert.equal(runIdProblem(id), undefined, id);
    assert.ok(RunId.safeParse(id).success, id);
  }
});

test('a run id refuses paths, shell text, stage workflow ids, over-long and unicode ids, each with a message naming the rule', () => {
  const refused: Array<[string, RegExp]> = [
    ['', /cannot be empty/],
    ['../x', /"\.\.\/x" is not a run id: use letters, digits and \. _ - : only, starting with a letter or digit/],
    ['.hidden', /starting with a letter or digit/],
    ['-rf', /starting with a letter or digit/],
    ['x;rm -rf /', /is not a run id/],
    ['$(id)', /is not a run id/],
    ['a b', /is not a run id/],
    ['exp-1/stage1', /"exp-1\/stage1" is the workflow of stage stage1 of run exp-1, not a run id: use exp-1/],
    ['exp-1/featureCache', /stage featureCache of run exp-1/],
    ['exp-1/other', /is not a run id: use letters/],
    ['r'.repeat(RUN_ID_MAX_LENGTH + 1), /it has 201 characters; a run id has at most 200/],
    ['caf\u00e9', /"caf\\u00e9" is not a run id/],
    ['exp\u202egnp', /\\u202e/],
  ];
  for (const [id, message] of refused) {
    const problem = runIdProblem(id);
    assert.match(problem ?? 'accepted', message, JSON.stringify(id));
    const parsed = RunId.safeParse(id);
    assert.ok(!parsed.success && parsed.error.issues[0]!.message === problem, JSON.stringify(id));
  }
});

test('text from a request is quoted for messages with control and non-ASCII characters escaped and long text shortened', () => {
  assert.equal(quoted('abc'), '"abc"');
  assert.equal(quoted('\u001b[2J'), '"\\u001b[2J"');
  assert.equal(quoted('\u202e'), '"\\u202e"');
  assert.equal(quoted('x'.repeat(100)), `"${'x'.repeat(64)}…"`);
  assert.doesNotMatch(quoted('\u0000\u0007\u009b\ud83d\ude00'), /[^\x20-\x7e…]/);
});
