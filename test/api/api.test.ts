/**
 * The HTTP API over real HTTP (the app listening on a free port, fetch) against a real Temporal
 * dev server and worker with the embedded default. What ran is read from Temporal (workflow
 * ids, child workflows `<runId>/<stage>`), not from the API's answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import type { PipelineInputRaw } from '../../pipeline/input.ts';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import type { RunStatus, RunSummary } from '../../pipeline/status.ts';
import { buildApp } from '../../workers/api/app.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { parseTokens } from '../../workers/api/config.ts';
import { runStatusQuery } from '../../workflows/messages.ts';
import { startTestEnv, waitForStatus, type TestEnv } from '../helpers/local-env.ts';
import { stageWorkflowsOf } from '../helpers/assertions.ts';
import { freePort } from '../../infra/local/dev-server.ts';

const TOKENS = { rw: `rw-${randomBytes(16).toString('hex')}`, ro: `ro-${randomBytes(16).toString('hex')}`, wrong: `xx-${randomBytes(16).toString('hex')}` };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let env: TestEnv;
let app: FastifyInstance;
let base: string;

before(async () => {
  env = await startTestEnv();
  app = await buildApp({
    client: env.stack.client,
    taskQueue: env.stack.taskQueue,
    // As in RECOGDRIVE_API_TOKENS_FILE: hashes only.
    tokens: parseTokens(
      JSON.stringify([
        { name: 'ci', sha256: sha256(TOKENS.rw), scopes: ['runs:read', 'runs:write'] },
        { name: 'dashboard', sha256: sha256(TOKENS.ro), scopes: ['runs:read'] },
      ]),
    ),
    planSecret: randomBytes(32).toString('hex'),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await app?.close();
  await env?.close();
});

interface Answer {
  status: number;
  text: string;
  headers: Headers;
  json: Record<string, unknown>;
}

async function call(
  method: string,
  path: string,
  options: { token?: keyof typeof TOKENS | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = options.token === undefined ? 'rw' : options.token;
  const headers: Record<string, string> = { ...options.headers };
  if (token !== null) headers.authorization = `Bearer ${TOKENS[token]}`;
  let body: string | undefined;
  if (options.raw !== undefined || options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.raw ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // text/plain (logs)
  }
  return { status: response.status, text, headers: response.headers, json };
}

/** The embedded default's input with short stages; reuse on unless the test needs its stages to execute. */
function input(options: { experiment?: string; stages?: StageName[]; durationMs?: number; reuse?: 'verified' | 'never' } = {}): PipelineInputRaw {
  return env.input({
    durationMs: options.durationMs ?? 200,
    reuse: { policy: options.reuse ?? 'verified' },
    ...(options.experiment === undefined ? {} : { experiment: options.experiment }),
    ...(options.stages === undefined ? {} : { stages: options.stages }),
  });
}

/** Every workflow the server knows, top-level runs and stage workflows alike. */
async function workflowIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of env.stack.client.workflow.list()) ids.push(info.workflowId);
  return ids.sort();
}

/** Asserts that `action` starts no workflow (visibility is given time to catch up). */
async function startsNothing<T>(action: () => Promise<T>): Promise<T> {
  const before = await workflowIds();
  const result = await action();
  await sleep(400);
  assert.deepEqual(await workflowIds(), before, 'no workflow was started');
  return result;
}

/** The stages of a run that had a stage workflow, i.e. that ran. */
const stagesThatRan = (runId: string): Promise<StageName[]> => stageWorkflowsOf(env, runId);

const result = (runId: string) => env.stack.client.workflow.getHandle(runId).result() as Promise<RunSummary>;

let source: string;

test('GET /openapi.json is a valid OpenAPI 3 document listing every /v1 path, served without a token', async () => {
  const answer = await call('GET', '/openapi.json', { token: null });
  assert.equal(answer.status, 200);
  assert.match(String(answer.json.openapi), /^3\./);
  // Throws naming the first violation of the OpenAPI schema.
  const document = await SwaggerParser.validate(structuredClone(answer.json) as never);
  assert.deepEqual(Object.keys(document.paths ?? {}).sort(), [
    '/v1/runs',
    '/v1/runs/{id}',
    '/v1/runs/{id}/cancel',
    '/v1/runs/{id}/reruns',
    '/v1/runs/{id}/stages/{stage}/logs',
  ]);
  const start = (document.paths?.['/v1/runs'] as Record<string, { requestBody?: { content: Record<string, { schema: { properties?: object } }> } }>).post!;
  assert.ok('experiment' in (start.requestBody!.content['application/json']!.schema.properties ?? {}), 'the start body is documented with the pipeline input schema');
});

