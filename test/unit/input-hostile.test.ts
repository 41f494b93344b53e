/**
 * Hostile pipeline inputs, table-driven: numbers and durations beyond sense, prototype keys,
 * option-like override values, worker-host paths that are never sensible. Each is refused at
 * validation naming the field and the bound; the same inputs replay untouched for runs started
 * before the limits (limits: false).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidPipelineInput, parsePipelineInput } from '../../pipeline/input.ts';
import { jsonDocumentProblem, prototypeKeyPaths } from '../../pipeline/safe-keys.ts';
import { hfOverrides } from '../../pipeline/contracts/args.ts';
import { argumentComponents } from '../../pipeline/fingerprint.ts';
import { buildPlan } from '../../pipeline/plan.ts';
import { stageCommand } from '../../pipeline/launch.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { formatDuration, parseDuration } from '../../pipeline/duration.ts';
import { ContainerFs } from '../../docker/simulator/container-fs.ts';
import { HfArgs } from '../../docker/simulator/hf-args.ts';
import { MountTable } from '../../docker/simulator/paths.ts';
import { inputIssues } from '../helpers/input-issues.ts';

const minimal = { experiment: 'exp-1', artifactRoot: 'file:///tmp/artifacts', paths: { hostRepoDir: '/data/recogdrive' }, upstreamFixes: [...UPSTREAM_FIXES] };
const tpu = { backend: 'tpu-api', accelerator: 'v6e-4', zones: ['us-east5-b'] };

const issuesOf = inputIssues;

const REFUSED: Array<{ name: string; input: Record<string, unknown>; issue: RegExp }> = [
  { name: '1e9 Stage 1 epochs', input: { stage1: { epochs: 1e9 } }, issue: /^stage1\.epochs: at most 1,000 epochs$/ },
  { name: '1e9 Stage 2 batch size', input: { stage2: { batchSize: 1e9 } }, issue: /^stage2\.batchSize: at most 4,096 samples$/ },
  { name: 'a huge per-device batch', input: { stage1: { perDeviceBatchSize: 2 ** 40 } }, issue: /^stage1\.perDeviceBatchSize: at most 4,096/ },
  { name: 'a 1e9 sequence length', input: { stage1: { maxSeqLength: 1e9 } }, issue: /^stage1\.maxSeqLength: at most 131,072 tokens$/ },
  { name: 'Stage 3 epochs', input: { stage3: { epochs: 5000 } }, issue: /^stage3\.epochs: at most 1,000 epochs$/ },
  { name: 'feature cache DataLoader workers', input: { featureCache: { numWorkers: 1000 } }, issue: /^featureCache\.numWorkers: at most 64 DataLoader workers$/ },
  { name: 'expected tokens', input: { eval: { expectedTokens: 1e12 } }, issue: /^eval\.expectedTokens: at most 10,000,000 tokens$/ },
  { name: 'a timeout of 10^20 days', input: { stage2: { timeout: '100000000000000000000 days' } }, issue: /^stage2\.timeout: at most 30 days$/ },
  { name: 'a timeout of 31 days in milliseconds', input: { stage2: { timeout: 31 * 86_400_000 } }, issue: /^stage2\.timeout: at most 30 days$/ },
  { name: 'a 1 ms hang timeout', input: { metricCache: { hangTimeout: 1 } }, issue: /^metricCache\.hangTimeout: at least 1 second$/ },
  { name: 'a 30 s hang timeout on cloud compute', input: { gcp: { project: 'my-project' }, stage2: { compute: tpu, hangTimeout: '30s' } }, issue: /^stage2\.hangTimeout: at least 1 minute on cloud compute$/ },
  { name: 'a hang timeout of a month', input: { stage2: { hangTimeout: '30 days' } }, issue: /^stage2\.hangTimeout: at most 7 days$/ },
  { name: 'a 10 ms poll interval', input: { orchestration: { pollInterval: '10ms' } }, issue: /^orchestration\.pollInterval: at least 1 second$/ },
  { name: 'a heartbeat timeout of a week', input: { orchestration: { heartbeatTimeout: '7 days' } }, issue: /^orchestration\.heartbeatTimeout: at most 1 hour$/ },
  { name: 'a progress interval of 100 ms', input: { orchestration: { progressInterval: 100 } }, issue: /^orchestration\.progressInterval: at least 1 second$/ },
  { name: 'a failover back-off of a year', input: { gcp: { project: 'my-project' }, stage2: { compute: { ...tpu, failover: { backoff: '365 days', backoffMax: '365 days' } } } }, issue: /^stage2\.compute\.failover\.backoff: at most 1 day$/ },
  { name: 'a back-off maximum below the back-off', input: { gcp: { project: 'my-project' }, stage2: { compute: { ...tpu, failover: { backoff: '10 minutes', backoffMax: '1 minute' } } } }, issue: /^stage2\.compute\.failover\.backoffMax: at least backoff \(10 minutes\)$/ },
  { name: 'a health check every millisecond', input: { gcp: { project: 'my-project' }, stage2: { compute: { ...tpu, failover: { healthCheckInterval: 1 } } } }, issue: /^stage2\.compute\.failover\.healthCheckInterval: at least 1 second$/ },
  { name: 'a Stage 1 override value that is an option', input: { stage1: { overrides: { freeze_llm: '--output_dir=/etc' } } }, issue: /^stage1\.overrides\.freeze_llm: a string value may not start with "-"/ },
  { name: 'a Stage 1 override value that is a short option', input: { stage1: { overrides: { seed: '-h' } } }, issue: /^stage1\.overrides\.seed: a string value may not start with "-"/ },
  { name: 'artifactRoot file:///.', input: { artifactRoot: 'file:///.' }, issue: /^artifactRoot: must not contain "\." or "\.\." segments$/ },
  { name: 'artifactRoot with a dot segment', input: { artifactRoot: 'file:///tmp/./artifacts' }, issue: /^artifactRoot: must not contain "\." or "\.\." segments$/ },
  { name: 'a gs:// prefix with a dot segment', input: { artifactRoot: 'gs://bucket-name/./x' }, issue: /^artifactRoot: must not contain "\." or "\.\." segments$/ },
  { name: 'hostRepoDir /', input: { paths: { hostRepoDir: '/' } }, issue: /^paths\.hostRepoDir: must not be the file system root$/ },
  { name: 'hostRepoDir //', input: { paths: { hostRepoDir: '//' } }, issue: /^paths\.hostRepoDir: must not be the file system root$/ },
  { name: 'hostRepoDir with a dot segment', input: { paths: { hostRepoDir: '/data/./recogdrive' } }, issue: /^paths\.hostRepoDir: must not contain "\." or "\.\." segments$/ },
  { name: 'hostRepoDir with an empty segment', input: { paths: { hostRepoDir: '/data//recogdrive' } }, issue: /^paths\.hostRepoDir: must not contain empty segments/ },
  { name: 'a provided artifact at file:///.', input: { stages: ['stage2'], providedArtifacts: { featureCache: 'file:///.' } }, issue: /^providedArtifacts\.featureCache: must not contain "\." or "\.\." segments$/ },
  { name: 'a 100k-character model path', input: { paths: { hostRepoDir: '/data/recogdrive', model: `m/${'a'.repeat(100_000)}` } }, issue: /^paths\.model: at most 1024 characters$/ },
  { name: 'a 10k-character experiment name for the cache', input: { featureCache: { experimentName: 'x'.repeat(10_000) } }, issue: /^featureCache\.experimentName: at most 4096 characters$/ },
  { name: 'an over-long override value gets its own reason', input: { stage2: { overrides: { seed: 'x'.repeat(300) } } }, issue: /^stage2\.overrides\.seed: override values are at most 256 characters$/ },
  { name: 'too many static hosts', input: { stage2: { compute: { backend: 'static', hosts: Array.from({ length: 300 }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}`, user: 'u' })) } } }, issue: /^stage2\.compute\.hosts: at most 256 hosts$/ },
];

for (const { name, input, issue } of REFUSED) {
  test(`refused naming the field and the bound: ${name}`, () => {
    const issues = issuesOf({ ...minimal, ...input });
    assert.ok(issues.some((i) => issue.test(i)), `issues: ${JSON.stringify(issues)}`);
  });
}

test('the limits are not applied to runs started before them (the workflow replays with limits: false)', () => {
  const config = parsePipelineInput({ ...minimal, stage1: { epochs: 1e9, overrides: { freeze_llm: '--x' } }, metricCache: { hangTimeout: 1 } }, { limits: false });
  assert.equal(config.stage1.epochs, 1e9);
});

test('values inside the bounds, and the short timings tests use on local and static machines, are accepted', () => {
  const config = parsePipelineInput({
    ...minimal,
    stage1: { epochs: 1000, perDeviceBatchSize: 4096, overrides: { seed: -1, freeze_llm: true, max_steps: 10 } },
    stage3: { epochs: 1000, batchSize: 4096 },
    metricCache: { hangTimeout: '1500ms', timeout: '3 seconds' },
    stage2: { compute: { backend: 'static', hosts: [{ address: '10.0.0.5', user: 'ubuntu' }] }, hangTimeout: '3 seconds', timeout: '30 days' },
    orchestration: { heartbeatTimeout: '3 seconds', progressInterval: '1 second', pollInterval: '1 second' },
  });
  assert.equal(config.metricCache.hangTimeout, 1500);
  assert.equal(config.stage2.timeout, 30 * 86_400_000);
});

test('hydra stages keep override strings that start with "-": each is one quoted key=value element', () => {
  const config = parsePipelineInput({ ...minimal, stages: ['metricCache'], metricCache: { overrides: { 'worker.threads_per_node': '-4' } } });
  const command = buildPlan(config, 'r').stages.find((s) => s.stage === 'metricCache')!.launch!.command;
  assert.ok(command.includes("worker.threads_per_node='-4'"));
});

const PROTOTYPE_INPUTS: Array<{ name: string; json: string; path: string }> = [
  { name: '__proto__ as an env name', json: '{"stage1": {"env": {"__proto__": "x", "XLA_FLAGS": "--a"}}}', path: 'stage1.env.__proto__' },
  { name: '__proto__ holding an override', json: '{"stage1": {"overrides": {"__proto__": {"freeze_llm": "--output_dir=/x"}}}}', path: 'stage1.overrides.__proto__' },
  { name: '__proto__ as a provided stage', json: '{"providedArtifacts": {"__proto__": "file:///tmp/y"}}', path: 'providedArtifacts.__proto__' },
  { name: 'constructor at the top', json: '{"constructor": {"prototype": 1}}', path: 'constructor' },
  { name: 'prototype in a stage', json: '{"stage2": {"prototype": {}}}', path: 'stage2.prototype' },
];

for (const { name, json, path } of PROTOTYPE_INPUTS) {
  test(`a prototype key is refused by its path, not silently dropped: ${name}`, () => {
    const issues = issuesOf({ ...minimal, ...(JSON.parse(json) as object) });
    assert.ok(issues.includes(`${path}: keys named __proto__, constructor or prototype are not allowed`), `issues: ${JSON.stringify(issues)}`);
  });
}

test('Stage 1 overrides are one --key=value element each, so a value never becomes an argument of its own', () => {
  assert.deepEqual(hfOverrides({ freeze_llm: true, max_steps: 10, seed: -1, vision_select_layer: 'x y' }), [
    '--freeze_llm=True',
    '--max_steps=10',
    '--seed=-1',
    '--vision_select_layer=x y',
  ]);
  const config = parsePipelineInput({ ...minimal, stages: ['stage1'], stage1: { overrides: { freeze_llm: true, max_steps: 10 } } });
  const command = stageCommand(buildPlan(config, 'r').stages.find((s) => s.stage === 'stage1')!.launch!);
  assert.deepEqual(command.slice(-2), ['--freeze_llm=True', '--max_steps=10']);
  assert.equal(command.filter((a) => a === '--output_dir').length, 1);
});

test('the simulated HfArgumentParser reads --key=value as argparse does: the whole rest is the value, never another option', () => {
  const fs = new ContainerFs(new MountTable([], '/recogdrive'), { writes: false });
  const parse = (args: string[]) => HfArgs.parse(args, fs, 'internvl_chat_finetune_torchax.py', '/recogdrive/script.py');
  const args = parse(['--output_dir', '/o', '--max_steps=10', '--freeze_llm=True', '--vision_select_layer=-1']);
  assert.deepEqual([args.int('max_steps'), args.bool('freeze_llm'), args.int('vision_select_layer'), args.required('output_dir')], [10, true, -1, '/o']);
  // The old two-element rendering let a value become an option; the = form makes it a (bad) bool value.
  assert.equal(parse(['--output_dir', '/o', '--freeze_llm', '--output_dir=/etc']).required('output_dir'), '/etc');
  assert.throws(() => parse(['--output_dir', '/o', '--freeze_llm=--output_dir=/etc']), /Truthy value expected: got --output_dir=\/etc/);
});

test('an override in --key=value form fingerprints as the same component as --key value (equal runs stay reusable)', () => {
  assert.deepEqual(argumentComponents(['--a', '1', '--freeze_llm=True', '--max_steps=10']), { 'arg --a': '1', 'arg --freeze_llm': 'True', 'arg --max_steps': '10' });
  assert.deepEqual(argumentComponents(['--freeze_llm', 'True']), argumentComponents(['--freeze_llm=True']));
});

test('durations are written in the largest unit that divides them, for bound messages', () => {
  assert.deepEqual([DAY, 30 * DAY, MINUTE, 90 * 1000, 1500].map(formatDuration), ['1 day', '30 days', '1 minute', '90 seconds', '1500 ms']);
  assert.equal(parseDuration('100000000000000000000 days')! > 30 * DAY, true);
});
const MINUTE = 60_000;
const DAY = 86_400_000;

test('a document nested 100k levels deep is refused by name, without exhausting the stack', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  assert.match(jsonDocumentProblem(deep, 'overrides.json') ?? '', /^overrides\.json nests deeper than 32 levels/);
  assert.deepEqual(prototypeKeyPaths(deep), []);
  assert.throws(() => parsePipelineInput(deep), InvalidPipelineInput);
});

test('a scheduled run id (with its timestamp colons) is a valid rerunOf', () => {
  const config = parsePipelineInput({
    experiment: 'nightly',
    artifactRoot: 'file:///tmp/a',
    paths: { hostRepoDir: '/data/r' },
    stages: ['metricCache'],
    reuse: { rerunOf: 'nightly-2026-01-01T02:30:00Z' },
  });
  assert.equal(config.reuse.rerunOf, 'nightly-2026-01-01T02:30:00Z');
});
