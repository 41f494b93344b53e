import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeName, containerName, defaultRunId, runSlug, stageArtifactUri, stageWorkflowId } from '../../pipeline/naming.ts';

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