test('POST /v1/runs starts a validated run (201) and GET /v1/runs/{id} returns per-stage status and Temporal\'s description', async () => {
  const started = await call('POST', '/v1/runs', { body: input({ experiment: 'api-source' }), headers: { 'idempotency-key': 'source-1' } });
  assert.equal(started.status, 201, started.text);
  source = started.json.runId as string;
  assert.match(source, /^key-[0-9a-f]{32}$/);
  assert.equal(started.headers.get('location'), `/v1/runs/${source}`);
  await result(source);

  const status = await call('GET', `/v1/runs/${source}`, { token: 'ro' });
  assert.equal(status.status, 200, status.text);
  const temporal = status.json.temporal as { status: string; startTime: string; closeTime: string | null };
  assert.equal(temporal.status, 'COMPLETED');
  assert.ok(temporal.closeTime !== null && Date.parse(temporal.closeTime) >= Date.parse(temporal.startTime));
  const run = status.json.status as RunStatus;
  assert.equal(run.state, 'succeeded');
  assert.deepEqual(
    run.stages.map((s) => [s.stage, s.state, s.decision]),
    STAGES.map((s) => [s, 'succeeded', 'RUN']),
  );
  for (const stage of run.stages) {
    assert.ok(stage.attempt >= 1 && stage.artifactUri !== undefined && stage.reason !== undefined, JSON.stringify(stage));
  }
  assert.equal((await call('GET', '/v1/runs/no-such-run')).status, 404);
});

