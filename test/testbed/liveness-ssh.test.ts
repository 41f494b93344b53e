/**
 * Hang detection from output growth over SSH (activities/execution/docker-ssh.ts) on the test bed:
 * the test bed's stage image (busybox sh, the stage wrapper under tini) runs the metric cache
 * compressed in time; the watcher reads the wrapper's growth lines out of `docker logs`
 * (stdout and stderr merged). Same scripts and hang timeout as test/unit/liveness.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerSshExecutor } from '../../activities/execution/docker-ssh.ts';
import type { WatchContext } from '../../activities/execution/executor.ts';
import { loadSshKey } from '../../activities/ssh/credentials.ts';
import { SshPool } from '../../activities/ssh/pool.ts';
import type { ComputeLease, WatchRequest, WatchResult } from '../../activities/types.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { defaultHostPath, MARKERS_MOUNT, STAGE_WRAPPER, type LaunchSpec } from '../../pipeline/launch.ts';
import { parseGrowthLine } from '../../pipeline/output-growth.ts';
import type { Progress } from '../../pipeline/progress.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { LIVENESS_FILES, LIVENESS_HANG_TIMEOUT_MS, STUCK, WRITES_SILENTLY } from '../helpers/liveness-scripts.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
const OUTPUT_PATH = '/recogdrive/data/metric_cache';
let bed: Testbed;
let pool: SshPool;
let executor: DockerSshExecutor;
let root: string;

before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 1, dir: join(PROJECT_ROOT, '.data', 'testbed-liveness') });
  pool = new SshPool({
    key: (await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile }))!,
    connectDeadlineMs: 20_000,
    keepaliveIntervalMs: 5_000,
    maxConnections: 8,
    maxChannelsPerConnection: 8,
  });
  executor = new DockerSshExecutor({ pool, sudo: false, hostPathOf: (s) => defaultHostPath(s), pollConnectDeadlineMs: 5_000 });
  root = await mkdtemp(join(bed.dir, 'artifacts-'));
});
after(async () => {
  pool?.close();
  await bed?.stop();
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

async function runStage(name: string, script: string): Promise<{ result: WatchResult; progress: Progress[]; log: string; watchMs: number }> {
  const outputUri = `file://${join(root, name, 'metricCache')}`;
  const markersUri = `file://${join(root, name, '_recogdrive', 'metricCache')}`;
  await mkdir(join(root, name), { recursive: true });
  const launch: LaunchSpec = {
    stage: 'metricCache',
    contractVersion: 1,
    image: bed.images[0]!,
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
  const w = bed.workers[0]!;
  const lease: ComputeLease = { name: `rd-${name}-1`, backend: 'static', workers: [{ kind: 'ssh', host: w.address, port: w.port, user: w.user, hostKeys: [w.hostKey] }] };
  const request: WatchRequest = {
    lease,
    launch,
    attempt: 1,
    logsUri: `file://${join(root, name, 'logs')}`,
    hangTimeoutMs: LIVENESS_HANG_TIMEOUT_MS,
    pollIntervalMs: 250,
    progressIntervalMs: 0,
    progressHints: { expectedFiles: LIVENESS_FILES },
    logPatterns: ['Done storing metadata csv file.'],
  };
  const progress: Progress[] = [];
  let log = '';
  const context: WatchContext = {
    heartbeat: (details) => {
      const p = (details as { progress?: Progress }).progress;
      if (p !== undefined) progress.push(p);
    },
    cancelled: new AbortController().signal,
    reportProgress: () => Promise.resolve(),
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
    await executor.launch({ lease, launch, attempt: 1, compute: ComputeSpec.parse({ backend: 'static', hosts: [{ address: w.address, port: w.port, user: w.user }] }), hangTimeoutMs: LIVENESS_HANG_TIMEOUT_MS });
    const started = Date.now();
    const result = await executor.watch(request, context);
    return { result, progress, log, watchMs: Date.now() - started };
  } finally {
    await executor.stop({ lease, launch, attempt: 1, logsUri: request.logsUri }, { append: () => Promise.resolve(), save: () => Promise.resolve() });
  }
}

test('over SSH, a metric cache that writes while printing nothing is not declared hung, and its growth reaches the progress', { skip }, async () => {
  const { result, progress, log } = await runStage('liveness-ssh-writes', WRITES_SILENTLY);
  assert.equal(result.hung, false, `declared hung; log tail: ${result.logTail.join(' | ')}`);
  assert.equal(result.exitCode, 0, result.logTail.join('\n'));
  assert.deepEqual(result.seenPatterns, ['Done storing metadata csv file.']);
  assert.ok(log.split('\n').filter((line) => parseGrowthLine(line) !== undefined).length >= 3, 'the wrapper reported the growth in the container log');
  assert.ok(result.logTail.every((line) => parseGrowthLine(line) === undefined));
  assert.ok(progress.some((p) => p.output !== undefined && p.output.files > 0 && p.step === 0 && (p.fraction ?? 0) > 0), 'growth gave a fraction while the bar sat at 0/4');
});

test('over SSH, a stage that neither prints nor writes is declared hung', { skip }, async () => {
  const { result, log, watchMs } = await runStage('liveness-ssh-stuck', STUCK);
  assert.equal(result.hung, true);
  assert.equal(log.split('\n').filter((line) => parseGrowthLine(line) !== undefined).length, 0);
  assert.ok(watchMs >= LIVENESS_HANG_TIMEOUT_MS, `declared hung after ${watchMs} ms`);
});
