/**
 * Hang detection from output growth, end to end through the LOCAL executor and its watcher
 * (activities/execution/local-process.ts): a real stage wrapper around a sh script that plays the
 * metric cache compressed in time (nuplan's Ray bar at 0/4, then files written while nothing is
 * printed), with hangTimeout 2.5 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProcessExecutor } from '../../activities/execution/local-process.ts';
import type { WatchContext } from '../../activities/execution/executor.ts';
import { filePathOf } from '../../activities/artifacts/file-store.ts';
import type { ComputeLease, LaunchRequest, WatchRequest, WatchResult } from '../../activities/types.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { MARKERS_MOUNT, STAGE_WRAPPER, type LaunchSpec } from '../../pipeline/launch.ts';
import { parseGrowthLine } from '../../pipeline/output-growth.ts';
import type { Progress } from '../../pipeline/progress.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { LIVENESS_FILES, LIVENESS_HANG_TIMEOUT_MS, STUCK, WRITES_SILENTLY } from '../helpers/liveness-scripts.ts';

const HANG_TIMEOUT_MS = LIVENESS_HANG_TIMEOUT_MS;
const POLL_MS = 250;
const OUTPUT_PATH = '/recogdrive/data/metric_cache';

const executor = new LocalProcessExecutor({
  simulatorMain: join(PROJECT_ROOT, 'docker', 'simulator', 'main.ts'),
  shimsDir: join(PROJECT_ROOT, 'docker', 'simulator', 'shims'),
  wrapperBinDir: join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'bin'),
  nodePath: process.execPath,
  hostPathOf: filePathOf,
});

interface Watched {
  result: WatchResult;
  heartbeats: Array<{ progress?: Progress }>;
  reports: Progress[];
  log: string;
  watchMs: number;
}

async function runStage(name: string, script: string, use: (watched: Watched) => void): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'rd-liveness-'));
  const outputUri = `file://${join(root, 'artifacts', 'runs', name, 'metricCache')}`;
  const markersUri = `file://${join(root, 'artifacts', 'runs', name, '_recogdrive', 'metricCache')}`;
  const launch: LaunchSpec = {
    stage: 'metricCache',
    contractVersion: 1,
    image: 'local',
    containerName: `rd-${name}-metric-cache`,
    workdir: OUTPUT_PATH,
    dockerFlags: [],
    mounts: [
      { source: { kind: 'artifact', uri: outputUri }, target: OUTPUT_PATH, readOnly: false },
      { source: { kind: 'artifact', uri: markersUri }, target: MARKERS_MOUNT, readOnly: false },
    ],
    env: {
      RECOGDRIVE_STAGE: 'metricCache',
      RECOGDRIVE_OUTPUT_DIR: OUTPUT_PATH,
      RECOGDRIVE_MARKER_DIR: MARKERS_MOUNT,
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify({ kind: 'metric-cache' }),
    },
    command: [...STAGE_WRAPPER, 'sh', '-c', script],
    addedArgs: [],
    output: { uri: outputUri, containerPath: OUTPUT_PATH },
    markers: { uri: markersUri, containerPath: MARKERS_MOUNT },
  };
  const lease: ComputeLease = { name: `rd-${name}-metric-cache-1`, backend: 'local', workers: [{ kind: 'local', dir: join(root, 'compute') }] };
  const launchRequest: LaunchRequest = { lease, launch, attempt: 1, compute: ComputeSpec.parse({ backend: 'local' }), hangTimeoutMs: HANG_TIMEOUT_MS };
  const watchRequest: WatchRequest = {
    lease,
    launch,
    attempt: 1,
    logsUri: `file://${join(root, 'logs')}`,
    hangTimeoutMs: HANG_TIMEOUT_MS,
    pollIntervalMs: POLL_MS,
    progressIntervalMs: 0,
    progressHints: { expectedFiles: LIVENESS_FILES },
    logPatterns: ['Done storing metadata csv file.'],
  };
  const heartbeats: Array<{ progress?: Progress }> = [];
  const reports: Progress[] = [];
  let log = '';
  const context: WatchContext = {
    heartbeat: (details) => heartbeats.push(details as { progress?: Progress }),
    cancelled: new AbortController().signal,
    reportProgress: (progress) => {
      reports.push(progress);
      return Promise.resolve();
    },
    logs: {
      append: (_worker, chunk) => {
        log += chunk;
        return Promise.resolve();
      },
      save: () => Promise.resolve(),
    },
    resumeFrom: undefined,
  };
  try {
    await executor.launch(launchRequest);
    const watchStart = Date.now();
    const result = await executor.watch(watchRequest, context);
    use({ result, heartbeats, reports, log, watchMs: Date.now() - watchStart });
  } finally {
    await executor.stop({ lease, launch, attempt: 1, logsUri: watchRequest.logsUri }, { append: () => Promise.resolve(), save: () => Promise.resolve() });
    // The stopped wrapper may still be recording its verdict while the folder goes: retry what it re-creates.
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

test('a metric cache that prints nothing for ~6 s while it writes a file every ~100 ms is not declared hung (hangTimeout 2.5 s)', async () => {
  await runStage('liveness-writes', WRITES_SILENTLY, ({ result, heartbeats, reports, log }) => {
    assert.equal(result.hung, false, `declared hung; log tail: ${result.logTail.join(' | ')}`);
    assert.equal(result.exitCode, 0, result.logTail.join('\n'));
    assert.deepEqual(result.seenPatterns, ['Done storing metadata csv file.']);

    // The wrapper reported the growth, in the log; the watcher kept it out of the stage's lines.
    const growth = log.split(/\r|\n/).map((line) => parseGrowthLine(line)).filter((g) => g !== undefined);
    assert.ok(growth.length >= 3, `growth lines in the log: ${growth.length}`);
    assert.ok(growth.every((g, i) => i === 0 || g.files >= growth[i - 1]!.files));
    assert.ok(result.logTail.every((line) => parseGrowthLine(line) === undefined), 'growth lines are not in the error tail');

    // Progress carried the growth (heartbeats and reports, for `recogdrive status`): a fraction
    // from the files written while the Ray bar sat at 0/4, never moving backwards.
    const seen = [...heartbeats.map((h) => h.progress), ...reports].filter((p): p is Progress => p !== undefined);
    const midway = seen.find((p) => p.output !== undefined && p.output.files > 0 && p.output.files < LIVENESS_FILES && p.step === 0 && p.totalSteps === 4);
    assert.ok(midway, 'progress with the output growth while the bar was at 0/4');
    assert.ok(midway.fraction! > 0, 'its fraction comes from the files written');
    const fractions = reports.map((p) => p.fraction).filter((f): f is number => f !== undefined);
    assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!), `reported fractions went backwards: ${fractions.join(', ')}`);
    assert.equal(reports.at(-1)!.fraction, 1);
  });
});

test('a stage that prints the same start and then neither prints nor writes is declared hung', async () => {
  await runStage('liveness-stuck', STUCK, ({ result, log, watchMs }) => {
    assert.equal(result.hung, true);
    assert.equal(result.exitCode, null);
    assert.equal(log.split(/\r|\n/).filter((line) => parseGrowthLine(line) !== undefined).length, 0, 'nothing written: no growth line');
    // Not a performance figure: it was declared hung, not merely left to exit (it sleeps 120 s), and not before its hang timeout.
    assert.ok(watchMs >= HANG_TIMEOUT_MS, `declared hung after ${watchMs} ms`);
    assert.ok(watchMs < 60_000, `declared hung after ${watchMs} ms`);
  });
});