test('bad requests are refused with the right status, never echo the token, and start nothing', async (t) => {
  const big = JSON.stringify({ ...input(), padding: 'x'.repeat(1024 * 1024) });
  interface Case {
    name: string;
    method?: string;
    /** Default POST /v1/runs; a function when it names the source run (known once the first test ran). */
    path?: string | (() => string);
    token?: keyof typeof TOKENS | null;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
    status: number;
    /** What the error body must name (the failing field). */
    mentions?: RegExp;
  }
  const cases: Case[] = [
    { name: 'no token', token: null, body: input(), status: 401 },
    { name: 'a wrong token', token: 'wrong', body: input(), status: 401 },
    { name: 'a token in another scheme', token: null, headers: { authorization: `Basic ${TOKENS.rw}` }, body: input(), status: 401 },
    { name: 'a read-only token starting a run', token: 'ro', body: input(), status: 403, mentions: /runs:write/ },
    { name: 'a read-only token confirming a rerun', token: 'ro', path: () => `/v1/runs/${source}/reruns`, body: { planToken: '0'.repeat(64) }, status: 403 },
    { name: 'a read-only token cancelling', token: 'ro', path: () => `/v1/runs/${source}/cancel`, status: 403 },
    { name: 'malformed JSON', raw: '{"experiment": "api-x",', status: 400 },
    { name: 'a body that is not an object', raw: '["api-x"]', status: 400 },
    { name: 'an unknown field in the pipeline input', body: { ...input(), gpus: 8 }, status: 400, mentions: /gpus/ },
    { name: 'an oversized body', raw: big, status: 413 },
    { name: 'experiment "x; rm -rf /"', body: input({ experiment: 'x; rm -rf /' }), status: 400, mentions: /experiment/ },
    { name: 'experiment "$(id)"', body: input({ experiment: '$(id)' }), status: 400, mentions: /experiment/ },
    { name: 'a command substitution in artifactRoot', body: { ...input(), artifactRoot: 'file:///tmp/$(id)' }, status: 400, mentions: /artifactRoot/ },
    { name: 'backticks in a host path', body: { ...input(), paths: { hostRepoDir: '/tmp/`id`' } }, status: 400, mentions: /paths\.hostRepoDir/ },
    { name: 'a shell string as runId', path: '/v1/runs?runId=x%3Brm%20-rf', body: input(), status: 400, mentions: /runId/ },
    { name: 'an unknown stage in a rerun (fromStage)', path: () => `/v1/runs/${source}/reruns?dryRun=true`, body: { fromStage: 'stage9' }, status: 400, mentions: /fromStage/ },
    { name: 'an unknown stage in a rerun (force)', path: () => `/v1/runs/${source}/reruns?dryRun=true`, body: { force: ['stage1', 'rm -rf'] }, status: 400, mentions: /force/ },
    { name: 'an unknown field in a rerun', path: () => `/v1/runs/${source}/reruns?dryRun=true`, body: { fromStage: 'stage2', gpus: 8 }, status: 400, mentions: /gpus/ },
    { name: 'a rerun override that breaks the input', path: () => `/v1/runs/${source}/reruns?dryRun=true`, body: { overrides: { experiment: '$(id)' } }, status: 400, mentions: /experiment/ },
    { name: 'a rerun override of reuse', path: () => `/v1/runs/${source}/reruns?dryRun=true`, body: { overrides: { reuse: { policy: 'never' } } }, status: 400, mentions: /reuse/ },
    { name: 'a rerun without dryRun and without planToken', path: () => `/v1/runs/${source}/reruns`, body: { fromStage: 'stage2' }, status: 400, mentions: /planToken/ },
    { name: 'a malformed planToken', path: () => `/v1/runs/${source}/reruns`, body: { planToken: 'not-a-token' }, status: 400, mentions: /planToken/ },
    { name: 'a rerun of an unknown run', path: '/v1/runs/no-such-run/reruns?dryRun=true', body: {}, status: 404 },
    { name: 'a list filter with a shell string', method: 'GET', path: '/v1/runs?experiment=%24(id)', status: 400, mentions: /experiment/ },
    { name: 'a list filter with a quote', method: 'GET', path: '/v1/runs?status=running%22%20OR%20%221', status: 400, mentions: /status/ },
  ];

  for (const c of cases) {
    await t.test(`${c.name} → ${c.status}`, async () => {
      const path = typeof c.path === 'function' ? c.path() : (c.path ?? '/v1/runs');
      const answer = await startsNothing(() =>
        call(c.method ?? 'POST', path, {
          ...(c.token === undefined ? {} : { token: c.token }),
          ...(c.body === undefined ? {} : { body: c.body }),
          ...(c.raw === undefined ? {} : { raw: c.raw }),
          ...(c.headers === undefined ? {} : { headers: c.headers }),
        }),
      );
      assert.equal(answer.status, c.status, answer.text);
      assert.equal(typeof answer.json.error, 'string', 'a JSON error body');
      for (const token of Object.values(TOKENS)) assert.ok(!answer.text.includes(token), 'the body does not echo a token');
      if (c.mentions !== undefined) assert.match(JSON.stringify(answer.json), c.mentions);
      if (c.status === 401) assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer/);
    });
  }
});

test('a repeated POST with the same Idempotency-Key returns the same run (201, then 200) and starts one workflow', async () => {
  const body = input({ experiment: 'api-idem', stages: ['metricCache'], reuse: 'never' });
  const headers = { 'idempotency-key': 'nightly-2024-06-01' };
  const first = await call('POST', '/v1/runs', { body, headers });
  const second = await call('POST', '/v1/runs', { body, headers });
  assert.deepEqual([first.status, second.status], [201, 200], second.text);
  assert.equal(second.json.runId, first.json.runId);
  const runId = first.json.runId as string;
  await sleep(400);
  assert.ok((await workflowIds()).includes(runId), 'a start is visible to the list within the time startsNothing waits');
  await result(runId);
  assert.equal((await call('POST', '/v1/runs', { body, headers })).status, 200, 'also after the run ended');

  // Concurrent requests with a new key: one creates, the other finds it.
  const key = { 'idempotency-key': 'concurrent-1' };
  const pair = await Promise.all([call('POST', '/v1/runs', { body, headers: key }), call('POST', '/v1/runs', { body, headers: key })]);
  assert.deepEqual(pair.map((a) => a.status).sort(), [200, 201]);
  assert.equal(pair[0].json.runId, pair[1].json.runId);
  await result(pair[0].json.runId as string);

  // The same key with another input is a conflict, not a silent second run: also when the experiment (once part of the id) differs.
  const other = await startsNothing(() => call('POST', '/v1/runs', { body: { ...body, stages: ['stage1'] }, headers }));
  assert.equal(other.status, 409, other.text);
  const otherExperiment = await startsNothing(() => call('POST', '/v1/runs', { body: { ...body, experiment: 'api-idem-other' }, headers }));
  assert.equal(otherExperiment.status, 409, otherExperiment.text);
  assert.match(otherExperiment.json.message as string, /Idempotency-Key was used for another request/);

  const ids = await workflowIds();
  assert.equal(ids.filter((id) => id === runId).length, 1, 'one workflow for the key');
  assert.deepEqual(await stagesThatRan(runId), ['metricCache']);
});

