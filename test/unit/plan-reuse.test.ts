/** The planner's RUN/REUSE decisions from fingerprints: reuse, reruns, forced stages, the fan-in, and the reasons given. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePipelineInput, type PipelineConfig, type PipelineInputRaw } from '../../pipeline/input.ts';
import { fingerprintOf, stageComponents } from '../../pipeline/fingerprint.ts';
import { runRecordOf, type ArtifactRecord } from '../../pipeline/lineage.ts';
import { buildPlan, planFingerprints, type Plan, type PlanContext } from '../../pipeline/plan.ts';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';

const DIGESTS = {
  'registry.example/recogdrive-tpu:stage1': `sha256:${'1'.repeat(64)}`,
  'registry.example/recogdrive-tpu:unified': `sha256:${'2'.repeat(64)}`,
};

function config(extra: Partial<PipelineInputRaw> = {}, sections: Record<string, Record<string, unknown>> = {}): PipelineConfig {
  return parsePipelineInput({
    experiment: 'plan-test',
    artifactRoot: 'gs://bucket/root',
    paths: { hostRepoDir: '/home/me/recogdrive' },
    images: { stage1: 'registry.example/recogdrive-tpu:stage1', unified: 'registry.example/recogdrive-tpu:unified' },
    upstreamFixes: [...UPSTREAM_FIXES],
    ...sections,
    ...extra,
  });
}

/** Verified records for every stage of a plan, as a finished run would leave them. */
function verifiedOutputs(plan: Plan, runId = plan.runId): Partial<Record<StageName, ArtifactRecord>> {
  const out: Partial<Record<StageName, ArtifactRecord>> = {};
  for (const s of plan.stages) {
    if (s.fingerprint === undefined || s.components === undefined) continue;
    out[s.stage] = {
      schema: 1,
      stage: s.stage,
      fingerprint: s.fingerprint,
      uri: `gs://bucket/root/runs/${runId}/${s.stage}`,
      artifactRoot: 'gs://bucket/root',
      components: s.components,
      inputs: s.inputs ?? {},
      imageDigest: 'sha256:x',
      producer: { runId, workflowId: `${runId}/${s.stage}`, attempt: 1 },
      verifiedAt: '2026-12-01T00:00:00.000Z',
      manifest: { files: 1, bytes: 1, digest: `sha256:${'0'.repeat(64)}` },
      summary: {},
      samples: [],
    };
  }
  return out;
}

/** What a lookup would find for `next`: the records of `first` whose fingerprint `next` asks for. */
function lookupFor(next: PipelineConfig, first: Plan): PlanContext {
  const records = verifiedOutputs(first);
  const wanted = planFingerprints(next, { imageDigests: DIGESTS });
  const found: Partial<Record<StageName, ArtifactRecord>> = {};
  for (const stage of STAGES) {
    const record = records[stage];
    if (record !== undefined && record.fingerprint === wanted[stage]?.fingerprint) found[stage] = record;
  }
  return { imageDigests: DIGESTS, found, previous: runRecordOf(first, '2026-12-01T00:00:00.000Z') };
}

const decisions = (plan: Plan) => Object.fromEntries(plan.stages.map((s) => [s.stage, s.decision]));
const reasonOf = (plan: Plan, stage: StageName) => plan.stages.find((s) => s.stage === stage)!.reason;

const first = buildPlan(config(), 'run-1', { imageDigests: DIGESTS });

test('with nothing verified yet every selected stage runs, saying no output has its fingerprint', () => {
  assert.deepEqual(new Set(Object.values(decisions(first))), new Set(['RUN']));
  assert.match(reasonOf(first, 'stage2'), /no verified output with fingerprint [0-9a-f]{12}/);
  assert.equal(first.imagesResolved, true);
});

