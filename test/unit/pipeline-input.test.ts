import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { inputIssues } from '../helpers/input-issues.ts';

/** Every stage, on a checkout that fixes every known upstream defect (pipeline-input-upstream.test.ts covers refusals). */
const minimal = { experiment: 'exp-1', artifactRoot: 'file:///tmp/artifacts', paths: { hostRepoDir: '/data/recogdrive' }, upstreamFixes: [...UPSTREAM_FIXES] };

const issuesOf = inputIssues;

test('a minimal input gets the TPU guide settings as defaults', () => {
  const config = parsePipelineInput(minimal);
  assert.deepEqual(config.stages, ['stage1', 'featureCache', 'stage2', 'stage2Export', 'metricCache', 'stage3', 'stage3Export', 'eval']);
  assert.equal(config.stage2.trainer, 'torchax');
  assert.equal(config.stage3.trainer, 'gpu');
  assert.equal(config.eval.trainer, 'gpu');
  // The local simulator plays one GPU for the stages the GPU scripts run.
  assert.deepEqual([config.stage2, config.stage3, config.eval].map((s) => s.compute.backend === 'local' && s.compute.simulate.gpus), [undefined, 1, 1]);
  assert.equal(config.stage1.learningRate, 4e-5);
  assert.equal(config.stage2.learningRate, 1e-4);
  assert.equal(config.stage2.ditType, 'small');
  assert.equal(config.stage2.vlmSize, 'small');
  assert.equal(config.stage2.samplingMethod, 'ddim');
  assert.equal(config.featureCache.batchSize, 4);
  assert.equal(config.images.unified, 'us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu:unified');
  assert.equal(config.stage1.compute.backend, 'local');
  assert.equal(config.orchestration.heartbeatTimeout, 120_000);
  assert.equal(config.stage3.timeout, 7 * 86_400_000);
});

test('a trailing slash on the artifact root is dropped so URIs never contain //', () => {
  assert.equal(parsePipelineInput({ ...minimal, artifactRoot: 'gs://bucket-name/some/prefix/' }).artifactRoot, 'gs://bucket-name/some/prefix');
});

