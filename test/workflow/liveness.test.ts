/**
 * Liveness from real output, end to end on a real Temporal server with the simulator: the metric
 * cache as upstream runs it prints its `Ray objects` chunk bar at 0 and then nothing until whole
 * chunks finish (row 10 of the upstream audit), for many hang timeouts, while it writes its
 * files; it must not be killed. One that truly freezes (prints nothing, writes nothing) must be.
 * A 3-hour run compressed: 12 tokens over 9 s against a hang timeout of 1.5 s.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunSummary } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { assertNothingLeaked, runFailure } from '../helpers/assertions.ts';
import { startTestEnv, waitForStatus, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

test('a metric cache silent for six hang timeouts while it writes its files is not killed, and its progress comes from the files', async () => {
  const handle = await env.start(
    'live-metric-cache',
    env.input({
      stages: ['metricCache'],
      simulate: { metricCache: { durationMs: 9_000 } },
      stageSettings: { metricCache: { hangTimeout: '1500ms', maxAttempts: 1 } },
    }),
  );
  // While it runs, the status shows what it wrote: files and a fraction of the expected ones.
  const midway = await waitForStatus(handle, (s) => {
    const metric = s.stages.find((x) => x.stage === 'metricCache');
    return (metric?.progress?.output?.files ?? 0) >= 4 && (metric?.progress?.fraction ?? 0) > 0;
  });
  const progress = midway.stages.find((s) => s.stage === 'metricCache')!.progress!;
  assert.ok(progress.fraction! < 1, `fraction ${progress.fraction} while running`);

  const summary = (await handle.result()) as RunSummary;
  const metric = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(metric.attempts, 1, 'never declared hung');
  assert.ok(metric.workMs! >= 6 * 1500, `it ran ${metric.workMs} ms, longer than six hang timeouts`);
  await assertNothingLeaked(env);
});

test('a metric cache that freezes (no line, no file) is declared hung within its hang timeout', async () => {
  const handle = await env.start(
    'frozen-metric-cache',
    env.input({
      stages: ['metricCache'],
      simulate: { metricCache: { durationMs: 9_000, fault: { kind: 'hang', at: 0.3 } } },
      stageSettings: { metricCache: { hangTimeout: '1500ms', maxAttempts: 1 } },
    }),
  );
  const failure = await runFailure(handle.result());
  assert.equal(failure.stageType, 'StageHang');
  const stage = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(stage.attempt, 1);
  await assertNothingLeaked(env);
});