test('an Idempotency-Key holds across API restarts, and a key used before the id depended on the key alone still finds its run', async () => {
  const body = input({ experiment: 'api-restart', stages: ['metricCache'] });
  const headers = { 'idempotency-key': 'restart-1' };
  const first = await call('POST', '/v1/runs', { body, headers });
  assert.equal(first.status, 201, first.text);
  // Another API process: nothing is shared with the first but Temporal.
  const restarted = await buildApp({
    client: env.stack.client,
    taskQueue: env.stack.taskQueue,
    tokens: parseTokens(JSON.stringify([{ name: 'ci', sha256: sha256(TOKENS.rw), scopes: ['runs:read', 'runs:write'] }])),
    planSecret: randomBytes(32).toString('hex'),
  });
  const restartedBase = await restarted.listen({ port: 0, host: '127.0.0.1' });
  try {
    const post = (payload: unknown) =>
      fetch(`${restartedBase}/v1/runs`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${TOKENS.rw}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const again = await post(body);
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { runId: string }).runId, first.json.runId);
    assert.equal((await startsNothing(() => post({ ...body, experiment: 'api-restart-b' }))).status, 409);
  } finally {
    await restarted.close();
  }
  await result(first.json.runId as string);

  // A run an Idempotency-Key started under the old scheme (<experiment>-<16 hex>).
  const legacyBody = input({ experiment: 'api-legacy', stages: ['metricCache'] });
  const legacyId = `api-legacy-${sha256('legacy-key').slice(0, 16)}`;
  await env.start(legacyId, legacyBody);
  const found = await startsNothing(() => call('POST', '/v1/runs', { body: legacyBody, headers: { 'idempotency-key': 'legacy-key' } }));
  assert.deepEqual([found.status, found.json.runId], [200, legacyId], found.text);
  const conflict = await startsNothing(() => call('POST', '/v1/runs', { body: { ...legacyBody, stages: ['stage1'] }, headers: { 'idempotency-key': 'legacy-key' } }));
  assert.equal(conflict.status, 409, conflict.text);
  await result(legacyId);
});

test('GET /v1/runs lists runs by experiment and state from the search attributes', async () => {
  const deadline = Date.now() + 15_000;
  let listed: Answer;
  for (;;) {
    listed = await call('GET', '/v1/runs?experiment=api-source&status=succeeded&pageSize=10', { token: 'ro' });
    assert.equal(listed.status, 200, listed.text);
    if ((listed.json.runs as unknown[]).length > 0 || Date.now() > deadline) break;
    await sleep(250);
  }
  const runs = listed.json.runs as Array<{ runId: string; experiment: string; status: string; temporalStatus: string }>;
  assert.deepEqual(
    runs.map((r) => [r.runId, r.experiment, r.status, r.temporalStatus]),
    [[source, 'api-source', 'succeeded', 'COMPLETED']],
  );
  assert.equal(listed.json.query, 'WorkflowType = \'recogdrivePipeline\' AND RecogdriveExperiment = "api-source" AND RecogdriveStatus = "succeeded"');
  const running = await call('GET', '/v1/runs?experiment=api-source&status=running', { token: 'ro' });
  assert.deepEqual(running.json.runs, []);
  const limited = await call('GET', '/v1/runs?pageSize=1', { token: 'ro' });
  assert.equal((limited.json.runs as unknown[]).length, 1);
});

interface DryRun {
  runId: string;
  planToken: string;
  stages: Array<{ stage: StageName; decision: string; reason: string; fingerprint: string | null; estimatedTpuHours: number | null }>;
}

const dryRun = async (runId: string, body: unknown): Promise<DryRun> => {
  const answer = await startsNothing(() => call('POST', `/v1/runs/${runId}/reruns?dryRun=true`, { body }));
  assert.equal(answer.status, 200, answer.text);
  return answer.json as unknown as DryRun;
};

