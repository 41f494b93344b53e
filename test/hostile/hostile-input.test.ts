/**
 * Hostile input on every channel (rows: hostile-cases.ts), against one real Temporal dev server
 * with a worker, one `recogdrive api` process and the `recogdrive` / `temporal` CLIs as separate
 * processes. Each row gets its answer (4xx + message, or exit code + one `recogdrive:` line);
 * every row: never a 5xx, no stack trace, no secret in any response, output or log line. After
 * the table: no workflow was started but the `temporal workflow start` rows' own, which failed
 * at their first step without starting a stage; no schedule was created.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { freePort } from '../../infra/local/dev-server.ts';
import { ensureTemporalCli } from '../../infra/local/temporal-cli.ts';
import type { PipelineInputRaw } from '../../pipeline/input.ts';
import { applyMergePatch } from '../../pipeline/safe-keys.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';
import { HOSTILE_ROWS, type ApiRow, type CliRow, type HostileContext, type HostileRow, type TemporalRow } from './hostile-cases.ts';

const CLI = join(PROJECT_ROOT, 'workers', 'cli.ts');
const TOKENS = { rw: `rw-${randomBytes(16).toString('hex')}`, ro: `ro-${randomBytes(16).toString('hex')}` };
const PLAN_SECRET = `plan-${randomBytes(24).toString('hex')}`;
/** What must never appear in a response, an output or a log line. */
const SECRETS = [TOKENS.rw, TOKENS.ro, PLAN_SECRET];
/** A stack frame, as Node prints one. */
const STACK_FRAME = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m;

let env: TestEnv;
let api: ChildProcess;
let apiLog = '';
let base: string;
let cliEnv: NodeJS.ProcessEnv;
let temporal: string;
let context: HostileContext;
let workflowsBefore: Set<string> | undefined;
const temporalRowIds: string[] = [];

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

before(async () => {
  env = await startTestEnv();
  const dir = join(env.dataDir, 'hostile');
  await mkdir(dir, { recursive: true });
  const tokensFile = join(dir, 'tokens.json');
  await writeFile(
    tokensFile,
    JSON.stringify([
      { name: 'ci', sha256: sha256(TOKENS.rw), scopes: ['runs:read', 'runs:write'] },
      { name: 'dashboard', sha256: sha256(TOKENS.ro), scopes: ['runs:read'] },
    ]),
  );
  cliEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: env.stack.server.address,
    TEMPORAL_NAMESPACE: env.stack.server.namespace,
    RECOGDRIVE_TASK_QUEUE: env.stack.taskQueue,
    RECOGDRIVE_DATA_DIR: env.dataDir,
    // The worker's roots (its data folder): the API and the CLI refuse paths outside them up front.
    RECOGDRIVE_ALLOWED_ROOTS: env.dataDir,
    RECOGDRIVE_API_TOKENS_FILE: tokensFile,
    RECOGDRIVE_API_PLAN_SECRET: PLAN_SECRET,
  };
  delete cliEnv.RECOGDRIVE_DEBUG;

  const valid = (patch: Record<string, unknown> = {}): PipelineInputRaw =>
    applyMergePatch(env.input({ experiment: 'hostile', stages: ['metricCache'], durationMs: 200 }), patch) as PipelineInputRaw;
  const source = 'hostile-source';
  const invalidRun = 'hostile-invalid';
  await env.start(source, valid()).then((h) => h.result());
  await env.start(invalidRun, { ...valid(), experiment: 'Not Valid' }).then((h) => h.result().catch(() => undefined));

  const port = await freePort();
  api = spawn(process.execPath, [CLI, 'api', '--port', String(port), '--host', '127.0.0.1'], { env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  api.stdout!.on('data', (chunk: Buffer) => (apiLog += chunk.toString()));
  api.stderr!.on('data', (chunk: Buffer) => (apiLog += chunk.toString()));
  base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!apiLog.includes('recogdrive API on')) {
    assert.ok(Date.now() < deadline && api.exitCode === null, `the API did not come up: ${apiLog}`);
    await sleep(100);
  }

  const key = 'hostile-key-1';
  const keyBody = valid({ experiment: 'hostile-keyed' });
  const keyed = await fetch(`${base}/v1/runs`, { method: 'POST', headers: authHeaders('rw', { 'idempotency-key': key, 'content-type': 'application/json' }), body: JSON.stringify(keyBody) });
  const keyedText = await keyed.text();
  assert.equal(keyed.status, 201, keyedText);
  const { runId } = JSON.parse(keyedText) as { runId: string };
  await env.stack.client.workflow.getHandle(runId).result();

  // The runs made so far (with their stage workflows) are the baseline, once visible.
  const made = [source, `${source}/metricCache`, invalidRun, runId, `${runId}/metricCache`];
  for (let tries = 0; !made.every((id) => workflowsBefore?.has(id)) && tries < 100; tries++) {
    workflowsBefore = new Set(await workflowIds());
    await sleep(100);
  }

  context = {
    source,
    invalidRun,
    key,
    keyBody,
    secret: TOKENS.rw,
    input: valid,
    file(name, content) {
      const path = join(dir, name);
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      return path;
    },
    schedule: (changes = {}) => ({
      scheduleId: 'hostile-schedule',
      calendar: { hour: 2, minute: 30 },
      timeZone: 'UTC',
      catchupWindow: '6h',
      input: valid(),
      ...changes,
    }),
  };
  temporal = await ensureTemporalCli();
});

