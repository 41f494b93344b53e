/**
 * Reuse and partial reruns end to end on the embedded default, against a real Temporal server:
 * what actually ran is read from Temporal (which stage workflows exist) and from the artifact
 * store, not from the plan.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';
import { LineageStore } from '../../activities/lineage/lineage-store.ts';
import type { PipelineInputRaw } from '../../pipeline/input.ts';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { assertNothingLeaked, stageWorkflowsOf } from '../helpers/assertions.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
const lineage = new LineageStore(() => new FileArtifactStore());
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

/** The input with reuse on (the product default; the test helper turns it off for other tests). */
function reusingInput(reuse: PipelineInputRaw['reuse'] = {}, sections: Record<string, Record<string, unknown>> = {}): PipelineInputRaw {
  const input = env.input({ durationMs: 200, reuse: { policy: 'verified', ...reuse } }) as unknown as Record<string, unknown>;
  for (const [stage, extra] of Object.entries(sections)) input[stage] = { ...(input[stage] as object), ...extra };
  return input as unknown as PipelineInputRaw;
}

/** The stages of a run that had a stage workflow, i.e. that ran. */
const stagesThatRan = (runId: string): Promise<StageName[]> => stageWorkflowsOf(env, runId);

/** `recogdrive ...` as a separate process against this test's server: exit code and output. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

async function run(runId: string, input: PipelineInputRaw): Promise<RunSummary> {
  return (await (await env.start(runId, input)).result()) as RunSummary;
}

const decisions = (summary: RunSummary) => Object.fromEntries(summary.stages.map((s) => [s.stage, s.decision]));
const uriOf = (summary: RunSummary, stage: StageName) => summary.stages.find((s) => s.stage === stage)!.artifactUri!;
const artifactRoot = () => `file://${join(env.dataDir, 'artifacts')}`;

let source: RunSummary;

test('a first run runs every stage and records each verified output with its lineage', async () => {
  source = await run('rerun-source', reusingInput());
  assert.deepEqual(new Set(Object.values(decisions(source))), new Set(['RUN']));
  assert.deepEqual(await stagesThatRan('rerun-source'), [...STAGES]);
  const stage3 = await lineage.producedBy(uriOf(source, 'stage3'));
  assert.ok(stage3 !== undefined, 'stage3 has a lineage record');
  assert.equal(stage3.producer.runId, 'rerun-source');
  assert.deepEqual(Object.keys(stage3.inputs).sort(), ['featureCache', 'metricCache', 'stage2Export']);
  assert.equal(stage3.inputs.stage2Export!.uri, uriOf(source, 'stage2Export'));
  assert.ok(stage3.manifest.files > 0);
  assert.match(stage3.imageDigest, /^sha256:[0-9a-f]{64}$/);
});

test('the same input again reuses every stage: no stage workflow, no compute, the status says reused', async () => {
  const handle = await env.start('rerun-nothing-changed', reusingInput());
  const summary = (await handle.result()) as RunSummary;
  assert.deepEqual(new Set(Object.values(decisions(summary))), new Set(['REUSE']));
  assert.deepEqual(await stagesThatRan('rerun-nothing-changed'), []);
  for (const stage of STAGES) assert.equal(uriOf(summary, stage), uriOf(source, stage));
  const status = await handle.query(runStatusQuery);
  assert.ok(status.stages.every((s) => s.state === 'reused' && /verified output of run rerun-source/.test(s.reason ?? '')));
  // Nothing was written under the new run's folder: reuse copies no bytes.
  const runFolders = await readdir(join(env.dataDir, 'artifacts', 'runs'));
  assert.ok(!runFolders.includes('rerun-nothing-changed'), runFolders.join(', '));
  await assertNothingLeaked(env);
});

test('a metric-cache change reruns only metricCache, stage3, its export and eval, reading the reused upstream outputs', async () => {
  const summary = await run('rerun-metric', reusingInput({ rerunOf: 'rerun-source' }, { metricCache: { worker: 'single_machine_thread_pool' } }));
  assert.deepEqual(await stagesThatRan('rerun-metric'), ['metricCache', 'stage3', 'stage3Export', 'eval']);
  assert.deepEqual(decisions(summary), {
    stage1: 'REUSE',
    featureCache: 'REUSE',
    stage2: 'REUSE',
    stage2Export: 'REUSE',
    metricCache: 'RUN',
    stage3: 'RUN',
    stage3Export: 'RUN',
    eval: 'RUN',
  });
  assert.match(summary.stages.find((s) => s.stage === 'metricCache')!.reason!, /changed since run rerun-source: arg worker/);
  assert.equal(summary.rerunOf, 'rerun-source');

  const stage3 = await lineage.producedBy(uriOf(summary, 'stage3'));
  assert.equal(stage3!.inputs.featureCache!.uri, uriOf(source, 'featureCache'));
  assert.equal(stage3!.inputs.stage2Export!.uri, uriOf(source, 'stage2Export'));
  assert.equal(stage3!.inputs.metricCache!.uri, uriOf(summary, 'metricCache'));

  // "Which runs used the source's feature cache": the reuse run and this rerun's stage3.
  const record = await lineage.producedBy(uriOf(source, 'featureCache'));
  const users = await lineage.usedBy(artifactRoot(), record!.fingerprint);
  const uses = users.map((u) => `${u.runId}:${u.stage}:${u.use}`);
  for (const expected of ['rerun-source:stage2:input', 'rerun-source:stage3:input', 'rerun-nothing-changed:featureCache:reuse', 'rerun-metric:stage3:input']) {
    assert.ok(uses.includes(expected), `${expected} in ${uses.join(', ')}`);
  }
  await assertNothingLeaked(env);
});

test('rerun from stage2 runs stage2 and its descendants and reuses the rest', async () => {
  await run('rerun-from-stage2', reusingInput({ rerunOf: 'rerun-source', fromStage: 'stage2' }));
  assert.deepEqual(await stagesThatRan('rerun-from-stage2'), ['stage2', 'stage2Export', 'stage3', 'stage3Export', 'eval']);
});

test('a verified output that was deleted afterwards is not reused: its stage runs again', async () => {
  // Delete the source run's whole stage1 checkpoint folder; its markers (beside it) stay.
  const stage1Dir = uriOf(source, 'stage1').slice('file://'.length);
  for (const entry of await readdir(stage1Dir)) await rm(join(stage1Dir, entry), { recursive: true, force: true });
  const summary = await run('rerun-after-delete', reusingInput());
  assert.deepEqual(await stagesThatRan('rerun-after-delete'), ['stage1']);
  assert.match(summary.stages.find((s) => s.stage === 'stage1')!.reason!, /can no longer be reused: .* missing/);
});

test('a rerun of an unknown run fails before any stage starts', async () => {
  const handle = await env.start('rerun-of-nothing', reusingInput({ rerunOf: 'no-such-run' }));
  await assert.rejects(handle.result(), (error: Error) => /no-such-run has no record/.test(String((error as { cause?: Error }).cause?.message)));
  assert.deepEqual(await stagesThatRan('rerun-of-nothing'), []);
});

test('a provided Stage 2 export without its torch file (the GRPO reference) fails the run before stage3 starts', async () => {
  // A hand-made copy of the source's stage2Export output (its markers are beside the original, not copied), missing policy.pt.
  const copy = join(env.dataDir, 'handmade-stage2-export');
  await cp(uriOf(source, 'stage2Export').slice('file://'.length), copy, { recursive: true });
  await rm(join(copy, 'policy.pt'));
  const input = reusingInput() as unknown as Record<string, unknown>;
  input.stages = ['stage3'];
  input.providedArtifacts = { featureCache: uriOf(source, 'featureCache'), metricCache: uriOf(source, 'metricCache'), stage2Export: `file://${copy}` };
  const handle = await env.start('rerun-bad-provided', input);
  await assert.rejects(handle.result(), (error: Error) => {
    const cause = (error as { cause?: Error & { type?: string } }).cause;
    return cause?.type === 'StageInputInvalid' && /providedArtifacts\.stage2Export .*policy\.pt is missing/.test(cause.message);
  });
  assert.deepEqual(await stagesThatRan('rerun-bad-provided'), []);
});

test('the CLI answers what produced an artifact and which runs used it, and plans with reuse', async () => {
  const featureCache = uriOf(source, 'featureCache');
  const produced = JSON.parse((await cli('lineage', 'produced-by', featureCache, '--json')).stdout) as { producer: { runId: string }; inputs: Record<string, unknown> };
  assert.equal(produced.producer.runId, 'rerun-source');
  assert.deepEqual(Object.keys(produced.inputs), ['stage1']);
  const human = (await cli('lineage', 'used-by', featureCache)).stdout;
  assert.match(human, /rerun-nothing-changed\s+featureCache\s+reused it/);
  assert.match(human, /rerun-metric\s+stage3\s+read it/);

  const inputFile = join(env.dataDir, 'plan-input.json');
  await writeFile(inputFile, JSON.stringify(reusingInput({}, { stage3: { learningRate: 5e-5 } })));
  const plan = JSON.parse((await cli('plan', '--input', inputFile, '--lookup', '--json')).stdout) as { stages: Array<{ stage: string; decision: string; reason: string }> };
  const byStage = Object.fromEntries(plan.stages.map((s) => [s.stage, s]));
  assert.equal(byStage.stage2!.decision, 'REUSE');
  assert.equal(byStage.stage3!.decision, 'RUN');
  assert.equal(byStage.eval!.decision, 'RUN');
  const missing = await cli('lineage', 'produced-by', `file://${env.dataDir}/nothing-here`);
  assert.equal(missing.code, 4, 'not found');
  assert.match(missing.stderr, /has no lineage record/);
});

test('recogdrive rerun shows the plan, then starts a rerun that runs only what the plan said', async () => {
  const overrides = join(env.dataDir, 'rerun-overrides.json');
  await writeFile(overrides, JSON.stringify({ stage3: { learningRate: 5e-5 } }));

  const dry = await cli('rerun', 'rerun-source', '--overrides', overrides, '--dry-run', '--json');
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { stages: Array<{ stage: string; decision: string; reason: string }> };
  assert.deepEqual(plan.stages.filter((s) => s.decision === 'RUN').map((s) => s.stage), ['stage3', 'stage3Export', 'eval']);
  assert.match(plan.stages.find((s) => s.stage === 'stage3')!.reason, /changed since run rerun-source: arg agent\.lr: 1e-4 → 5e-5/);

  const started = await cli('rerun', 'rerun-source', '--overrides', overrides, '--run-id', 'rerun-by-cli', '--wait', '--json');
  assert.equal(started.code, 0, started.stderr);
  assert.deepEqual(await stagesThatRan('rerun-by-cli'), ['stage3', 'stage3Export', 'eval']);
  assert.equal((JSON.parse(started.stdout) as RunSummary).rerunOf, 'rerun-source');

  assert.equal((await cli('rerun', 'rerun-source', '--from', 'nosuch')).code, 2);
  const unknown = await cli('rerun', 'no-such-source', '--dry-run');
  assert.equal(unknown.code, 4, 'not found');
  assert.match(unknown.stderr, /no-such-source/);
});
