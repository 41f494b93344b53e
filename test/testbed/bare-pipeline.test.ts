/**
 * The whole pipeline on VMs that start bare, every byte between stages through Cloud Storage: a
 * real Temporal server and worker, the real Google clients against the fake Cloud TPU and Compute
 * Engine APIs, each new VM a test bed worker reset to nothing (no image, no checkout, no data, no
 * mount). Stages 1-2 on TPU VMs, the exports and the metric cache on CPU VMs, GRPO and the
 * evaluation on GPU VMs. The image is a tag in an authenticated registry, resolved to its digest
 * by the worker (its own credentials) and pulled by digest by each VM (its service account); the
 * code is a gs:// archive, the models are copied and the maps' data mounted from gs://; outputs
 * are written through the gcsfuse mount of the runs' bucket and verified in the bucket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { bringUpLogName, computeName, stageLogsUri } from '../../pipeline/naming.ts';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { runFailure } from '../helpers/assertions.ts';
import { startBareCloud, type BareCloud } from '../helpers/bare-cloud.ts';
import { MIXED_MACHINES } from '../helpers/cloud-env.ts';
import { archiveFolder, startBareWorld, uploadFolder, VM_ACCOUNT, type BareWorld } from '../helpers/bare-world.ts';
import { dockerConfig } from '../helpers/image-registry.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { testbedWorkerEnv } from '../helpers/testbed-input.ts';
import { testbedSkip } from './requirements.ts';

const run = promisify(execFile);
const skip = testbedSkip();
const PROJECT = 'bare-project';
const ZONES = ['us-east5-a', 'us-east5-b'];
const ARTIFACT_ROOT = 'gs://runs/recogdrive';
const WORKER_USER = { user: 'recogdrive-worker', password: 'worker-secret-3141' };

let world: BareWorld;
let cloud: BareCloud;
let env: TestEnv;
let dir: string;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'rd-bare-pipeline-'));
  // Three CPU/TPU workers and one with 2 GPUs: a stage's VM takes a worker no live VM holds.
  world = await startBareWorld({ workers: 4, gpus: [0, 0, 0, 2], dir: join(PROJECT_ROOT, '.data', 'testbed-bare-pipeline'), buckets: ['code', 'data', 'runs'], extraUsers: { [WORKER_USER.user]: WORKER_USER.password } });
  cloud = await startBareCloud(world.bed, VM_ACCOUNT);
  const authFile = join(dir, 'worker-docker-config.json');
  await writeFile(authFile, dockerConfig(world.registry.host, WORKER_USER.user, WORKER_USER.password), { mode: 0o600 });
  env = await startTestEnv({
    env: {
      ...testbedWorkerEnv(world.bed),
      RECOGDRIVE_GCP_PROJECTS: PROJECT,
      RECOGDRIVE_GCP_ZONES: ZONES.join(','),
      RECOGDRIVE_TPU_API_ENDPOINT: `127.0.0.1:${cloud.tpu.port}`,
      RECOGDRIVE_COMPUTE_API_ENDPOINT: `http://127.0.0.1:${cloud.gce.port}`,
      RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT: 'true',
      RECOGDRIVE_CLOUD_SSH_USER: 'root',
      RECOGDRIVE_CLOUD_POLL_INTERVAL_MS: '100',
      // A VM that stopped answering is given up on in seconds (a reset VM's sshd is back within ~4 s).
      RECOGDRIVE_SSH_CONNECT_DEADLINE_MS: '20000',
      RECOGDRIVE_GCS_ENDPOINT: world.emulator.apiEndpoint,
      RECOGDRIVE_REGISTRY_AUTH_FILE: authFile,
      RECOGDRIVE_REGISTRY_INSECURE_HOSTS: world.registry.host,
    },
  });
  // The checkout as a team would publish it: code in an archive, the model and the maps' data beside it.
  await archiveFolder(env.dataset.dir, join(dir, 'recogdrive.tar.gz'), ['models', 'tests/dummy_data']);
  await world.storage.bucket('code').upload(join(dir, 'recogdrive.tar.gz'), { destination: 'releases/recogdrive.tar.gz' });
  await uploadFolder(world.storage, join(env.dataset.dir, 'models'), 'data', 'models');
  await uploadFolder(world.storage, join(env.dataset.dir, 'tests', 'dummy_data'), 'data', 'dummy_data');
});

after(async () => {
  await env?.close();
  await cloud?.stop();
  await world?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function bareInput(image: string, stages: readonly StageName[] = STAGES): Record<string, unknown> {
  const base = env.input({ stages: [...stages] }) as unknown as Record<string, Record<string, unknown>>;
  const input: Record<string, unknown> = {
    ...base,
    artifactRoot: ARTIFACT_ROOT,
    gcp: { project: PROJECT },
    images: { stage1: image, unified: image },
    paths: { hostRepoDir: '/var/lib/recogdrive/repo' },
    sources: {
      code: { archive: 'gs://code/releases/recogdrive.tar.gz' },
      data: [
        { uri: 'gs://data/models', path: 'models' },
        { uri: 'gs://data/dummy_data', path: 'tests/dummy_data', mode: 'mount' },
      ],
    },
    orchestration: { heartbeatTimeout: '10 seconds', progressInterval: '1 second', pollInterval: '1 second' },
  };
  for (const stage of stages) {
    input[stage] = {
      ...base[stage],
      compute: { ...MIXED_MACHINES[stage], zones: ZONES, failover: { backoff: '1s', healthCheckInterval: '1s' } },
      env: { RECOGDRIVE_SIM_DURATION_MS: '1500' },
    };
  }
  return input;
}

async function objectNames(prefix: string): Promise<string[]> {
  const [files] = await world.storage.bucket('runs').getFiles({ prefix });
  return files.map((f) => f.name);
}

async function bringUpLog(runId: string, stage: StageName, attempt = 1): Promise<string> {
  const uri = `${stageLogsUri(ARTIFACT_ROOT, runId, stage)}/${bringUpLogName(attempt, 0)}`;
  const [content] = await world.storage.bucket('runs').file(uri.slice('gs://runs/'.length)).download();
  return content.toString();
}

test('the whole pipeline runs on bare VMs with gs:// artifacts: each VM pulls the image by digest, fetches code and data, writes to the bucket; outputs verified in the bucket; nothing left', { skip, timeout: 900_000 }, async () => {
  const runId = 'bare-full';
  const handle = await env.start(runId, bareInput(world.image));
  const summary = (await handle.result()) as RunSummary;
  assert.deepEqual(summary.stages.map((s) => [s.stage, s.decision, s.attempts]), STAGES.map((stage) => [stage, 'RUN', 1]));

  const digestRef = `${world.image.slice(0, world.image.lastIndexOf(':'))}@${world.digest}`;
  for (const s of summary.stages) {
    // Verified where it lives: the bucket, through the Storage API.
    assert.ok(s.artifactUri!.startsWith(`${ARTIFACT_ROOT}/runs/${runId}/`), s.artifactUri);
    const objects = await objectNames(s.artifactUri!.slice('gs://runs/'.length) + '/');
    assert.ok(objects.length > 0, `${s.stage}: objects in the bucket`);
    // Each stage's VM was bare: it logged in, pulled, unpacked and copied (nothing was "already" there).
    const log = await bringUpLog(runId, s.stage);
    assert.match(log, /logged in to /, `${s.stage}:\n${log}`);
    assert.ok(log.includes(`pulled ${digestRef}`), `${s.stage} pulled the image by digest:\n${log}`);
    assert.match(log, /unpacked gs:\/\/code\/releases\/recogdrive\.tar\.gz/);
    assert.match(log, /copied gs:\/\/data\/models/);
    assert.match(log, /mounted gs:\/\/data\/dummy_data at \/var\/lib\/recogdrive\/repo\/tests\/dummy_data/);
    assert.match(log, /mounted gs:\/\/runs at \/mnt\/artifacts\/runs/);
    assert.doesNotMatch(log, /already/, `${s.stage}: nothing was on its VM before`);
  }
  const byStage = new Map(summary.stages.map((s) => [s.stage, s]));
  assert.equal(byStage.get('featureCache')!.outputs!.tokens, env.dataset.navtrainTokens);
  assert.equal(byStage.get('metricCache')!.outputs!.tokens, env.dataset.navtrainTokens);
  assert.equal(byStage.get('eval')!.outputs!.tokens, env.dataset.testTokens);
  assert.equal(byStage.get('metricCache')!.compute![0]!.backend, 'compute-engine');
  // One VM per stage, on at least three different machines, every one reset to bare when it came.
  assert.equal(cloud.placements.length, STAGES.length, JSON.stringify(cloud.placements));
  assert.ok(new Set(cloud.placements.map((p) => p.worker)).size >= 3, JSON.stringify(cloud.placements));
  assert.deepEqual(cloud.tpu.allNodes(), [], 'no TPU VM left');
  assert.deepEqual(cloud.gce.allInstances(), [], 'no VM left');

  // An operator reads a machine's bring-up with the CLI, from the bucket, after the machine is gone.
  const cli = await run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'logs', runId, 'metricCache', '--bring-up'], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address, RECOGDRIVE_GCS_ENDPOINT: world.emulator.apiEndpoint },
  });
  assert.match(cli.stdout, /\] image: pull .*\n {2}pulled /);
  assert.match(cli.stdout, /\] bucket: done in/);
});

test('a tag the registry does not have fails the run before any VM is created', { skip, timeout: 120_000 }, async () => {
  const before = cloud.placements.length;
  const missing = `${world.registry.host}/recogdrive/recogdrive-tpu:no-such-tag`;
  const failure = await runFailure((await env.start('bare-unknown-tag', bareInput(missing, ['metricCache']))).result());
  assert.match(failure.message, /no-such-tag/);
  assert.equal(cloud.placements.length, before, 'no VM');
  assert.deepEqual(cloud.gce.allInstances(), []);
});

test('a missing code archive fails the run before any VM is created, naming it', { skip, timeout: 120_000 }, async () => {
  const before = cloud.placements.length;
  const input = bareInput(world.image, ['metricCache']);
  input.sources = { code: { archive: 'gs://code/releases/missing.tar.gz' } };
  const failure = await runFailure((await env.start('bare-missing-code', input)).result());
  assert.match(failure.message, /sources\.code\.archive gs:\/\/code\/releases\/missing\.tar\.gz does not exist/);
  assert.equal(cloud.placements.length, before, 'no VM');
});

test('a TPU VM preempted mid-stage after two committed checkpoints leaves both in the bucket; the stage finishes on a new bare VM', { skip, timeout: 600_000 }, async () => {
  const runId = 'bare-preempt';
  const input = bareInput(world.image, ['stage1', 'featureCache', 'stage2']) as Record<string, Record<string, unknown>>;
  // Three epochs of ~8 s: a checkpoint at the end of each.
  input.stage2 = { ...input.stage2, epochs: 3, env: { RECOGDRIVE_SIM_DURATION_MS: '24000' } };
  const handle = await env.start(runId, input);
  const prefix = `recogdrive/runs/${runId}/stage2/`;
  const committed = async () => new Set((await objectNames(prefix)).map((name) => /checkpoint-epoch-(\d+)\.pt\/checkpoint_\d+\//.exec(name)?.[1]).filter((e) => e !== undefined));
  const deadline = Date.now() + 300_000;
  while ((await committed()).size < 2) {
    assert.ok(Date.now() < deadline, `two checkpoints in ${prefix}: ${[...(await committed())].join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const node = cloud.tpu.allNodes().find((n) => n.name.endsWith(`/${computeName(runId, 'stage2', 1)}`))!;
  const worker = cloud.placements.findLast((p) => p.vm.startsWith(`tpu:${node.name}/`))!.worker;
  // The VM dies: the cloud says PREEMPTED, its containers are gone with it.
  cloud.tpu.preemptAt(node.name);
  const containers = (await world.bed.docker(worker, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (containers.length > 0) await world.bed.docker(worker, ['rm', '-f', ...containers]);
  assert.deepEqual([...(await committed())].sort(), ['0', '1'], 'both committed checkpoints are in the bucket after the preemption');

  const summary = (await handle.result()) as RunSummary;
  const stage2 = summary.stages.find((s) => s.stage === 'stage2')!;
  assert.deepEqual(stage2.compute!.map((u) => u.outcome), ['preempted', 'succeeded']);
  assert.equal(stage2.outputs!.checkpoints, 3);
  // The new VM was bare too: it pulled and unpacked again.
  const log = await bringUpLog(runId, 'stage2', 2);
  assert.doesNotMatch(log, /already/, log);
  assert.deepEqual(cloud.tpu.allNodes(), [], 'no TPU VM left');
});

test('a VM preempted while it is being brought up is a node loss: a new bare VM, no attempt used, the stage completes', { skip, timeout: 600_000 }, async () => {
  const runId = 'bare-lost-in-bring-up';
  // Many small files make the copy step last several seconds.
  const many = join(dir, 'many');
  await mkdir(many, { recursive: true });
  for (let i = 0; i < 2500; i++) await writeFile(join(many, `f-${i}.bin`), `file ${i}\n`);
  await uploadFolder(world.storage, many, 'data', 'many');
  const input = bareInput(world.image, ['stage1']) as Record<string, Record<string, unknown>>;
  (input.sources as unknown as { data: unknown[] }).data.push({ uri: 'gs://data/many', path: 'data/many' });
  input.stage1 = { ...input.stage1, compute: { ...(input.stage1!.compute as object), spot: true }, maxAttempts: 1 };
  const handle = await env.start(runId, input);
  // The VM is in the middle of its bring-up: the attempt's bring-up log says the long copy started.
  const deadline = Date.now() + 180_000;
  while (!(await bringUpLog(runId, 'stage1', 1).catch(() => '')).includes('data: copy gs://data/many')) {
    assert.ok(Date.now() < deadline, 'the bring-up reached the long copy');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal((await handle.query(runStatusQuery)).stages.find((x) => x.stage === 'stage1')?.phase, 'bringing up');
  const node = cloud.tpu.allNodes().find((n) => n.name.endsWith(`/${computeName(runId, 'stage1', 1)}`))!;
  const worker = cloud.placements.findLast((p) => p.vm.startsWith(`tpu:${node.name}/`))!.worker;
  // The VM goes away mid-bring-up: the cloud says PREEMPTED, its SSH goes with it.
  cloud.tpu.preemptAt(node.name);
  await world.bed.stopWorker(worker);
  let summary: RunSummary;
  try {
    summary = (await handle.result()) as RunSummary;
  } finally {
    // Unless the replacement VM landed on it (its reset started it again), the machine stays gone: bring it back for the next test.
    if (cloud.placements.at(-1)!.worker !== worker) await world.bed.startWorker(worker);
  }
  const stage1 = summary.stages.find((s) => s.stage === 'stage1')!;
  assert.deepEqual(stage1.compute!.map((u) => u.outcome), ['preempted', 'succeeded'], 'one attempt allowed, and the preemption did not use it');
  const first = await bringUpLog(runId, 'stage1', 1);
  assert.match(first, /stopped answering/, first);
  assert.doesNotMatch(first, /bucket: done/, 'the first VM never finished its bring-up');
  assert.doesNotMatch(await bringUpLog(runId, 'stage1', 2), /already/);
  assert.deepEqual(cloud.tpu.allNodes(), [], 'no TPU VM left');
});

test('a bring-up no retry can fix fails the stage once, naming the step, and its VM is deleted', { skip, timeout: 300_000 }, async () => {
  const runId = 'bare-missing-data';
  const before = cloud.placements.length;
  const input = bareInput(world.image, ['metricCache']) as Record<string, Record<string, unknown>>;
  (input.sources as unknown as { data: unknown[] }).data.push({ uri: 'gs://data/no-such-dataset', path: 'data/navsim_logs' });
  input.metricCache = { ...input.metricCache, maxAttempts: 3 };
  const handle = await env.start(runId, input);
  const failure = await runFailure(handle.result());
  assert.match(failure.message, /bring-up step data \(copy gs:\/\/data\/no-such-dataset .*\) failed on worker 0: gs:\/\/data\/no-such-dataset has no objects/);
  const stage = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'metricCache')!;
  assert.deepEqual([stage.state, stage.attempt], ['failed', 1], 'failed on its first attempt, of three allowed');
  assert.equal(cloud.placements.length, before + 1, 'one VM: no retry of what cannot heal');
  assert.deepEqual(cloud.gce.allInstances(), [], 'its VM was deleted');
});