test('an unchanged input reuses every stage (nothing is run, nothing needs compute)', () => {
  const again = config();
  const plan = buildPlan(again, 'run-2', lookupFor(again, first));
  assert.deepEqual(new Set(Object.values(decisions(plan))), new Set(['REUSE']));
  assert.equal(plan.stages.find((s) => s.stage === 'stage2')!.artifactUri, 'gs://bucket/root/runs/run-1/stage2');
  assert.ok(plan.stages.every((s) => s.launch === undefined && s.compute === undefined));
  assert.match(reasonOf(plan, 'stage3'), /verified output of run run-1 \(attempt 1\)/);
});

test('a metric-cache change reruns metricCache, stage3, its export and eval and reuses stage1, featureCache, stage2 and its export (fan-in)', () => {
  const changed = config({}, { metricCache: { worker: 'single_machine_thread_pool' } });
  const plan = buildPlan(changed, 'run-2', lookupFor(changed, first));
  assert.deepEqual(decisions(plan), { stage1: 'REUSE', featureCache: 'REUSE', stage2: 'REUSE', stage2Export: 'REUSE', metricCache: 'RUN', stage3: 'RUN', stage3Export: 'RUN', eval: 'RUN' });
  assert.match(reasonOf(plan, 'metricCache'), /changed since run run-1: arg worker: ray_distributed_no_torch → single_machine_thread_pool/);
  assert.match(reasonOf(plan, 'stage3'), /metricCache output changed/);
  // stage3 reads the reused featureCache and stage2 export where run-1 wrote them, and the new metric cache.
  const mounts = plan.stages.find((s) => s.stage === 'stage3')!.launch!.mounts.map((m) => (m.source.kind === 'artifact' ? m.source.uri : ''));
  assert.ok(mounts.includes('gs://bucket/root/runs/run-1/featureCache'));
  assert.ok(mounts.includes('gs://bucket/root/runs/run-1/stage2Export'), mounts.join(' '));
  assert.ok(mounts.includes('gs://bucket/root/runs/run-2/metric-cache'));
});

test('a downstream parameter override (stage2 learning rate) leaves upstream stages reused', () => {
  const changed = config({}, { stage2: { learningRate: 5e-5 } });
  const plan = buildPlan(changed, 'run-2', lookupFor(changed, first));
  assert.deepEqual(decisions(plan), { stage1: 'REUSE', featureCache: 'REUSE', stage2: 'RUN', stage2Export: 'RUN', metricCache: 'REUSE', stage3: 'RUN', stage3Export: 'RUN', eval: 'RUN' });
  assert.match(reasonOf(plan, 'stage2'), /arg agent\.lr: 1e-4 → 5e-5/);
});

test('rerun from stage2 runs stage2 and everything downstream even though their fingerprints match', () => {
  const again = config({ reuse: { fromStage: 'stage2', rerunOf: 'run-1' } });
  const plan = buildPlan(again, 'run-2', lookupFor(again, first));
  assert.deepEqual(decisions(plan), { stage1: 'REUSE', featureCache: 'REUSE', stage2: 'RUN', stage2Export: 'RUN', metricCache: 'REUSE', stage3: 'RUN', stage3Export: 'RUN', eval: 'RUN' });
  assert.equal(reasonOf(plan, 'stage2'), 'rerun from stage2');
  assert.equal(reasonOf(plan, 'eval'), 'downstream of stage2, which reruns');
  assert.equal(plan.rerunOf, 'run-1');
});

test('a forced stage runs while the stages downstream of it keep their reuse', () => {
  const again = config({ reuse: { force: ['featureCache'] } });
  const plan = buildPlan(again, 'run-2', lookupFor(again, first));
  assert.deepEqual(decisions(plan), { stage1: 'REUSE', featureCache: 'RUN', stage2: 'REUSE', stage2Export: 'REUSE', metricCache: 'REUSE', stage3: 'REUSE', stage3Export: 'REUSE', eval: 'REUSE' });
  assert.equal(reasonOf(plan, 'featureCache'), 'forced (reuse.force)');
});

test('reuse policy "never" runs every selected stage', () => {
  const again = config({ reuse: { policy: 'never' } });
  const plan = buildPlan(again, 'run-2', lookupFor(again, first));
  assert.deepEqual(new Set(Object.values(decisions(plan))), new Set(['RUN']));
});

