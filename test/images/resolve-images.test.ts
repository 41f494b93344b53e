/**
 * A tag on cloud compute (tpu-api, compute-engine) is resolved through its registry: by the
 * worker's resolveImages before a run creates anything, and by `recogdrive plan`, which shows
 * image → digest. A missing image fails both without retries; an unreachable registry is retried
 * by the run and leaves the plan's images unresolved.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities/index.ts';
import { freePort } from '../../infra/local/dev-server.ts';
import { startRegistry, type RunningRegistry } from '../../infra/local/registry.ts';
import { parsePipelineInput } from '../../pipeline/input.ts';
import type { Plan } from '../../pipeline/plan.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { dockerConfig, pushTestImage, registrySkip } from '../helpers/image-registry.ts';

const USER = 'ci';
const PASSWORD = 'registry-password-4b8d';
const CLI = join(PROJECT_ROOT, 'workers', 'bin', 'recogdrive.js');
const skip = registrySkip();

let dir: string;
let registry: RunningRegistry;
let authFile: string;
let digests: { stage1: string; unified: string };

before(async () => {
  if (skip !== false) return;
  dir = await mkdtemp(join(tmpdir(), 'rd-resolve-images-'));
  registry = await startRegistry({ dir: join(dir, 'registry'), users: { [USER]: PASSWORD } });
  const auth = { user: USER, password: PASSWORD };
  digests = {
    stage1: (await pushTestImage(registry, auth, 'xiaomi-tpu/recogdrive-tpu', 'stage1')).digest,
    unified: (await pushTestImage(registry, auth, 'xiaomi-tpu/recogdrive-tpu', 'unified')).digest,
  };
  authFile = join(dir, 'config.json');
  await writeFile(authFile, dockerConfig(registry.host, USER, PASSWORD));
});

after(async () => {
  await registry?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** The TPU example input (tpu-api and compute-engine stages) with its images in `host`. */
async function inputWithImages(host: string, tags = { stage1: 'stage1', unified: 'unified' }): Promise<Record<string, unknown>> {
  const input = JSON.parse(await readFile(join(PROJECT_ROOT, 'examples', 'spec-tpu.json'), 'utf8')) as Record<string, unknown>;
  return { ...input, images: { stage1: `${host}/xiaomi-tpu/recogdrive-tpu:${tags.stage1}`, unified: `${host}/xiaomi-tpu/recogdrive-tpu:${tags.unified}` } };
}

function activities(host: string) {
  return createActivities({
    compute: {},
    executors: {},
    artifactStores: [],
    localImage: { base: PROJECT_ROOT, dirs: [] },
    registry: { authFile, insecureHosts: [host], timeoutMs: 5000 },
  });
}

async function imagesOf(input: Record<string, unknown>) {
  const config = parsePipelineInput(input);
  return [
    { stage: 'stage1' as const, image: config.images.stage1, compute: config.stage1.compute },
    { stage: 'metricCache' as const, image: config.images.unified, compute: config.metricCache.compute },
  ];
}

test('resolveImages resolves tags on tpu-api and compute-engine compute through the registry', { skip }, async () => {
  const images = await imagesOf(await inputWithImages(registry.host));
  assert.deepEqual(images.map((i) => i.compute.backend), ['tpu-api', 'compute-engine']);
  assert.deepEqual(await activities(registry.host).resolveImages({ images }), {
    [`${registry.host}/xiaomi-tpu/recogdrive-tpu:stage1`]: digests.stage1,
    [`${registry.host}/xiaomi-tpu/recogdrive-tpu:unified`]: digests.unified,
  });
});

test('resolveImages fails a tag the registry does not have as invalid input, not retried', { skip }, async () => {
  const images = await imagesOf(await inputWithImages(registry.host, { stage1: 'stage1', unified: 'no-such-tag' }));
  await assert.rejects(activities(registry.host).resolveImages({ images }), (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure);
    assert.equal(error.type, 'InvalidPipelineInput');
    assert.equal(error.nonRetryable, true);
    assert.match(error.message, /recogdrive-tpu:no-such-tag was not found in the registry/);
    return true;
  });
});

test('resolveImages fails an unreachable registry as retryable RegistryUnavailable', async () => {
  const closed = `127.0.0.1:${await freePort()}`;
  const images = await imagesOf(await inputWithImages(closed));
  await assert.rejects(activities(closed).resolveImages({ images }), (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure);
    assert.equal(error.type, 'RegistryUnavailable');
    assert.equal(error.nonRetryable, false);
    return true;
  });
});

async function plan(input: Record<string, unknown>, host: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir ?? tmpdir(), `input-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(input));
  // TEMPORAL_ADDRESS points nowhere: a plan starts nothing.
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', RECOGDRIVE_REGISTRY_AUTH_FILE: authFile ?? '/nonexistent/config.json', RECOGDRIVE_REGISTRY_INSECURE_HOSTS: host };
  return promisify(execFile)(process.execPath, [CLI, 'plan', '--input', file, '--run-id', 'r1', ...args], { env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

test('recogdrive plan shows each tag on cloud compute with the digest its registry names', { skip }, async () => {
  const input = await inputWithImages(registry.host);
  const text = await plan(input, registry.host);
  assert.equal(text.code, 0, text.stderr);
  assert.ok(text.stdout.includes(`image:     ${registry.host}/xiaomi-tpu/recogdrive-tpu:stage1 → ${digests.stage1}`), text.stdout);
  assert.ok(text.stdout.includes(`image:     ${registry.host}/xiaomi-tpu/recogdrive-tpu:unified → ${digests.unified}`), text.stdout);
  assert.doesNotMatch(text.stdout, /not resolved/);
  const json = await plan(input, registry.host, '--json');
  const parsed = JSON.parse(json.stdout) as Plan;
  assert.equal(parsed.imagesResolved, true);
  assert.equal(parsed.stages.find((s) => s.stage === 'stage1')!.imageDigest, digests.stage1);
  assert.equal(parsed.stages.find((s) => s.stage === 'eval')!.imageDigest, digests.unified);
});

test('recogdrive plan with a tag the registry does not have exits 2 with one line and prints no plan', { skip }, async () => {
  const result = await plan(await inputWithImages(registry.host, { stage1: 'typo', unified: 'unified' }), registry.host);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, new RegExp(`^recogdrive: image ${registry.host}/xiaomi-tpu/recogdrive-tpu:typo was not found in the registry ${registry.host}: check the tag[^\\n]*\\n$`));
});

test('recogdrive plan with an unreachable registry still prints the plan, its images unresolved, and warns', async () => {
  const closed = `127.0.0.1:${await freePort()}`;
  const result = await plan(await inputWithImages(closed), closed, '--json');
  assert.equal(result.code, 0, result.stderr);
  assert.equal((JSON.parse(result.stdout) as Plan).imagesResolved, false);
  assert.match(result.stderr, new RegExp(`recogdrive: warning: cannot resolve ${closed}/xiaomi-tpu/recogdrive-tpu:stage1: the registry ${closed} could not be reached`));
});
