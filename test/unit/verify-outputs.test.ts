/** Each output check passes a complete output and names what is missing in an incomplete one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';
import { verifyStageOutputs } from '../../activities/verify/index.ts';
import type { VerificationSpec } from '../../pipeline/contracts/index.ts';

async function withOutput(files: Record<string, string>, check: (uri: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'rd-verify-'));
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      if (path.endsWith('/')) await mkdir(join(root, path), { recursive: true });
      else await writeFile(join(root, path), content);
    }
    await check(`file://${root}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const store = new FileArtifactStore();
const verify = (uri: string, spec: Partial<VerificationSpec> & Pick<VerificationSpec, 'outputs'>, seen: string[] = []) =>
  verifyStageOutputs(store.reader(uri), { logMustContain: [], logMustNotContain: [], ...spec }, seen);
const committed = JSON.stringify({ commit_timestamp_nsecs: 1764000000000000000 });

test('final checkpoint: committed passes; an unfinished orbax tmp folder fails', async () => {
  await withOutput({ 'final_checkpoint.pt/checkpoint_12/_CHECKPOINT_METADATA': committed }, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'final-checkpoint', dir: 'final_checkpoint.pt' } });
    assert.deepEqual(report, { ok: true, problems: [], summary: { finalStep: 12 } });
  });
  await withOutput(
    { 'final_checkpoint.pt/checkpoint_12.orbax-checkpoint-tmp-0/_CHECKPOINT_METADATA': JSON.stringify({ commit_timestamp_nsecs: null }) },
    async (uri) => {
      const report = await verify(uri, { outputs: { kind: 'final-checkpoint', dir: 'final_checkpoint.pt' } });
      assert.equal(report.ok, false);
      assert.match(report.problems[0]!, /never committed \(found checkpoint_12\.orbax-checkpoint-tmp-0\)/);
    },
  );
  await withOutput({ 'final_checkpoint.pt/checkpoint_3/_CHECKPOINT_METADATA': JSON.stringify({ commit_timestamp_nsecs: null }) }, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'final-checkpoint', dir: 'final_checkpoint.pt' } });
    assert.match(report.problems[0]!, /no commit timestamp/);
  });
});

test('epoch checkpoints: one per epoch passes; a missing last epoch fails by name', async () => {
  const two = {
    'checkpoint-epoch-0.pt/checkpoint_5/_CHECKPOINT_METADATA': committed,
    'checkpoint-epoch-1.pt/checkpoint_10/_CHECKPOINT_METADATA': committed,
  };
  await withOutput(two, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'epoch-checkpoints', epochs: 2 } });
    assert.deepEqual(report, { ok: true, problems: [], summary: { checkpoints: 2, expectedCheckpoints: 2, lastStep: 10 } });
  });
  await withOutput(two, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'epoch-checkpoints', epochs: 3 } });
    assert.deepEqual(report.problems, ['checkpoint-epoch-2.pt is missing']);
  });
});

test('token cache: complete tokens at the expected count pass; short or half-written caches fail', async () => {
  const full = { 'log-a/t1/internvl_feature.gz': 'x', 'log-a/t1/trajectory_target.gz': 'x', 'log-b/t2/internvl_feature.gz': 'x', 'log-b/t2/trajectory_target.gz': 'x' };
  const spec = (expectedTokens: number) => ({ outputs: { kind: 'token-cache' as const, files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens } });
  await withOutput(full, async (uri) => assert.equal((await verify(uri, spec(2))).ok, true));
  await withOutput(full, async (uri) => assert.deepEqual((await verify(uri, spec(3))).problems, ['cached 2 complete tokens, expected 3']));
  await withOutput({ ...full, 'log-b/t3/internvl_feature.gz': 'x' }, async (uri) => {
    const report = await verify(uri, spec(3));
    assert.match(report.problems[0]!, /1 token folders are incomplete \(e\.g\. log-b\/t3 lacks trajectory_target\.gz\)/);
  });
  await withOutput({ 'empty/': '' }, async (uri) => {
    assert.deepEqual((await verify(uri, spec(3))).problems, ['the cache holds no complete token']);
  });
});

test('metric cache: metadata rows must match the cached tokens and the expected count', async () => {
  const pkl = (log: string, token: string) => ({ [`${log}/unknown/${token}/metric_cache.pkl`]: 'x' });
  const csv = (tokens: string[]) => ({
    'metadata/metric_cache_metadata_node_0.csv': ['file_name', ...tokens.map((t) => `/recogdrive/data/metric_cache/log/unknown/${t}/metric_cache.pkl`)].join('\n'),
  });
  const files = { ...pkl('log', 'a'), ...pkl('log', 'b') };
  await withOutput({ ...files, ...csv(['a', 'b']) }, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'metric-cache', expectedTokens: 2 } });
    assert.deepEqual(report, { ok: true, problems: [], summary: { tokens: 2, metadataRows: 2 } });
  });
  await withOutput({ ...files, ...csv(['a']) }, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'metric-cache', expectedTokens: 2 } });
    assert.deepEqual(report.problems, [
      '1 cached tokens are not in metadata/metric_cache_metadata_node_0.csv',
      'metadata lists 1 tokens, expected 2',
    ]);
  });
  await withOutput({ ...files, ...csv([]) }, async (uri) => {
    const report = await verify(uri, { outputs: { kind: 'metric-cache', expectedTokens: undefined } });
    assert.ok(report.problems.includes('metadata/metric_cache_metadata_node_0.csv lists no tokens'));
  });
  await withOutput(files, async (uri) => {
    assert.ok((await verify(uri, { outputs: { kind: 'metric-cache', expectedTokens: 2 } })).problems.includes('metadata/*.csv is missing'));
  });
});

test('eval CSV: all tokens valid plus an average row pass; failed tokens or missing rows fail', async () => {
  const header = ',token,valid,no_at_fault_collisions,drivable_area_compliance,ego_progress,time_to_collision_within_bound,comfort,driving_direction_compliance,score,rank';
  const row = (i: number, token: string, valid: string) => `${i},${token},${valid},1,1,0.9,1,1,1,0.9,${i}`;
  const csv = (rows: string[]) => ({ '2026.11.25.04.00.00.csv': [header, ...rows].join('\n') });
  const spec = { outputs: { kind: 'eval-csv' as const, expectedTokens: 2, maxFailedTokens: 0 } };
  await withOutput(csv([row(0, 'a', 'True'), row(1, 'b', 'True'), row(2, 'average', 'True')]), async (uri) => {
    const report = await verify(uri, spec);
    assert.equal(report.ok, true, report.problems.join());
    assert.equal(report.summary.pdmScore, 0.9);
  });
  await withOutput(csv([row(0, 'a', 'True'), row(1, 'b', 'False'), row(2, 'average', 'False')]), async (uri) => {
    assert.deepEqual((await verify(uri, spec)).problems, ['1 tokens failed to score (allowed 0)']);
  });
  await withOutput(csv([row(0, 'a', 'True')]), async (uri) => {
    const problems = (await verify(uri, spec)).problems;
    assert.ok(problems.some((p) => /no average row/.test(p)) && problems.some((p) => /scores 1 tokens, expected 2/.test(p)));
  });
});

test('log markers: a missing completion line or a silent-failure line fails the stage', async () => {
  await withOutput({ 'final_checkpoint.pt/checkpoint_1/_CHECKPOINT_METADATA': committed }, async (uri) => {
    const spec = {
      outputs: { kind: 'final-checkpoint' as const, dir: 'final_checkpoint.pt' },
      logMustContain: ['Saved final checkpoint'],
      logMustNotContain: ['An error occurred during training'],
    };
    assert.equal((await verify(uri, spec, ['Saved final checkpoint'])).ok, true);
    assert.deepEqual((await verify(uri, spec, [])).problems, ['the log never said "Saved final checkpoint"']);
    assert.deepEqual((await verify(uri, spec, ['Saved final checkpoint', 'An error occurred during training'])).problems, [
      'the log says "An error occurred during training"',
    ]);
  });
});
