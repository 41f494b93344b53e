/** `recogdrive plan`: the full plan from an input file, without touching any backend. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Plan } from '../../pipeline/plan.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const CLI = join(PROJECT_ROOT, 'workers', 'bin', 'recogdrive.js');
const SPEC_INPUT = join(PROJECT_ROOT, 'examples', 'spec-tpu.json');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // TEMPORAL_ADDRESS points nowhere: plan must not need a server.
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' };
  return promisify(execFile)(process.execPath, [CLI, ...args], { env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

test('plan --json gives every stage its decision and complete launch spec', async () => {
  const { code, stdout } = await cli(['plan', '--input', SPEC_INPUT, '--run-id', 'r1', '--json']);
  assert.equal(code, 0);
  const plan = JSON.parse(stdout) as Plan;
  assert.equal(plan.runId, 'r1');
  assert.deepEqual(plan.stages.map((s) => [s.stage, s.decision]), [
    ['stage1', 'RUN'],
    ['featureCache', 'RUN'],
    ['stage2', 'RUN'],
    ['stage2Export', 'RUN'],
    ['metricCache', 'RUN'],
    ['stage3', 'RUN'],
    ['stage3Export', 'RUN'],
    ['eval', 'RUN'],
  ]);
  for (const stage of plan.stages.filter((s) => s.decision === 'RUN')) {
    const launch = stage.launch!;
    assert.ok(launch.image.startsWith('us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu:'));
    assert.ok(launch.command.length > 2);
    assert.ok(launch.dockerFlags.includes('--privileged') && launch.dockerFlags.includes('--net=host'));
    assert.equal(launch.workdir, '/recogdrive');
    assert.equal(launch.mounts[0]!.target, '/recogdrive');
    // The trainers and caches import navsim; the exports run the bridge, which needs none of it.
    if (!stage.stage.endsWith('Export')) assert.ok(Object.keys(launch.env).includes('PYTHONPATH'), stage.stage);
    assert.ok(stage.compute && stage.verification && stage.limits);
  }
  const metric = plan.stages.find((s) => s.stage === 'metricCache')!;
  assert.deepEqual(metric.compute, {
    backend: 'compute-engine',
    machineType: 'n2-standard-64',
    zones: ['us-east5-b'],
    spot: false,
    bootImage: 'projects/cos-cloud/global/images/family/cos-stable',
    bootDiskGb: 200,
    failover: { maxAttemptsPerZone: 2, maxCapacityRounds: 6, backoff: 60_000, backoffMax: 1_800_000, maxNodeLosses: 20, healthCheckInterval: 30_000 },
  });
  assert.equal(plan.stages.find((s) => s.stage === 'stage2')!.compute!.backend, 'tpu-api');
});

test('plan shows human-readable docker commands by default', async () => {
  const { code, stdout } = await cli(['plan', '--input', SPEC_INPUT, '--run-id', 'r1']);
  assert.equal(code, 0);
  assert.match(stdout, /stage2 +RUN/);
  assert.match(stdout, /command: +docker run -d --name rd-r1-stage2 --privileged --net=host --workdir \/recogdrive/);
  assert.match(stdout, /TPU v6e-4 spot in us-east5-b > us-east5-a/);
  // GRPO on the A100 VM: its GPUs, the trainer flavour and why, and the torchrun launch.
  assert.match(stdout, /compute: +VM a2-highgpu-8g \(8×nvidia-tesla-a100\) spot in us-east5-b > us-central1-a/);
  assert.match(stdout, /note: +Trainer "gpu": the upstream run_training_recogdrive_rl\.py/);
  assert.match(stdout, /--gpus all --shm-size=16g .* torchrun --nnodes=1 --nproc_per_node=8 --master_port=29500 navsim\/planning\/script\/run_training_recogdrive_rl\.py/);
});

test('plan with a bad input exits 2 and names the fields', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rd-cli-'));
  try {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ experiment: 'x', artifactRoot: 'gs://b', paths: { hostRepoDir: '/x' }, stage2: { epochs: -1 } }));
    const bad = await cli(['plan', '--input', file]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /stage2\.epochs/);
    assert.match(bad.stderr, /experiment/);
    await writeFile(file, '{ not json');
    const notJson = await cli(['plan', '--input', file]);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /is not valid JSON/);
    const missing = await cli(['plan', '--input', join(dir, 'nope.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