const badInputs: Array<{ name: string; input: unknown; field: string }> = [
  { name: 'not an object', input: 'stage1', field: '(input)' },
  { name: 'unknown top-level key', input: { ...minimal, lr: 1 }, field: '(input): Unrecognized key: "lr"' },
  { name: 'unknown stage key', input: { ...minimal, stage2: { lr: 1 } }, field: 'stage2: Unrecognized key: "lr"' },
  { name: 'experiment with capitals', input: { ...minimal, experiment: 'My Exp' }, field: 'experiment' },
  { name: 'experiment with shell characters', input: { ...minimal, experiment: 'x;rm -rf /' }, field: 'experiment' },
  { name: 'missing host repo dir', input: { ...minimal, paths: {} }, field: 'paths.hostRepoDir' },
  { name: 'relative host repo dir', input: { ...minimal, paths: { hostRepoDir: 'data' } }, field: 'paths.hostRepoDir' },
  { name: 'path escaping with ..', input: { ...minimal, paths: { hostRepoDir: '/data/../etc' } }, field: 'paths.hostRepoDir' },
  { name: 'path with a colon (docker -v separator)', input: { ...minimal, paths: { hostRepoDir: '/data:/x' } }, field: 'paths.hostRepoDir' },
  { name: 'http artifact root', input: { ...minimal, artifactRoot: 'http://example.com/x' }, field: 'artifactRoot' },
  { name: 'relative file artifact root', input: { ...minimal, artifactRoot: 'file://relative' }, field: 'artifactRoot' },
  { name: 'unknown stage name', input: { ...minimal, stages: ['stage1', 'stage4'] }, field: 'stages.1' },
  { name: 'stage listed twice', input: { ...minimal, stages: ['stage1', 'stage1'] }, field: 'stages' },
  { name: 'empty stage list', input: { ...minimal, stages: [] }, field: 'stages' },
  {
    name: 'stage without its upstream',
    input: { ...minimal, stages: ['stage2'] },
    field: 'providedArtifacts.featureCache: stage2 reads the output of featureCache',
  },
  {
    name: 'a stage both run and provided',
    input: { ...minimal, stages: ['stage1'], providedArtifacts: { stage1: 'file:///x' } },
    field: 'providedArtifacts.stage1',
  },
  { name: 'negative learning rate', input: { ...minimal, stage2: { learningRate: -1 } }, field: 'stage2.learningRate' },
  { name: 'fractional epochs', input: { ...minimal, stage2: { epochs: 1.5 } }, field: 'stage2.epochs' },
  { name: 'unknown dit type', input: { ...minimal, stage2: { ditType: 'huge' } }, field: 'stage2.ditType' },
  { name: 'unknown sampling method', input: { ...minimal, stage3: { samplingMethod: 'euler' } }, field: 'stage3.samplingMethod' },
  { name: 'zero batch size', input: { ...minimal, featureCache: { batchSize: 0 } }, field: 'featureCache.batchSize' },
  { name: 'unknown backend', input: { ...minimal, stage1: { compute: { backend: 'aws' } } }, field: 'stage1.compute.backend' },
  {
    name: 'unknown accelerator',
    input: { ...minimal, gcp: { project: 'my-project' }, stage1: { compute: { backend: 'tpu-api', accelerator: 'v5p-8', zones: ['us-east5-b'] } } },
    field: 'stage1.compute.accelerator',
  },
  {
    name: 'empty zone list',
    input: { ...minimal, gcp: { project: 'my-project' }, stage1: { compute: { backend: 'tpu-api', accelerator: 'v6e-4', zones: [] } } },
    field: 'stage1.compute.zones',
  },
  {
    name: 'malformed zone',
    input: { ...minimal, gcp: { project: 'my-project' }, stage1: { compute: { backend: 'tpu-api', accelerator: 'v6e-4', zones: ['east'] } } },
    field: 'stage1.compute.zones.0',
  },
  {
    name: 'TPU without a project',
    input: { ...minimal, stage1: { compute: { backend: 'tpu-api', accelerator: 'v6e-4', zones: ['us-east5-b'] } } },
    field: 'gcp.project: stage1 runs on tpu-api, which needs gcp.project',
  },
  { name: 'malformed project', input: { ...minimal, gcp: { project: 'My_Project!' } }, field: 'gcp.project' },
  { name: 'image with spaces', input: { ...minimal, images: { stage1: 'my image:latest' } }, field: 'images.stage1' },
  { name: 'override key not on the allow-list', input: { ...minimal, stage2: { overrides: { output_dir: '/tmp' } } }, field: 'stage2.overrides.output_dir' },
  { name: 'override value with a quote', input: { ...minimal, stage2: { overrides: { seed: "1' x=2" } } }, field: 'stage2.overrides.seed' },
  { name: 'override value with an interpolation', input: { ...minimal, stage2: { overrides: { seed: '${oc.env:HOME}' } } }, field: 'stage2.overrides.seed' },
  { name: 'override value with a newline', input: { ...minimal, stage2: { overrides: { seed: '1\n2' } } }, field: 'stage2.overrides.seed' },
  { name: 'env replacing a contract variable', input: { ...minimal, stage2: { env: { PYTHONPATH: '/x' } } }, field: 'stage2.env.PYTHONPATH' },
  { name: 'env setting a stage wrapper variable', input: { ...minimal, stage2: { env: { RECOGDRIVE_OUTPUT_DIR: '/x' } } }, field: 'stage2.env.RECOGDRIVE_OUTPUT_DIR' },
  { name: 'env setting any RECOGDRIVE_ name', input: { ...minimal, eval: { env: { RECOGDRIVE_ANYTHING: '1' } } }, field: 'eval.env.RECOGDRIVE_ANYTHING' },
  { name: 'duration that is not one', input: { ...minimal, stage1: { timeout: 'forever' } }, field: 'stage1.timeout' },
  { name: 'fault kind unknown', input: { ...minimal, stage1: { compute: { backend: 'local', simulate: { fault: { kind: 'explode' } } } } }, field: 'stage1.compute.simulate.fault.kind' },
];

for (const { name, input, field } of badInputs) {
  test(`rejects ${name}, naming ${field.split(':')[0]}`, () => {
    const issues = issuesOf(input);
    assert.ok(
      issues.some((issue) => issue.startsWith(field)),
      `no issue starts with "${field}": ${JSON.stringify(issues)}`,
    );
  });
}

test('override values with shell metacharacters are accepted: they are never evaluated', () => {
  const config = parsePipelineInput({ ...minimal, stage2: { overrides: { seed: '; touch pwned `id` $(id)' } } });
  assert.equal(config.stage2.overrides.seed, '; touch pwned `id` $(id)');
});

test('a RECOGDRIVE_ env name is refused with a message saying the prefix is reserved; the simulator\'s RECOGDRIVE_SIM_ controls are accepted', () => {
  const issues = issuesOf({ ...minimal, stage1: { env: { RECOGDRIVE_STAGE: 'eval' } } });
  assert.ok(
    issues.some((issue) => issue.startsWith('stage1.env.RECOGDRIVE_STAGE') && issue.includes('names starting with RECOGDRIVE_ are reserved')),
    JSON.stringify(issues),
  );
  const config = parsePipelineInput({ ...minimal, stage1: { env: { RECOGDRIVE_SIM_DURATION_MS: '300', XLA_FLAGS: '--x' } } });
  assert.deepEqual(config.stage1.env, { RECOGDRIVE_SIM_DURATION_MS: '300', XLA_FLAGS: '--x' });
});

test('every problem of an input is reported at once', () => {
  const issues = issuesOf({ ...minimal, experiment: 'A', artifactRoot: 'x', stage2: { epochs: 0 } });
  assert.ok(issues.length >= 3, JSON.stringify(issues));
});
