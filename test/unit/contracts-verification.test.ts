/** Each contract says how its completion is verified, with the counts the research documents. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTRACTS } from '../../pipeline/contracts/index.ts';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';

const config = (extra: Record<string, unknown> = {}) =>
  parsePipelineInput({ experiment: 'exp', artifactRoot: 'gs://bucket-x', paths: { hostRepoDir: '/r' }, upstreamFixes: [...UPSTREAM_FIXES], ...extra });

test('the navtrain feature cache and metric cache must both hold all 103,288 tokens (validation logs included, which Lightning validates on)', () => {
  assert.deepEqual(CONTRACTS.featureCache.verification(config()).outputs, {
    kind: 'token-cache',
    files: ['internvl_feature.gz', 'trajectory_target.gz'],
    expectedTokens: 103_288,
  });
  assert.deepEqual(CONTRACTS.metricCache.verification(config()).outputs, { kind: 'metric-cache', expectedTokens: 103_288 });
  assert.deepEqual(CONTRACTS.eval.verification(config()).outputs, { kind: 'eval-csv', expectedTokens: 12_146, maxFailedTokens: 0 });
});

test('a user-given count (a subset) replaces the split default', () => {
  const outputs = CONTRACTS.featureCache.verification(config({ featureCache: { expectedTokens: 500 } })).outputs;
  assert.equal(outputs.kind === 'token-cache' && outputs.expectedTokens, 500);
});

test('caching always passes train_logs=[]: the script would replace the split\'s logs with the 13,180 standard train logs (0 tokens of navtest, no validation logs of navtrain)', () => {
  assert.deepEqual(CONTRACTS.featureCache.render(config({ featureCache: { split: 'navtest' } })).addedArgs, ['train_logs=[]']);
  assert.deepEqual(CONTRACTS.featureCache.render(config()).addedArgs, ['train_logs=[]']);
});

test('silent failures upstream only logs are verification failures', () => {
  assert.ok(CONTRACTS.featureCache.verification(config()).logMustNotContain.includes('Image path not found'));
  assert.ok(CONTRACTS.stage1.verification(config()).logMustNotContain.includes('An error occurred during training'));
  assert.ok(CONTRACTS.stage3.verification(config()).logMustNotContain.includes('GRPO checkpoint not found'));
  assert.ok(CONTRACTS.metricCache.verification(config()).logMustNotContain.includes('Starting metric caching of 0 files'));
});

test('stage 2 expects one checkpoint per epoch; stage 1 a committed final checkpoint', () => {
  assert.deepEqual(CONTRACTS.stage2.verification(config({ stage2: { epochs: 5 } })).outputs, { kind: 'epoch-checkpoints', epochs: 5 });
  assert.deepEqual(CONTRACTS.stage1.verification(config()).outputs, { kind: 'final-checkpoint', dir: 'final_checkpoint.pt' });
});
