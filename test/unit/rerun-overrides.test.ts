/**
 * A rerun's overrides are a JSON Merge Patch of the source run's input. Prototype keys anywhere
 * in the patch are refused by path (they used to drop the rest of the patch silently), and the
 * merge itself only ever sets own keys, whatever the source input holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMergePatch, prototypeKeyPaths } from '../../pipeline/safe-keys.ts';
import { rerunInput, RerunRequestError } from '../../workers/rerun-input.ts';

const source = { experiment: 'exp-1', stage2: { epochs: 2, learningRate: 1e-4, env: { XLA_FLAGS: '--a' } }, stages: ['stage2'] };

const HOSTILE_PATCHES: Array<{ name: string; json: string; paths: string[] }> = [
  { name: 'constructor at the top', json: '{"constructor": {"x": 1}, "stage2": {"epochs": 5}}', paths: ['overrides.constructor'] },
  { name: 'prototype inside a stage', json: '{"stage2": {"prototype": {"epochs": 9}, "learningRate": 5e-5}}', paths: ['overrides.stage2.prototype'] },
  { name: '__proto__ inside a stage', json: '{"stage2": {"__proto__": {"epochs": 9}}}', paths: ['overrides.stage2.__proto__'] },
  { name: 'constructor.prototype deep in env', json: '{"stage2": {"env": {"constructor": {"prototype": {"polluted": true}}}}}', paths: ['overrides.stage2.env.constructor', 'overrides.stage2.env.constructor.prototype'] },
  { name: 'a prototype key inside an array', json: '{"stages": [{"__proto__": 1}]}', paths: ['overrides.stages.0.__proto__'] },
];

for (const { name, json, paths } of HOSTILE_PATCHES) {
  test(`a rerun patch with a prototype key is a bad request naming it: ${name}`, () => {
    assert.throws(
      () => rerunInput('src', source, { overrides: JSON.parse(json) as Record<string, unknown> }),
      (error: unknown) => {
        assert.ok(error instanceof RerunRequestError);
        assert.equal(error.kind, 'bad-request');
        assert.deepEqual(error.issues?.map((issue) => issue.split(':')[0]), paths);
        return true;
      },
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched');
  });
}

test('a patch merges in full: objects merge, values replace, null removes', () => {
  const merged = rerunInput('src', source, { overrides: { stage2: { epochs: 5, env: { XLA_FLAGS: null, TPU_STDERR_LOG_LEVEL: '0' } }, stages: ['stage2', 'eval'] }, fromStage: 'stage2' });
  assert.deepEqual(merged, {
    experiment: 'exp-1',
    stage2: { epochs: 5, learningRate: 1e-4, env: { TPU_STDERR_LOG_LEVEL: '0' } },
    stages: ['stage2', 'eval'],
    reuse: { policy: 'verified', rerunOf: 'src', fromStage: 'stage2' },
  });
  assert.deepEqual(source.stage2, { epochs: 2, learningRate: 1e-4, env: { XLA_FLAGS: '--a' } }, 'the source input is not changed');
});

test('the merge never follows a prototype key, even one in the source input: it stays an own key, for validation to refuse', () => {
  const hostileSource = JSON.parse('{"experiment": "exp-1", "stage2": {"__proto__": {"epochs": 9}}}') as unknown;
  const merged = applyMergePatch(hostileSource, { stage2: { learningRate: 5e-5 } }) as { stage2: Record<string, unknown> };
  assert.equal(Object.getPrototypeOf(merged.stage2), Object.prototype);
  assert.deepEqual(Object.keys(merged.stage2), ['__proto__', 'learningRate']);
  assert.equal(merged.stage2.epochs, undefined);
  assert.deepEqual(prototypeKeyPaths(merged), ['stage2.__proto__']);
});

test('overrides.reuse stays refused, and a key merely named like an inherited member (toString) merges normally', () => {
  assert.throws(() => rerunInput('src', source, { overrides: { reuse: { policy: 'never' } } }), /overrides\.reuse cannot be set/);
  assert.deepEqual((applyMergePatch({ a: 1 }, { toString: 'x' }) as Record<string, unknown>).toString, 'x');
});
