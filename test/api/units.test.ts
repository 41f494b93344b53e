/** The API's pure parts: plan tokens, the rerun input, list queries, TPU-hour estimates, the tokens file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parsePipelineInput } from '../../pipeline/input.ts';
import type { PlannedStage } from '../../pipeline/plan.ts';
import { authenticate } from '../../workers/api/auth.ts';
import { parseTokens } from '../../workers/api/config.ts';
import { chipsOf, estimateTpuHours, totalTpuHours, tpuHoursSoFar } from '../../workers/api/estimate.ts';
import { planToken, rerunId, sameToken, type PlanFacts } from '../../workers/api/plan-token.ts';
import { rerunInput } from '../../workers/rerun-input.ts';
import { idempotentRunId, legacyIdempotentRunId, listQuery } from '../../workers/api/routes-runs.ts';
import { RUN_ID_MAX_LENGTH, runIdProblem } from '../../pipeline/naming.ts';
import { bodyProblem, MAX_BODY_DEPTH } from '../../workers/api/json-body.ts';
import { loggableUrl } from '../../workers/api/request-log.ts';

const facts: PlanFacts = {
  source: 'exp-1',
  input: { experiment: 'exp', stage2: { learningRate: 1e-4, epochs: 2 } },
  stages: [
    { stage: 'stage1', decision: 'REUSE', fingerprint: 'sha256:aa' },
    { stage: 'stage2', decision: 'RUN', fingerprint: 'sha256:bb' },
  ],
};

test('a plan token is stable for the same plan (key order aside) and changes with the source, the input, any decision or fingerprint, and the secret', () => {
  const token = planToken('secret', facts);
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(planToken('secret', { ...facts, input: { stage2: { epochs: 2, learningRate: 1e-4 }, experiment: 'exp' } }), token);
  const variants: PlanFacts[] = [
    { ...facts, source: 'exp-2' },
    { ...facts, input: { ...facts.input as object, experiment: 'other' } },
    { ...facts, stages: [facts.stages[0]!, { ...facts.stages[1]!, decision: 'REUSE' }] },
    { ...facts, stages: [{ ...facts.stages[0]!, fingerprint: 'sha256:ab' }, facts.stages[1]!] },
  ];
  for (const variant of variants) assert.notEqual(planToken('secret', variant), token);
  assert.notEqual(planToken('other secret', facts), token);
  assert.ok(sameToken(token, planToken('secret', facts)));
  assert.ok(!sameToken(token, token.slice(1)));
  assert.match(rerunId('exp-1', token), /^exp-1-rerun-[0-9a-f]{16}$/);
  assert.equal(rerunId('exp-1', token), rerunId('exp-1', token));
});

test('the rerun input is the source input merge-patched with the overrides (objects merge, arrays replace, null removes) and the rerun\'s reuse', () => {
  const source = {
    experiment: 'exp',
    stages: ['stage1', 'featureCache', 'stage2'],
    stage2: { learningRate: 1e-4, epochs: 2, env: { XLA_FLAGS: '--a' } },
    reuse: { policy: 'never' },
  };
  const merged = rerunInput('exp-1', source, {
    fromStage: 'stage2',
    force: ['featureCache'],
    overrides: { stages: ['stage1', 'featureCache', 'stage2', 'metricCache'], stage2: { learningRate: 5e-5, env: null } },
  });
  assert.deepEqual(merged, {
    experiment: 'exp',
    stages: ['stage1', 'featureCache', 'stage2', 'metricCache'],
    stage2: { learningRate: 5e-5, epochs: 2 },
    reuse: { policy: 'verified', rerunOf: 'exp-1', fromStage: 'stage2', force: ['featureCache'] },
  });
  assert.deepEqual(source.stage2.env, { XLA_FLAGS: '--a' }, 'the source input is not modified');
  assert.throws(() => rerunInput('exp-1', source, { overrides: { reuse: { policy: 'never' } } }), /overrides\.reuse/);
});

test('a list query quotes only validated values and refuses anything that could end the literal', () => {
  assert.equal(listQuery({}), "WorkflowType = 'recogdrivePipeline'");
  assert.equal(
    listQuery({ experiment: 'recogdrive-2b', state: 'failed' }),
    'WorkflowType = \'recogdrivePipeline\' AND RecogdriveExperiment = "recogdrive-2b" AND RecogdriveStatus = "failed"',
  );
  assert.throws(() => listQuery({ experiment: 'x" OR WorkflowType != "' }), /invalid filter value/);
});

test('the run id of an Idempotency-Key depends on the key alone, is a valid run id, and differs between keys', () => {
  assert.equal(idempotentRunId('key-1'), `key-${createHash('sha256').update('key-1').digest('hex').slice(0, 32)}`);
  assert.equal(idempotentRunId('key-1'), idempotentRunId('key-1'));
  assert.notEqual(idempotentRunId('key-1'), idempotentRunId('key-2'));
  assert.equal(runIdProblem(idempotentRunId('~!@#$%^&*()')), undefined);
  // Runs started before keep being found under their old id, which held the experiment.
  assert.equal(legacyIdempotentRunId('exp', 'key-1'), `exp-${createHash('sha256').update('key-1').digest('hex').slice(0, 16)}`);
});

test('a rerun id stays within the run id length for a source of any allowed length, and distinct tokens give distinct ids', () => {
  const longest = 'r'.repeat(RUN_ID_MAX_LENGTH);
  const a = rerunId(longest, planToken('secret', { ...facts, source: longest }));
  const b = rerunId(longest, planToken('secret', { ...facts, source: longest, input: {} }));
  assert.equal(a.length, RUN_ID_MAX_LENGTH);
  assert.equal(runIdProblem(a), undefined);
  assert.notEqual(a, b);
  assert.equal(rerunId('exp-1', 'token'), `exp-1-rerun-${createHash('sha256').update('token').digest('hex').slice(0, 16)}`, 'short sources keep their whole id');
});

test('estimated TPU-hours: 0 when nothing runs, chips × the source run\'s wall time on the same TPU slice, null without an honest basis', () => {
  const config = parsePipelineInput({
    experiment: 'exp',
    artifactRoot: 'gs://bucket/runs',
    gcp: { project: 'my-project' },
    paths: { hostRepoDir: '/home/me/recogdrive' },
    upstreamFixes: ['feature-cache-real-scenes', 'torchax-grpo', 'eval-without-torchrun'],
    stage2: { compute: { backend: 'tpu-api', accelerator: 'v6e-8', zones: ['us-east5-b'] } },
  });
  const step = (decision: PlannedStage['decision'], compute = config.stage2.compute): PlannedStage =>
    ({ stage: 'stage2', title: 'Stage 2', decision, reason: '', dependsOn: [], notes: [], compute }) as PlannedStage;
  const ran = [{ stage: 'stage2' as const, decision: 'RUN' as const, state: 'succeeded' as const, attempt: 1, startedAt: '2024-06-01T00:00:00Z', endedAt: '2024-06-01T01:30:00Z' }];
  assert.equal(estimateTpuHours(step('RUN'), { config, stages: ran }), 12, '8 chips × 1.5 h');
  for (const decision of ['REUSE', 'PROVIDED', 'SKIP'] as const) assert.equal(estimateTpuHours(step(decision), { config, stages: ran }), 0);
  assert.equal(estimateTpuHours(step('RUN', { backend: 'local', simulate: { durationMs: 1 } }), { config, stages: ran }), null, 'not on TPU');
  assert.equal(
    estimateTpuHours(step('RUN', { ...config.stage2.compute, accelerator: 'v6e-4' } as typeof config.stage2.compute), { config, stages: ran }),
    null,
    'another slice than the source run used',
  );
  assert.equal(estimateTpuHours(step('RUN'), { config, stages: [{ ...ran[0]!, state: 'reused' }] }), null, 'the source did not run it');
  assert.equal(estimateTpuHours(step('RUN'), { config }), null, 'the source run could not be queried');
  assert.equal(chipsOf('v6e-256'), 256);
  assert.equal(totalTpuHours([0, 12, 1.5]), 13.5);
  assert.equal(totalTpuHours([0, null]), null);
});

test('the tokens file holds hashes only; a presented token is matched by its hash with its scopes', () => {
  const hash = createHash('sha256').update('s3cret-token').digest('hex');
  const tokens = parseTokens(JSON.stringify([{ name: 'ci', sha256: hash.toUpperCase(), scopes: ['runs:read'] }]));
  assert.equal(authenticate('Bearer s3cret-token', tokens)?.name, 'ci');
  assert.equal(authenticate('bearer s3cret-token', tokens)?.name, 'ci');
  assert.equal(authenticate('Bearer s3cret-tokeN', tokens), undefined);
  assert.equal(authenticate('Basic s3cret-token', tokens), undefined);
  assert.equal(authenticate(undefined, tokens), undefined);
  assert.throws(() => parseTokens(JSON.stringify([{ name: 'ci', sha256: 's3cret-token', scopes: ['runs:read'] }])), /sha256/);
  assert.throws(() => parseTokens(JSON.stringify([{ name: 'ci', sha256: hash, scopes: ['admin'] }])), /scopes/);
  assert.throws(() => parseTokens('[]'), /no tokens/);
  const error = (() => {
    try {
      parseTokens('{"not json');
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  assert.ok(error.length > 0 && !error.includes('not json'), 'the file content is not echoed');
});

test('TPU-hours so far: chips × held time of every machine in the cost record (one still held up to now), 0 without records', () => {
  const at = (time: string) => Date.parse(`2024-06-01T${time}Z`);
  const now = at('03:00:00');
  const usage = (name: string, chips: number, from: string, to?: string) => ({
    name, backend: 'tpu-api' as const, attempt: 1, chips, spot: true, acquiredAt: at(from), ...(to === undefined ? {} : { releasedAt: at(to) }),
  });
  const used = tpuHoursSoFar(
    [
      // a preempted v6e-4 for 1 h, then its replacement for 1 h
      { stage: 'stage1', decision: 'RUN', state: 'succeeded', attempt: 2, compute: [usage('a', 4, '00:00:00', '01:00:00'), usage('b', 4, '01:00:00', '02:00:00')] },
      { stage: 'stage2', decision: 'RUN', state: 'running', attempt: 1, compute: [usage('c', 8, '02:30:00')] },
      { stage: 'metricCache', decision: 'RUN', state: 'running', attempt: 1, compute: [usage('d', 0, '00:00:00')] },
      { stage: 'featureCache', decision: 'REUSE', state: 'reused', attempt: 0 },
    ],
    now,
  );
  assert.deepEqual(used, { total: 12, byStage: { stage1: 8, stage2: 4, metricCache: 0, featureCache: 0 } });
});

test('a request log line names the path and the known query parameters, never a query value or an unknown parameter name', () => {
  assert.equal(loggableUrl('/v1/runs'), '/v1/runs');
  assert.equal(loggableUrl('/v1/runs?experiment=exp&status=running'), '/v1/runs?experiment=…&status=…');
  assert.equal(loggableUrl('/v1/runs?access_token=s3cret&experiment=exp'), '/v1/runs??&experiment=…');
  assert.equal(loggableUrl('/v1/runs?s3cret'), '/v1/runs??');
  assert.doesNotMatch(loggableUrl('/v1/runs/x/stages/stage1/logs?follow=s3cret&s3cret=1'), /s3cret/);
});

test('a request body is refused when it nests deeper than any request needs or names a prototype key anywhere, found without recursion', () => {
  assert.equal(bodyProblem({ experiment: 'exp', stage2: { env: { A: '1' } }, list: [{ a: 1 }] }), undefined);
  assert.match(bodyProblem(JSON.parse('{"__proto__": {"x": 1}}')) ?? '', /^__proto__: keys named __proto__, constructor, prototype are refused/);
  assert.match(bodyProblem({ overrides: { stage2: { constructor: { prototype: {} } } } }) ?? '', /^overrides\.stage2\.constructor: /);
  assert.match(bodyProblem({ a: [{ prototype: 1 }] }) ?? '', /^a\.0\.prototype: /);
  let deep: unknown = {};
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.match(bodyProblem(deep) ?? '', new RegExp(`nests deeper than ${MAX_BODY_DEPTH} levels`));
  let fits: unknown = 1;
  for (let i = 0; i < MAX_BODY_DEPTH; i++) fits = { a: fits };
  assert.equal(bodyProblem(fits), undefined);
});