after(async () => {
  if (api !== undefined && api.exitCode === null) {
    const exited = once(api, 'exit');
    api.kill('SIGTERM');
    await exited;
  }
  // A row that wrongly started a run must not outlive the suite.
  for await (const info of env?.stack.client.workflow.list({ query: 'ExecutionStatus = "Running"' }) ?? []) {
    await env.stack.client.workflow.getHandle(info.workflowId).terminate('hostile-input suite ended').catch(() => undefined);
  }
  await env?.close();
});

function authHeaders(token: 'rw' | 'ro' | 'none', headers: Record<string, string> = {}): Record<string, string> {
  return token === 'none' ? headers : { ...headers, authorization: `Bearer ${TOKENS[token]}` };
}

async function workflowIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of env.stack.client.workflow.list()) ids.push(info.workflowId);
  return ids.sort();
}

const of = <T>(value: T | ((c: HostileContext) => T)): T => (typeof value === 'function' ? (value as (c: HostileContext) => T)(context) : value);
const fill = (text: string): string => text.replace('{rw}', TOKENS.rw);

function assertNoSecret(text: string, where: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} holds a secret`);
}

async function apiRow(row: ApiRow): Promise<void> {
  const headers: Record<string, string> = authHeaders(row.token ?? 'rw', of(row.headers ?? {}));
  let body: string | undefined;
  if (row.raw !== undefined || row.body !== undefined) {
    body = row.raw !== undefined ? of(row.raw) : JSON.stringify(of(row.body));
    headers['content-type'] = row.contentType ?? 'application/json';
  }
  const response = await fetch(`${base}${fill(of(row.path))}`, { method: row.method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  assert.ok(response.status < 500, `never a 5xx: ${response.status} ${text}`);
  assert.equal(response.status, row.status, text.slice(0, 2000));
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  const answer = JSON.parse(text) as { error?: unknown; message?: unknown; issues?: unknown[] };
  if (row.status >= 400) assert.ok(typeof answer.error === 'string' && typeof answer.message === 'string', `the error shape { error, message }: ${text.slice(0, 500)}`);
  // What a reader sees: the message and each issue (the JSON text escapes quotes).
  assert.match(row.status >= 400 ? [answer.message, ...(answer.issues ?? [])].join('\n') : text, row.message);
  assert.doesNotMatch(text, STACK_FRAME);
  assertNoSecret(text + JSON.stringify([...response.headers]), 'the response');
}

async function cliRow(row: CliRow): Promise<void> {
  const result = await promisify(execFile)(process.execPath, [CLI, ...of(row.args)], { env: { ...cliEnv, ...of(row.env ?? {}) }, timeout: 60_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
  const output = `${result.stdout}${result.stderr}`;
  assert.equal(result.code, row.exit, output.slice(0, 2000));
  assert.match(result.stderr, row.message);
  assert.match(result.stderr, /^(recogdrive: |error: )/, 'a message of ours (or commander\'s usage error), first');
  assert.doesNotMatch(output, STACK_FRAME);
  assertNoSecret(output, 'the CLI output');
}

async function temporalRow(row: TemporalRow): Promise<void> {
  const inputFile = context.file(`temporal-${temporalRowIds.length}.json`, of(row.input));
  temporalRowIds.push(row.workflowId);
  const { stdout, stderr } = await promisify(execFile)(temporal, [
    'workflow', 'start', '--address', env.stack.server.address, '--namespace', env.stack.server.namespace,
    '--type', 'recogdrivePipeline', '--task-queue', env.stack.taskQueue, '--workflow-id', row.workflowId, '--input-file', inputFile,
  ]);
  assertNoSecret(stdout + stderr, 'the temporal CLI output');
  const handle = env.stack.client.workflow.getHandle(row.workflowId);
  const error = await handle.result().then(
    () => assert.fail('the run succeeded'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure, String(error));
  if (row.failureType !== undefined) assert.equal(error.cause.type, row.failureType);
  assert.equal(error.cause.nonRetryable, true, 'not retried');
  assert.match(error.cause.message, row.message);
  const events = ((await handle.fetchHistory()).events ?? []).map((e) => String(e.eventType));
  assert.ok(!events.some((e) => e.includes('START_CHILD_WORKFLOW')), `no stage started: ${events.join(', ')}`);
  if (row.activitiesAllowed !== true) {
    assert.ok(!events.some((e) => /ACTIVITY_TASK_SCHEDULED|UPSERT_WORKFLOW_SEARCH_ATTRIBUTES/.test(e)), `nothing before the refusal: ${events.join(', ')}`);
  }
}

function runRow(row: HostileRow): Promise<void> {
  switch (row.channel) {
    case 'api':
    case 'api-rerun':
      return apiRow(row);
    case 'cli':
    case 'cli-rerun':
    case 'schedule-file':
      return cliRow(row);
    case 'temporal':
      return temporalRow(row);
  }
}

// Rows are independent; most of the time is CLI processes starting, so a few run at once.
test('hostile input is refused on every channel with a clear 4xx or exit code, no stack trace and no secret', { timeout: 900_000, concurrency: 4 }, async (t) => {
  const names = new Set<string>();
  const rows: Array<Promise<void>> = [];
  for (const row of HOSTILE_ROWS) {
    const name = `[${row.channel}] ${row.issue}: ${row.name}`;
    assert.ok(!names.has(name), `row names are unique: ${name}`);
    names.add(name);
    rows.push(t.test(name, () => runRow(row)));
  }
  await Promise.all(rows);
});

test('no hostile request started a workflow (but the refused temporal ones), a stage or a schedule, and no log line holds a secret or an error', async () => {
  await sleep(500);
  const started = (await workflowIds()).filter((id) => !workflowsBefore!.has(id));
  assert.deepEqual(started, [...new Set(temporalRowIds)].sort(), 'only the workflows `temporal workflow start` created');
  const schedules = [];
  for await (const schedule of env.stack.client.schedule.list()) schedules.push(schedule.scheduleId);
  assert.deepEqual(schedules, [], 'no schedule was created');
  assert.ok(apiLog.includes('"statusCode":400'), 'the API log holds the request lines');
  assertNoSecret(apiLog, 'the API log');
  for (const line of apiLog.split('\n').filter((l) => l.startsWith('{'))) {
    const entry = JSON.parse(line) as { level: number; res?: { statusCode: number } };
    assert.ok(entry.level < 50, `no error logged: ${line.slice(0, 500)}`);
    assert.ok((entry.res?.statusCode ?? 0) < 500, `no 5xx: ${line.slice(0, 500)}`);
  }
});
