import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { bringUpSteps } from '../../activities/bring-up/steps.ts';
import { bringUpSpecFor, registryToLogIn, type BringUpSpec } from '../../pipeline/bring-up.ts';
import { planFingerprints } from '../../pipeline/plan.ts';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { buildLaunchSpec } from '../../pipeline/launch.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { inputIssues } from '../helpers/input-issues.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const tpu = { backend: 'tpu-api', accelerator: 'v6e-4', zones: ['us-east5-b'] };
const cloudInput = {
  experiment: 'exp-1',
  artifactRoot: 'gs://runs-bucket/recogdrive',
  gcp: { project: 'my-project' },
  paths: { hostRepoDir: '/var/lib/recogdrive/repo' },
  upstreamFixes: [...UPSTREAM_FIXES],
  stages: ['stage1'],
  stage1: { compute: tpu },
  sources: {
    code: { archive: 'gs://code-bucket/releases/recogdrive-1.tar.gz' },
    data: [
      { uri: 'gs://data-bucket/models/InternVL3-2B', path: 'models/InternVL3-2B' },
      { uri: 'gs://data-bucket/navsim/logs', path: 'data/navsim_logs', mode: 'mount' },
    ],
  },
};

function stage1Spec(input: Record<string, unknown>, codeVersion?: string): BringUpSpec | undefined {
  const config = parsePipelineInput(input);
  const launch = buildLaunchSpec(config, 'run-1', 'stage1', { stage1: `${config.artifactRoot}/runs/run-1/stage1` });
  return bringUpSpecFor(config, 'stage1', launch, DIGEST, codeVersion);
}

test('a cloud stage is brought up with its image by digest, its registry, declared code and data, and the buckets it writes', () => {
  const spec = stage1Spec(cloudInput, 'gs://code-bucket/releases/recogdrive-1.tar.gz md5=q83vEjRWeJA= generation=17')!;
  assert.equal(spec.image, `us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu@${DIGEST}`);
  assert.equal(spec.registry, 'us-east5-docker.pkg.dev');
  assert.equal(spec.repoDir, '/var/lib/recogdrive/repo');
  assert.deepEqual(spec.code, { kind: 'archive', uri: 'gs://code-bucket/releases/recogdrive-1.tar.gz', md5: 'q83vEjRWeJA=' });
  assert.deepEqual(spec.data, [
    { uri: 'gs://data-bucket/models/InternVL3-2B', dir: '/var/lib/recogdrive/repo/models/InternVL3-2B', mode: 'copy' },
    { uri: 'gs://data-bucket/navsim/logs', dir: '/var/lib/recogdrive/repo/data/navsim_logs', mode: 'mount' },
  ]);
  assert.deepEqual(spec.buckets, ['runs-bucket'], 'the output and markers live in the artifact bucket');
});

test('local and static stages have no bring-up: their machines are prepared by their owners', () => {
  assert.equal(stage1Spec({ ...cloudInput, artifactRoot: 'file:///tmp/a', gcp: undefined, stage1: {} }), undefined);
  assert.equal(stage1Spec({ ...cloudInput, stage1: { compute: { backend: 'static', hosts: [{ address: '10.0.0.1', user: 'me' }] } } }), undefined);
});

test('a VM logs in to the registry of its image, not to Docker Hub; a pinned image is pulled as given', () => {
  assert.equal(registryToLogIn('ubuntu:22.04'), undefined);
  assert.equal(registryToLogIn('library/ubuntu:22.04'), undefined);
  assert.equal(registryToLogIn('127.0.0.1:5000/recogdrive-tpu:stage1'), '127.0.0.1:5000');
  assert.equal(registryToLogIn('localhost/x:y'), 'localhost');
  const pinned = `us-east5-docker.pkg.dev/p/r/recogdrive-tpu@sha256:${'cd'.repeat(32)}`;
  assert.equal(stage1Spec({ ...cloudInput, images: { stage1: pinned } })!.image, pinned, 'the digest in the reference, not the one given beside it');
});

test('every bring-up script is valid bash, and the steps run in order: runtime, tools, login, image, code, data, bucket', () => {
  const spec = stage1Spec(cloudInput)!;
  const steps = bringUpSteps(spec);
  assert.deepEqual(
    steps.map((s) => s.name),
    ['runtime', 'tools', 'login', 'image', 'code', 'data', 'data', 'bucket'],
  );
  for (const step of steps) {
    const parsed = spawnSync('bash', ['-n'], { input: step.script, encoding: 'utf8' });
    assert.equal(parsed.status, 0, `${step.name}: ${parsed.stderr}`);
  }
  const git = bringUpSteps({ ...spec, code: { kind: 'git', url: 'https://example.com/recogdrive.git', commit: 'a'.repeat(40) }, data: [], buckets: [] });
  assert.deepEqual(git.map((s) => s.name), ['runtime', 'login', 'image', 'code'], 'no gcsfuse without a bucket or an archive');
  for (const step of git) assert.equal(spawnSync('bash', ['-n'], { input: step.script }).status, 0, step.name);
});