test('a dry run shows each stage\'s decision, reason, fingerprint and estimate; the confirm starts a rerun that runs only the RUN stages', async () => {
  const body = { overrides: { metricCache: { worker: 'single_machine_thread_pool' } } };
  const plan = await dryRun(source, body);
  const decisions = Object.fromEntries(plan.stages.map((s) => [s.stage, s.decision]));
  assert.deepEqual(decisions, { stage1: 'REUSE', featureCache: 'REUSE', stage2: 'REUSE', stage2Export: 'REUSE', metricCache: 'RUN', stage3: 'RUN', stage3Export: 'RUN', eval: 'RUN' });
  const metric = plan.stages.find((s) => s.stage === 'metricCache')!;
  assert.match(metric.reason, new RegExp(`changed since run ${source}: arg worker`));
  for (const s of plan.stages) {
    assert.match(s.fingerprint ?? '', /^sha256:[0-9a-f]{64}$/);
    // REUSE costs nothing; the local backend is no TPU, so a RUN stage has no honest TPU estimate.
    assert.equal(s.estimatedTpuHours, s.decision === 'RUN' ? null : 0);
  }
  assert.match(plan.planToken, /^[0-9a-f]{64}$/);
  assert.equal((await dryRun(source, body)).planToken, plan.planToken, 'the same plan has the same token');

  const confirmed = await call('POST', `/v1/runs/${source}/reruns`, { body: { ...body, planToken: plan.planToken } });
  assert.equal(confirmed.status, 201, confirmed.text);
  const rerun = confirmed.json.runId as string;
  assert.equal(rerun, plan.runId);
  assert.match(rerun, new RegExp(`^${source}-rerun-[0-9a-f]{16}$`));
  const summary = await result(rerun);
  assert.equal(summary.rerunOf, source);
  assert.deepEqual(
    await stagesThatRan(rerun),
    plan.stages.filter((s) => s.decision === 'RUN').map((s) => s.stage),
  );
  assert.deepEqual(Object.fromEntries(summary.stages.map((s) => [s.stage, s.decision])), decisions, 'the rerun did what the plan said');

  const again = await startsNothing(() => call('POST', `/v1/runs/${source}/reruns`, { body: { ...body, planToken: plan.planToken } }));
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.runId, rerun, 'a repeated confirm returns the same run');
});

test('a stale plan token is refused with 409 and starts nothing: another body, another run, or a plan that changed', async () => {
  const body = { overrides: { eval: { maxFailedTokens: 1 } } };
  const plan = await dryRun(source, body);
  assert.deepEqual(
    plan.stages.filter((s) => s.decision === 'RUN').map((s) => s.stage),
    ['eval'],
  );

  // The body changed between the dry run and the confirm.
  const changed = await startsNothing(() => call('POST', `/v1/runs/${source}/reruns`, { body: { overrides: { eval: { maxFailedTokens: 2 } }, planToken: plan.planToken } }));
  assert.equal(changed.status, 409, changed.text);
  assert.match(changed.json.message as string, /the plan changed since the dry run/);

  // A token of this source run used on another run.
  const [idem] = (await call('GET', '/v1/runs?experiment=api-idem&pageSize=1', { token: 'ro' })).json.runs as Array<{ runId: string }>;
  assert.ok(idem !== undefined);
  const elsewhere = await startsNothing(() => call('POST', `/v1/runs/${idem.runId}/reruns`, { body: { ...body, planToken: plan.planToken } }));
  assert.equal(elsewhere.status, 409, elsewhere.text);

  // The same request, but the plan changed: a verified eval output with this fingerprint appeared meanwhile
  // (a forced rerun with the same settings made it), so eval would now be reused.
  const forced = await dryRun(source, { ...body, force: ['eval'] });
  const made = await call('POST', `/v1/runs/${source}/reruns`, { body: { ...body, force: ['eval'], planToken: forced.planToken } });
  assert.equal(made.status, 201, made.text);
  await result(made.json.runId as string);
  const stale = await startsNothing(() => call('POST', `/v1/runs/${source}/reruns`, { body: { ...body, planToken: plan.planToken } }));
  assert.equal(stale.status, 409, stale.text);
  assert.ok((await dryRun(source, body)).stages.every((s) => s.decision === 'REUSE'), 'a new dry run shows the new plan');
});