test('a stale verified output (deleted, rewritten) is run again, with the reason', () => {
  const again = config();
  const context = lookupFor(again, first);
  const found = { ...context.found };
  delete found.stage1;
  const plan = buildPlan(again, 'run-2', { ...context, found, stale: { stage1: 'gs://bucket/root/runs/run-1/stage1/DONE.json is gone' } });
  assert.equal(decisions(plan).stage1, 'RUN');
  assert.match(reasonOf(plan, 'stage1'), /DONE\.json is gone/);
  // stage1's fingerprint is unchanged, so its consumers still reuse theirs.
  assert.equal(decisions(plan).featureCache, 'REUSE');
});

test('each stage reuses exactly when a verified output has its fingerprint', () => {
  for (const stage of STAGES) {
    const again = config();
    const context = lookupFor(again, first);
    const found = { ...context.found };
    delete found[stage];
    const plan = buildPlan(again, 'run-2', { ...context, found });
    for (const s of plan.stages) assert.equal(s.decision, s.stage === stage ? 'RUN' : 'REUSE', `${stage} missing: ${s.stage}`);
  }
});

test('fingerprints cover image digests, config the stage reads and inputs, not compute or the run id', () => {
  const base = planFingerprints(config(), { imageDigests: DIGESTS });
  const otherDigest = planFingerprints(config(), { imageDigests: { ...DIGESTS, 'registry.example/recogdrive-tpu:unified': `sha256:${'3'.repeat(64)}` } });
  assert.equal(otherDigest.stage1!.fingerprint, base.stage1!.fingerprint);
  assert.notEqual(otherDigest.stage2!.fingerprint, base.stage2!.fingerprint);
  const otherCompute = planFingerprints(
    config({}, { stage2: { compute: { backend: 'static', hosts: [{ address: '10.0.0.5', user: 'me' }] }, maxAttempts: 7 } }),
    { imageDigests: DIGESTS },
  );
  assert.equal(otherCompute.stage2!.fingerprint, base.stage2!.fingerprint);
  const otherStage1 = planFingerprints(config({}, { stage1: { learningRate: 1e-5 } }), { imageDigests: DIGESTS });
  for (const stage of ['stage1', 'featureCache', 'stage2', 'stage3', 'eval'] as const) assert.notEqual(otherStage1[stage]!.fingerprint, base[stage]!.fingerprint, stage);
  assert.equal(otherStage1.metricCache!.fingerprint, base.metricCache!.fingerprint);
  assert.equal(buildPlan(config(), 'another-run', { imageDigests: DIGESTS }).stages[2]!.fingerprint, first.stages[2]!.fingerprint);
});

test('an expected-count change (the output check) changes the fingerprint of that stage', () => {
  const c = config({}, { featureCache: { expectedTokens: 100 } });
  const components = stageComponents(c, 'featureCache', DIGESTS['registry.example/recogdrive-tpu:stage1'], { stage1: 'sha256:x' });
  assert.match(components.check!, /"expectedTokens":100/);
  assert.notEqual(fingerprintOf('featureCache', components), planFingerprints(config(), { imageDigests: DIGESTS }).featureCache!.fingerprint);
});

test('a plan made without resolving images says so and still plans every stage', () => {
  const plan = buildPlan(config(), 'r');
  assert.equal(plan.imagesResolved, false);
  assert.match(plan.stages[0]!.components!.image!, /^unresolved registry\.example/);
});

test('reuse.fromStage and reuse.force must name selected stages', () => {
  assert.throws(() => config({ stages: ['metricCache'], reuse: { fromStage: 'stage2' } }), /reuse\.fromStage: stage2 is not in stages/);
  assert.throws(() => config({ stages: ['metricCache'], reuse: { force: ['metricCache', 'eval'] } }), /reuse\.force\.1: eval is not in stages/);
  assert.throws(() => config({ reuse: { rerunOf: 'a b' } }), /reuse\.rerunOf/);
});
