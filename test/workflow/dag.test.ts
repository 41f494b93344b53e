/** The pipeline DAG on a real Temporal server with the embedded default backend. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import type { RunStatus, RunSummary } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { assertNothingLeaked } from '../helpers/assertions.ts';
import { startTestEnv, waitForStatus, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

type Times = { start: number; exit: number };
function timesOf(summary: RunSummary): Record<string, Times> {
  return Object.fromEntries(
    summary.stages.filter((s) => s.processStartedAt !== undefined).map((s) => [s.stage, { start: s.processStartedAt!, exit: s.processExitedAt! }]),
  );
}

function assertDagOrder(t: Record<string, Times>): void {
  assert.ok(t.featureCache!.start >= t.stage1!.exit, 'featureCache starts after stage1 exits');
  assert.ok(t.stage2!.start >= t.featureCache!.exit, 'stage2 starts after featureCache exits');
  assert.ok(t.stage2Export!.start >= t.stage2!.exit, 'stage2Export starts after stage2 exits');
  for (const input of ['featureCache', 'metricCache', 'stage2Export']) {
    assert.ok(t.stage3!.start >= t[input]!.exit, `stage3 starts after ${input} exits`);
  }
  assert.ok(t.stage3Export!.start >= t.stage3!.exit, 'stage3Export starts after stage3 exits');
  assert.ok(t.eval!.start >= t.stage3Export!.exit, 'eval starts after stage3Export exits');
}

test('a full run follows the DAG: metricCache overlaps stage1, stage3 waits for its three inputs', async () => {
  // Run A: the metric cache is the last of stage3's inputs; run B: stage2 is.
  const slowMetric = env.input({ durationMs: 800, simulate: { metricCache: { durationMs: 10000 } } });
  const slowStage2 = env.input({ durationMs: 800, simulate: { metricCache: { durationMs: 300 }, stage2: { durationMs: 5000 } } });
  const [a, b] = await Promise.all([env.start('dag-slow-metric', slowMetric), env.start('dag-slow-stage2', slowStage2)]);
  const [summaryA, summaryB] = (await Promise.all([a.result(), b.result()])) as [RunSummary, RunSummary];

  const ta = timesOf(summaryA);
  const tb = timesOf(summaryB);
  assertDagOrder(ta);
  assertDagOrder(tb);
  assert.ok(ta.metricCache!.start < ta.stage1!.exit && ta.stage1!.start < ta.metricCache!.exit, 'metricCache runs while stage1 runs');
  assert.ok(ta.metricCache!.exit > ta.stage2!.exit, 'in run A the metric cache is the last input of stage3');
  assert.ok(tb.stage2!.exit > tb.metricCache!.exit, 'in run B stage2 is the last input of stage3');

  for (const stage of summaryA.stages) {
    assert.equal(stage.decision, 'RUN');
    assert.equal(stage.attempts, 1);
    assert.match(stage.artifactUri!, new RegExp(`^file://${env.dataDir}/artifacts/runs/dag-slow-metric/`));
  }
  const outputs = Object.fromEntries(summaryA.stages.map((s) => [s.stage, s.outputs]));
  // Both caches hold every navtrain token, validation logs included (Lightning validates on them).
  assert.equal(outputs.featureCache!.tokens, env.dataset.navtrainTokens);
  assert.equal(outputs.metricCache!.tokens, env.dataset.navtrainTokens);
  assert.equal(outputs.stage2!.checkpoints, 2);
  // Stage 3 ran the upstream GPU script (Lightning keeps one checkpoint per epoch, at most 5); the exports are torch files.
  assert.equal(outputs.stage3!.checkpoints, 2);
  assert.ok(Number(outputs.stage2Export!.tensors) > 0 && outputs.stage3Export!.tensors === outputs.stage2Export!.tensors);
  assert.equal(outputs.eval!.tokens, env.dataset.testTokens);

  // The artifacts are where the summary says, and the feature cache has the real layout.
  const cacheDir = summaryA.stages.find((s) => s.stage === 'featureCache')!.artifactUri!.slice('file://'.length);
  const logs = await readdir(cacheDir);
  assert.ok(logs.length > 0);
  assert.deepEqual((await readdir(`${cacheDir}/${logs[0]}/${(await readdir(`${cacheDir}/${logs[0]}`))[0]}`)).sort(), [
    'internvl_feature.gz',
    'trajectory_target.gz',
  ]);

  const status: RunStatus = await a.query(runStatusQuery);
  assert.equal(status.state, 'succeeded');
  assert.deepEqual(
    status.stages.map((s) => [s.stage, s.state]),
    summaryA.stages.map((s) => [s.stage, 'succeeded']),
  );
  await assertNothingLeaked(env);
});

test('the status query shows per-stage state, attempt, progress and artifact URIs while a run goes', async () => {
  const handle = await env.start('status-run', env.input({ durationMs: 300, simulate: { stage1: { durationMs: 5000 } } }));
  const status = await waitForStatus(handle, (s) => {
    const stage1 = s.stages.find((x) => x.stage === 'stage1')!;
    return stage1.progress?.step !== undefined && stage1.progress.step > 1;
  });
  const stage1 = status.stages.find((s) => s.stage === 'stage1')!;
  assert.equal(status.state, 'running');
  assert.equal(stage1.state, 'running');
  assert.equal(stage1.phase, 'running');
  assert.equal(stage1.attempt, 1);
  assert.equal(stage1.computeName, 'rd-status-run-stage1-1');
  assert.ok(stage1.progress!.totalSteps! > 0 && stage1.progress!.fraction! > 0 && stage1.progress!.fraction! < 1);
  assert.equal(typeof stage1.progress!.loss, 'number');
  assert.equal(status.stages.find((s) => s.stage === 'stage2')!.state, 'pending');
  for (const s of status.stages) assert.match(s.artifactUri!, /\/runs\/status-run\//);
  assert.equal(status.stages.find((s) => s.stage === 'stage3')!.workflowId, 'status-run/stage3');
  await handle.result();
});