test('POST /v1/runs/{id}/cancel cancels a running run (202), and a run that has ended cannot be cancelled (409)', async () => {
  const started = await call('POST', '/v1/runs', { body: input({ experiment: 'api-cancel', stages: ['metricCache'], durationMs: 60_000, reuse: 'never' }) });
  assert.equal(started.status, 201, started.text);
  const runId = started.json.runId as string;
  const handle = env.stack.client.workflow.getHandle(runId);
  await waitForStatus(handle, (s) => s.stages.find((x) => x.stage === 'metricCache')?.phase === 'running');
  const cancelled = await call('POST', `/v1/runs/${runId}/cancel`);
  assert.equal(cancelled.status, 202, cancelled.text);
  await assert.rejects(handle.result());
  const status = await call('GET', `/v1/runs/${runId}`, { token: 'ro' });
  assert.equal((status.json.temporal as { status: string }).status, 'CANCELLED');
  assert.equal((status.json.status as RunStatus).stages.find((s) => s.stage === 'metricCache')!.state, 'cancelled');
  // Who cancelled: the caller of the cancel request, as its token names it (never "Child Workflow execution failed").
  assert.match((status.json.status as RunStatus).cancelledBy ?? '', /^recogdrive-api caller \S+$/);
  assert.match((status.json.status as RunStatus).error ?? '', /^run cancelled by recogdrive-api caller \S+: POST \/runs\/:id\/cancel$/);
  assert.equal((await call('POST', `/v1/runs/${runId}/cancel`)).status, 409);
  assert.equal((await call('POST', '/v1/runs/no-such-run/cancel')).status, 404);
});

test('GET .../stages/{stage}/logs returns the stage log as text; follow=true streams it until the stage ends', async () => {
  const log = await call('GET', `/v1/runs/${source}/stages/metricCache/logs`, { token: 'ro' });
  assert.equal(log.status, 200, log.text);
  assert.match(log.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(log.text, /Starting metric caching of \d+ files/);
  assert.match(log.text, /Done storing metadata csv file\./);
  assert.equal((await call('GET', `/v1/runs/${source}/stages/metricCache/logs?attempt=9`, { token: 'ro' })).status, 404, 'no such attempt');
  assert.equal((await call('GET', `/v1/runs/${source}/stages/stage9/logs`, { token: 'ro' })).status, 400);

  const started = await call('POST', '/v1/runs', { body: input({ experiment: 'api-logs', stages: ['metricCache'], durationMs: 3000, reuse: 'never' }) });
  const runId = started.json.runId as string;
  const handle = env.stack.client.workflow.getHandle(runId);
  await waitForStatus(handle, () => true);
  // Following begins before the stage has printed anything and ends with the stage.
  const followed = await call('GET', `/v1/runs/${runId}/stages/metricCache/logs?follow=true`, { token: 'ro' });
  assert.equal(followed.status, 200);
  assert.match(followed.text, /Starting metric caching/);
  assert.match(followed.text, /Done storing metadata csv file\./, 'the lines written after following began are there too');
  const stage = (await handle.query(runStatusQuery)).stages.find((s) => s.stage === 'metricCache')!;
  assert.notEqual(stage.state, 'running', 'the response ended when the stage did');
  await result(runId);
});

test('`recogdrive api` serves the API from the environment (tokens file, Temporal address) and stops on SIGTERM', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'recogdrive-api-'));
  const tokensFile = join(dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'ci', sha256: sha256(TOKENS.ro), scopes: ['runs:read'] }]));
  const port = await freePort();
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'api', '--port', String(port), '--host', '127.0.0.1'], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address, RECOGDRIVE_TASK_QUEUE: env.stack.taskQueue, RECOGDRIVE_API_TOKENS_FILE: tokensFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + 30_000;
    while (!output.includes('recogdrive API on')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `the API did not come up: ${output}`);
      await sleep(100);
    }
    const url = `http://127.0.0.1:${port}/v1/runs/${source}`;
    assert.equal((await fetch(url)).status, 401);
    const answer = await fetch(url, { headers: { authorization: `Bearer ${TOKENS.ro}` } });
    assert.equal(answer.status, 200);
    assert.equal(((await answer.json()) as { status: RunStatus }).status.state, 'succeeded');
    assert.ok(!output.includes(TOKENS.ro), 'the token is not logged');
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, output);
  }
});