test('bucket mounts go where the launch expects them', () => {
  const steps = bringUpSteps(stage1Spec(cloudInput)!, (bucket) => `/srv/gcs/${bucket}`);
  assert.match(steps.at(-1)!.script, /gcsfuse .* runs-bucket \/srv\/gcs\/runs-bucket/);
});

test('a failing step names itself as permanent or transient on its last line, and secrets stay off the command line', () => {
  const spec = stage1Spec(cloudInput)!;
  const code = bringUpSteps({ ...spec, repoDir: '/nonexistent/recogdrive-test-checkout', code: undefined }).find((s) => s.name === 'code')!;
  const run = spawnSync('bash', ['-c', code.script.replace(/^state=.*$/m, 'state=$(mktemp -d)')], { encoding: 'utf8' });
  assert.equal(run.status, 3);
  assert.match(run.stdout.trim().split('\n').at(-1)!, /^recogdrive-bring-up: permanent: \/nonexistent\/recogdrive-test-checkout does not exist on the VM and the input declares no sources\.code/);
  const login = bringUpSteps(spec).find((s) => s.name === 'login')!.script;
  assert.match(login, /--password-stdin/);
  assert.doesNotMatch(login, /--password[= ]/, 'the token is piped, never an argument');
});

test('sources: declared code and data are validated at the edge', () => {
  const base = { ...cloudInput };
  const cases: Array<[unknown, string]> = [
    [{ code: { archive: 'gs://b/x.zip' } }, 'sources.code'],
    [{ code: { git: 'https://user:secret@example.com/r.git', commit: 'a'.repeat(40) } }, 'sources.code'],
    [{ code: { git: 'https://example.com/r.git', commit: 'main' } }, 'sources.code'],
    [{ data: [{ uri: 'gs://b/m', path: '/abs/path' }] }, 'sources.data.0.path'],
    [{ data: [{ uri: 'gs://b/m', path: 'models/../x' }] }, 'sources.data.0.path'],
    [{ data: [{ uri: 'https://b/m', path: 'models/x' }] }, 'sources.data.0.uri'],
    [{ data: [{ uri: 'gs://b/m', path: 'models' }, { uri: 'gs://b/n', path: 'models/x' }] }, 'sources.data'],
    [{ data: [{ uri: 'gs://b/m', path: 'models', mode: 'symlink' }] }, 'sources.data.0.mode'],
  ];
  for (const [sources, field] of cases) {
    const issues = inputIssues({ ...base, sources });
    assert.ok(issues.some((issue) => issue.startsWith(field)), `${JSON.stringify(sources)} → ${issues.join('; ')}`);
    assert.ok(!issues.join(' ').includes('secret'), 'the refused URL credentials are not echoed');
  }
});

test('what a stage reads is part of its fingerprint: the archive version, the commit, the data URIs; no sources leaves fingerprints as they were', () => {
  const config = parsePipelineInput(cloudInput);
  const digests = { [config.images.stage1]: DIGEST };
  const fp = (c: typeof config, codeVersion?: string) => planFingerprints(c, { imageDigests: digests, ...(codeVersion === undefined ? {} : { codeVersion }) }).stage1!.fingerprint;
  const v1 = fp(config, 'gs://code-bucket/releases/recogdrive-1.tar.gz md5=AAAA generation=1');
  assert.notEqual(v1, fp(config, 'gs://code-bucket/releases/recogdrive-1.tar.gz md5=BBBB generation=2'), 'a new archive generation');
  const otherData = parsePipelineInput({ ...cloudInput, sources: { ...cloudInput.sources, data: [{ uri: 'gs://data-bucket/models/InternVL3-8B', path: 'models/InternVL3-2B' }] } });
  assert.notEqual(v1, fp(otherData, 'gs://code-bucket/releases/recogdrive-1.tar.gz md5=AAAA generation=1'), 'another model');
  const mounted = parsePipelineInput({ ...cloudInput, sources: { ...cloudInput.sources, data: cloudInput.sources.data.map((d) => ({ ...d, mode: 'mount' })) } });
  assert.equal(v1, fp(mounted, 'gs://code-bucket/releases/recogdrive-1.tar.gz md5=AAAA generation=1'), 'copied or mounted, the same bytes');
  const git = (commit: string) => parsePipelineInput({ ...cloudInput, sources: { code: { git: 'https://example.com/r.git', commit } } });
  assert.notEqual(fp(git('a'.repeat(40))), fp(git('b'.repeat(40))));
  const plain = parsePipelineInput({ ...cloudInput, sources: undefined });
  const components = planFingerprints(plain, { imageDigests: digests }).stage1!.components!;
  assert.ok(!Object.keys(components).some((key) => key === 'code' || key.startsWith('data ')), 'no new components without sources');
});
