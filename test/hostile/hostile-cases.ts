/**
 * The hostile-input table: one row per hostile request, on every channel a run can be started
 * or looked at through — the HTTP API (runs, reruns and their overrides, status, logs, cancel),
 * the CLI (start, status, logs, cancel, rerun and its overrides file, schedule), schedule files,
 * and `temporal workflow start` (which no client of ours sees). Each row says what must come
 * back: the 4xx status or the exit code, and a fragment of the message. What holds for every row
 * (never a 5xx, no stack trace, no secret, nothing started) is checked by hostile-input.test.ts.
 *
 * `issue` is the class of issue 13 the row belongs to ("extra" for cases beyond it).
 */
import type { PipelineInputRaw } from '../../pipeline/input.ts';
import { RUN_ID_MAX_LENGTH } from '../../pipeline/naming.ts';

export type IssueClass = '6 env' | '7 option values' | '8 prototype keys' | '9 idempotency' | '10 run id' | '11 host paths' | '12 bounds' | '13 error shape' | 'extra';

/** What the rows can refer to: runs and files the suite prepares before the table runs. */
export interface HostileContext {
  /** A run that succeeded (metricCache only). */
  source: string;
  /** A run started by hand with an invalid input: it failed before planning and has no status. */
  invalidRun: string;
  /** The Idempotency-Key of a run the API started, and that run's body. */
  key: string;
  keyBody: PipelineInputRaw;
  /** A valid input (metricCache only, short), with a JSON merge patch applied. */
  input(patch?: Record<string, unknown>): PipelineInputRaw;
  /** Writes a file into the suite's folder; returns its path. */
  file(name: string, content: unknown): string;
  /** A secret the suite watches for: a row may plant it where it must never come back from (a misconfigured tokens file). */
  secret: string;
  /** A valid schedule config with this input and changes. */
  schedule(changes?: Record<string, unknown>): Record<string, unknown>;
}

type Of<T> = T | ((context: HostileContext) => T);

export interface ApiRow {
  channel: 'api' | 'api-rerun';
  issue: IssueClass;
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';
  path: Of<string>;
  /** A JSON body (sent as application/json), or the raw text with its content type. */
  body?: Of<object>;
  raw?: Of<string>;
  contentType?: string;
  headers?: Of<Record<string, string>>;
  /** The token to send (default read-write). */
  token?: 'rw' | 'ro' | 'none';
  status: number;
  message: RegExp;
}

export interface CliRow {
  channel: 'cli' | 'cli-rerun' | 'schedule-file';
  issue: IssueClass;
  name: string;
  args: Of<string[]>;
  /** Extra environment of the CLI process. */
  env?: Of<Record<string, string>>;
  exit: number;
  message: RegExp;
}

export interface TemporalRow {
  channel: 'temporal';
  issue: IssueClass;
  name: string;
  workflowId: string;
  /** The input file's text (JSON), so rows can hold keys JSON.stringify would drop. */
  input: Of<string>;
  failureType?: string;
  message: RegExp;
  /** The run id check and input validation come before any activity; the host-path check is the preflight activity. */
  activitiesAllowed?: boolean;
}

export type HostileRow = ApiRow | CliRow | TemporalRow;

const EXIT = { runFailed: 1, badInput: 2, unreachable: 3, notFound: 4, conflict: 5 } as const;

const json = (value: unknown): string => JSON.stringify(value);
/** `value` as JSON with `key` added last, as an attacker would write it (JSON.stringify cannot produce `__proto__` keys). */
function withRawKey(value: object, key: string, inner: unknown): string {
  const text = json(value);
  return `${text.slice(0, -1)}${text === '{}' ? '' : ','}${json(key)}:${json(inner)}}`;
}
const longId = 'r'.repeat(RUN_ID_MAX_LENGTH + 1);

// ---- the same hostile inputs through each channel ------------------------------------------

interface HostileInput {
  issue: IssueClass;
  name: string;
  patch: Record<string, unknown>;
  /** The field the refusal names, and what it says. */
  message: RegExp;
}

const HOSTILE_INPUTS: HostileInput[] = [
  { issue: '6 env', name: 'NODE_OPTIONS in a stage env', patch: { metricCache: { env: { NODE_OPTIONS: '--require /nonexistent/hostile.js' } } }, message: /metricCache\.env\.NODE_OPTIONS: .*not settable/ },
  { issue: '6 env', name: 'LD_PRELOAD in a stage env', patch: { metricCache: { env: { LD_PRELOAD: '/nonexistent/hostile.so' } } }, message: /metricCache\.env\.LD_PRELOAD: .*not settable/ },
  { issue: '6 env', name: 'BASH_ENV in a stage env', patch: { stage2: { env: { BASH_ENV: '/nonexistent/hostile.sh' } } }, message: /stage2\.env\.BASH_ENV: / },
  { issue: '7 option values', name: 'a Stage 1 override value that is a long option', patch: { stage1: { overrides: { freeze_llm: '--output_dir=/tmp/hostile' } } }, message: /stage1\.overrides\.freeze_llm: a string value may not start with "-"/ },
  { issue: '7 option values', name: 'a Stage 1 override value that is a short option', patch: { stage1: { overrides: { seed: '-h' } } }, message: /stage1\.overrides\.seed: a string value may not start with "-"/ },
  { issue: '11 host paths', name: 'artifactRoot file:///etc', patch: { artifactRoot: 'file:///etc' }, message: /artifactRoot: \/etc is outside the folders this worker may use/ },
  { issue: '11 host paths', name: 'artifactRoot file:///.', patch: { artifactRoot: 'file:///.' }, message: /artifactRoot: must not contain "\." or "\.\." segments/ },
  { issue: '11 host paths', name: 'hostRepoDir /', patch: { paths: { hostRepoDir: '/' } }, message: /paths\.hostRepoDir: must not be the file system root/ },
  { issue: '11 host paths', name: 'hostRepoDir /etc', patch: { paths: { hostRepoDir: '/etc' } }, message: /paths\.hostRepoDir: \/etc is outside the folders this worker may use/ },
  {
    issue: '11 host paths',
    name: 'a provided artifact at file:///etc/shadow',
    patch: { stages: ['stage2'], providedArtifacts: { featureCache: 'file:///etc/shadow' } },
    message: /providedArtifacts\.featureCache: \/etc\/shadow is outside the folders this worker may use/,
  },
  { issue: '12 bounds', name: '1e9 epochs', patch: { stage2: { epochs: 1e9 } }, message: /stage2\.epochs: at most 1,000 epochs/ },
  { issue: '12 bounds', name: 'a 1e9 batch size', patch: { stage2: { batchSize: 1e9 } }, message: /stage2\.batchSize: at most [\d,]+ samples/ },
  { issue: '12 bounds', name: 'a timeout of 10^20 days', patch: { stage2: { timeout: '100000000000000000000 days' } }, message: /stage2\.timeout: at most 30 days/ },
  { issue: '12 bounds', name: 'a 1 ms hang timeout', patch: { metricCache: { hangTimeout: 1 } }, message: /metricCache\.hangTimeout: at least 1 second/ },
  { issue: '13 error shape', name: 'an over-long override value', patch: { stage1: { overrides: { freeze_llm: 'x'.repeat(300) } } }, message: /stage1\.overrides\.freeze_llm: .*at most 256 characters/ },
  { issue: 'extra', name: 'an experiment with a right-to-left override', patch: { experiment: 'exp\u202egnp' }, message: /experiment: / },
  { issue: 'extra', name: 'an unknown field', patch: { gpus: 8 }, message: /gpus/ },
];

/** Keys that reach the prototype, added to a body (a pipeline input, or a rerun's overrides). */
const PROTOTYPE_BODIES: Array<{ name: string; raw: (base: object) => string; message: RegExp }> = [
  { name: 'a top-level __proto__ key', raw: (base) => withRawKey(base, '__proto__', { polluted: true }), message: /__proto__: keys named __proto__, constructor/ },
  { name: 'constructor.prototype in a stage env', raw: (base) => withRawKey(base, 'stage2', { env: { constructor: { prototype: { polluted: true } } } }), message: /stage2\.env\.constructor: keys named/ },
  { name: 'a prototype key in a stage section', raw: (base) => withRawKey(base, 'stage3', { prototype: { epochs: 2 } }), message: /stage3\.prototype: keys named/ },
];
const REAL_CHANGE = { metricCache: { worker: 'single_machine_thread_pool' } };

const apiStart = HOSTILE_INPUTS.map(
  (h): ApiRow => ({ channel: 'api', issue: h.issue, name: `POST /v1/runs: ${h.name}`, method: 'POST', path: '/v1/runs', body: (c) => c.input(h.patch), status: 400, message: h.message }),
);
const apiRerun = HOSTILE_INPUTS.filter((h) => h.issue !== 'extra' || h.name === 'an unknown field').map(
  (h): ApiRow => ({
    channel: 'api-rerun',
    issue: h.issue,
    name: `rerun overrides: ${h.name}`,
    method: 'POST',
    path: (c) => `/v1/runs/${c.source}/reruns?dryRun=true`,
    body: { overrides: h.patch },
    status: 400,
    message: h.message,
  }),
);
const cliStart = HOSTILE_INPUTS.map(
  (h): CliRow => ({ channel: 'cli', issue: h.issue, name: `start --input: ${h.name}`, args: (c) => ['start', '--input', c.file(`start-${slug(h.name)}.json`, c.input(h.patch))], exit: EXIT.badInput, message: h.message }),
);
const cliRerun = HOSTILE_INPUTS.filter((h) => h.issue !== 'extra').map(
  (h): CliRow => ({
    channel: 'cli-rerun',
    issue: h.issue,
    name: `rerun --overrides: ${h.name}`,
    args: (c) => ['rerun', c.source, '--dry-run', '--overrides', c.file(`overrides-${slug(h.name)}.json`, h.patch)],
    exit: EXIT.badInput,
    message: h.message,
  }),
);
const scheduleInputs = HOSTILE_INPUTS.filter((h) => h.issue !== 'extra' && h.issue !== '13 error shape').map(
  (h): CliRow => ({
    channel: 'schedule-file',
    issue: h.issue,
    name: `schedule input: ${h.name}`,
    args: (c) => ['schedule', 'create', '--file', c.file(`schedule-${slug(h.name)}.json`, c.schedule({ input: c.input(h.patch) }))],
    exit: EXIT.badInput,
    message: new RegExp(`input\\.${h.message.source}`),
  }),
);
const temporalInputs = HOSTILE_INPUTS.filter((h) => h.issue !== 'extra' && h.issue !== '13 error shape').map(
  (h): TemporalRow => ({
    channel: 'temporal',
    issue: h.issue,
    name: `temporal workflow start: ${h.name}`,
    workflowId: `hostile-temporal-${slug(h.name)}`,
    input: (c) => json(c.input(h.patch)),
    // Paths outside the worker's roots are refused by the preflight activity; the rest by validation.
    ...(/outside the folders/.test(h.message.source) ? { activitiesAllowed: true } : { failureType: 'InvalidPipelineInput' }),
    message: h.message,
  }),
);

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
}

// ---- the rows -------------------------------------------------------------------------------

export const HOSTILE_ROWS: HostileRow[] = [
  ...apiStart,
  ...PROTOTYPE_BODIES.map((p): ApiRow => ({ channel: 'api', issue: '8 prototype keys', name: `POST /v1/runs: ${p.name}`, method: 'POST', path: '/v1/runs', raw: (c) => p.raw(c.input()), status: 400, message: p.message })),
  ...PROTOTYPE_BODIES.map(
    (p): ApiRow => ({
      channel: 'api-rerun',
      issue: '8 prototype keys',
      name: `rerun overrides: ${p.name}`,
      method: 'POST',
      path: (c) => `/v1/runs/${c.source}/reruns?dryRun=true`,
      raw: `{"overrides":${p.raw(REAL_CHANGE)}}`,
      status: 400,
      message: p.message,
    }),
  ),
  {
    channel: 'api-rerun',
    issue: '8 prototype keys',
    name: 'rerun overrides: constructor beside a real change (the change must not be silently dropped)',
    method: 'POST',
    path: (c) => `/v1/runs/${c.source}/reruns?dryRun=true`,
    body: { overrides: { constructor: { name: 'x' }, ...REAL_CHANGE } },
    status: 400,
    message: /constructor/,
  },

  // 9: the key alone names the request.
  { channel: 'api', issue: '9 idempotency', name: 'an Idempotency-Key reused with another experiment', method: 'POST', path: '/v1/runs', body: (c) => ({ ...c.keyBody, experiment: 'hostile-other' }), headers: (c) => ({ 'idempotency-key': c.key }), status: 409, message: /Idempotency-Key was used for another request/ },
  { channel: 'api', issue: '9 idempotency', name: 'an Idempotency-Key reused with other stages', method: 'POST', path: '/v1/runs', body: (c) => ({ ...c.keyBody, stages: ['stage1'] }), headers: (c) => ({ 'idempotency-key': c.key }), status: 409, message: /Idempotency-Key was used for another request/ },
  { channel: 'api', issue: '9 idempotency', name: 'an explicit runId of an existing run with another body', method: 'POST', path: (c) => `/v1/runs?runId=${c.source}`, body: (c) => c.input({ experiment: 'hostile-other' }), status: 409, message: /already exists with a different input/ },
  { channel: 'api', issue: '9 idempotency', name: 'an Idempotency-Key and a runId together', method: 'POST', path: '/v1/runs?runId=hostile-both', body: (c) => c.input(), headers: { 'idempotency-key': 'hostile-both' }, status: 400, message: /not both/ },
  { channel: 'api', issue: '9 idempotency', name: 'an Idempotency-Key of 300 characters', method: 'POST', path: '/v1/runs', body: (c) => c.input(), headers: { 'idempotency-key': 'k'.repeat(300) }, status: 400, message: /idempotency-key/ },
  { channel: 'api', issue: '9 idempotency', name: 'an Idempotency-Key with non-ASCII text', method: 'POST', path: '/v1/runs', body: (c) => c.input(), headers: { 'idempotency-key': 'cl\u00e9' }, status: 400, message: /idempotency-key/ },
  { channel: 'cli', issue: '9 idempotency', name: 'start --run-id of an existing run with another input', args: (c) => ['start', '--run-id', c.source, '--input', c.file('other-input.json', c.input({ experiment: 'hostile-other' }))], exit: EXIT.conflict, message: /run hostile-source already exists with a different input/ },

  // 10: one run id rule for every channel.
  ...(
    [
      ['../x', /"\.\.\/x" is not a run id/],
      ['x;rm -rf /', /is not a run id/],
      ['$(id)', /is not a run id/],
      ['a b', /is not a run id/],
      [longId, /it has 201 characters; a run id has at most 200/],
      ['\uff52\uff55\uff4e', /"\\uff52\\uff55\\uff4e" is not a run id/],
    ] as const
  ).flatMap(([id, message]): HostileRow[] => [
    { channel: 'api', issue: '10 run id', name: `POST /v1/runs?runId=${id.slice(0, 20)}`, method: 'POST', path: `/v1/runs?runId=${encodeURIComponent(id)}`, body: (c) => c.input(), status: 400, message },
    { channel: 'api', issue: '10 run id', name: `GET /v1/runs/${id.slice(0, 20)}`, method: 'GET', path: `/v1/runs/${encodeURIComponent(id)}`, token: 'ro', status: 400, message },
    { channel: 'cli', issue: '10 run id', name: `start --run-id ${id.slice(0, 20)}`, args: (c) => ['start', '--run-id', id, '--input', c.file('valid-input.json', c.input())], exit: EXIT.badInput, message },
    { channel: 'cli', issue: '10 run id', name: `status ${id.slice(0, 20)}`, args: ['status', '--', id], exit: EXIT.badInput, message },
    { channel: 'temporal', issue: '10 run id', name: `temporal workflow start --workflow-id ${id.slice(0, 20)}`, workflowId: id, input: (c) => json(c.input()), failureType: 'InvalidRunId', message: new RegExp(`^invalid run id: .*${message.source}`) },
  ]),
  { channel: 'temporal', issue: '10 run id', name: 'temporal workflow start --workflow-id <run>/stage1', workflowId: 'hostile-nosuch/stage1', input: (c) => json(c.input()), failureType: 'InvalidRunId', message: /is the workflow of stage stage1 of run hostile-nosuch, not a run id/ },
  { channel: 'api', issue: '10 run id', name: 'GET /v1/runs/<run>%2F<stage>', method: 'GET', path: (c) => `/v1/runs/${c.source}%2FmetricCache`, token: 'ro', status: 400, message: /is the workflow of stage metricCache of run hostile-source, not a run id: use hostile-source/ },
  { channel: 'api', issue: '10 run id', name: 'POST /v1/runs?runId=<run>/<stage>', method: 'POST', path: (c) => `/v1/runs?runId=${c.source}%2FmetricCache`, body: (c) => c.input(), status: 400, message: /is the workflow of stage metricCache/ },
  { channel: 'api', issue: '10 run id', name: 'GET logs of ..%2F..%2Fetc', method: 'GET', path: '/v1/runs/..%2F..%2Fetc/stages/stage1/logs', token: 'ro', status: 400, message: /is not a run id/ },
  { channel: 'api-rerun', issue: '10 run id', name: 'a rerun of <run>/<stage>', method: 'POST', path: (c) => `/v1/runs/${c.source}%2FmetricCache/reruns?dryRun=true`, body: {}, status: 400, message: /is the workflow of stage metricCache/ },
  { channel: 'cli', issue: '10 run id', name: 'start --run-id <run>/<stage>', args: (c) => ['start', '--run-id', `${c.source}/metricCache`, '--input', c.file('valid-input.json', c.input())], exit: EXIT.badInput, message: /is the workflow of stage metricCache of run hostile-source/ },
  { channel: 'cli', issue: '10 run id', name: 'status <run>/<stage> says it is not a run id', args: (c) => ['status', `${c.source}/metricCache`], exit: EXIT.badInput, message: /is the workflow of stage metricCache of run hostile-source, not a run id: use hostile-source/ },
  { channel: 'cli', issue: '10 run id', name: 'logs <run>/<stage>', args: (c) => ['logs', `${c.source}/metricCache`, 'metricCache'], exit: EXIT.badInput, message: /not a run id/ },
  { channel: 'cli', issue: '10 run id', name: 'cancel ../x', args: ['cancel', '../x'], exit: EXIT.badInput, message: /not a run id/ },
  { channel: 'cli', issue: '10 run id', name: 'rerun ../x', args: ['rerun', '../x', '--dry-run'], exit: EXIT.badInput, message: /not a run id/ },
  { channel: 'cli', issue: '10 run id', name: 'rerun --run-id with a shell string', args: (c) => ['rerun', c.source, '--run-id', '`id`', '--dry-run'], exit: EXIT.badInput, message: /"`id`" is not a run id/ },
  { channel: 'cli', issue: '10 run id', name: 'plan --run-id ../x', args: (c) => ['plan', '--run-id', '../x', '--input', c.file('valid-input.json', c.input())], exit: EXIT.badInput, message: /not a run id/ },
  { channel: 'cli', issue: '10 run id', name: 'a run id with a terminal escape is shown escaped', args: ['status', 'x\u001b[2J'], exit: EXIT.badInput, message: /"x\\u001b\[2J" is not a run id/ },

  // 12: schedules that never fire or fire every second.
  { channel: 'schedule-file', issue: '12 bounds', name: 'a schedule on February 31', args: (c) => ['schedule', 'create', '--file', c.file('feb31.json', c.schedule({ calendar: { month: 'FEB', dayOfMonth: 31, hour: 2, minute: 30 } }))], exit: EXIT.badInput, message: /calendar: never fires/ },
  { channel: 'schedule-file', issue: '12 bounds', name: 'a schedule every second', args: (c) => ['schedule', 'create', '--file', c.file('every-second.json', c.schedule({ calendar: { second: '*', minute: '*', hour: '*' } }))], exit: EXIT.badInput, message: /calendar: fires 3600 times an hour/ },
  { channel: 'schedule-file', issue: '12 bounds', name: 'a cron line every minute', args: (c) => ['schedule', 'create', '--file', c.file('every-minute.json', c.schedule({ calendar: undefined, cron: '* * * * *' }))], exit: EXIT.badInput, message: /cron: fires 60 times an hour/ },
  { channel: 'schedule-file', issue: '12 bounds', name: 'a catch-up window of 1000 days', args: (c) => ['schedule', 'create', '--file', c.file('catchup.json', c.schedule({ catchupWindow: '1000 days' }))], exit: EXIT.badInput, message: /catchupWindow: at most 30 days/ },
  ...scheduleInputs,
  { channel: 'schedule-file', issue: '8 prototype keys', name: 'schedule input: a __proto__ key', args: (c) => ['schedule', 'create', '--file', c.file('schedule-proto.json', withRawKey(c.schedule(), 'input', JSON.parse(withRawKey(c.input(), '__proto__', { polluted: true })) as unknown))], exit: EXIT.badInput, message: /__proto__/ },
  { channel: 'schedule-file', issue: '10 run id', name: 'a schedule id that is a path', args: (c) => ['schedule', 'create', '--file', c.file('schedule-path-id.json', c.schedule({ scheduleId: '../x' }))], exit: EXIT.badInput, message: /scheduleId: / },
  { channel: 'schedule-file', issue: '13 error shape', name: 'a schedule file that is an array', args: (c) => ['schedule', 'create', '--file', c.file('schedule-array.json', [1, 2])], exit: EXIT.badInput, message: /must be one JSON object/ },
  { channel: 'schedule-file', issue: '13 error shape', name: 'a schedule file that is not JSON', args: (c) => ['schedule', 'create', '--file', c.file('schedule-text.json', 'nightly at 2')], exit: EXIT.badInput, message: /is not valid JSON/ },
  { channel: 'cli', issue: '13 error shape', name: 'schedule describe ../x', args: ['schedule', 'describe', '../x'], exit: EXIT.badInput, message: /"\.\.\/x" is not a schedule id/ },
  { channel: 'cli', issue: '13 error shape', name: 'schedule describe of an unknown schedule', args: ['schedule', 'describe', 'hostile-nosuch'], exit: EXIT.notFound, message: /no schedule hostile-nosuch/ },
  { channel: 'cli', issue: '13 error shape', name: 'schedule pause with a 100-character id', args: ['schedule', 'pause', 'a'.repeat(100)], exit: EXIT.badInput, message: /is not a schedule id/ },

  ...apiRerun,
  ...cliStart,
  ...cliRerun,
  ...temporalInputs,
  { channel: 'temporal', issue: '8 prototype keys', name: 'temporal workflow start: a __proto__ key', workflowId: 'hostile-temporal-proto', input: (c) => withRawKey(c.input(), '__proto__', { polluted: true }), failureType: 'InvalidPipelineInput', message: /__proto__: keys named __proto__, constructor or prototype are not allowed/ },
  { channel: 'cli-rerun', issue: '8 prototype keys', name: 'rerun --overrides: a __proto__ key', args: (c) => ['rerun', c.source, '--dry-run', '--overrides', c.file('overrides-proto.json', withRawKey(REAL_CHANGE, '__proto__', { polluted: true }))], exit: EXIT.badInput, message: /overrides\.__proto__: keys named __proto__, constructor or prototype are not allowed/ },
  { channel: 'cli-rerun', issue: '8 prototype keys', name: 'rerun --overrides: constructor beside a real change', args: (c) => ['rerun', c.source, '--dry-run', '--overrides', c.file('overrides-constructor.json', { constructor: { name: 'x' }, ...REAL_CHANGE })], exit: EXIT.badInput, message: /overrides\.constructor: keys named/ },
  { channel: 'cli-rerun', issue: '13 error shape', name: 'rerun --overrides: an array', args: (c) => ['rerun', c.source, '--dry-run', '--overrides', c.file('overrides-array.json', [1])], exit: EXIT.badInput, message: /must hold one JSON object/ },
  { channel: 'cli-rerun', issue: '13 error shape', name: 'rerun --overrides: reuse', args: (c) => ['rerun', c.source, '--dry-run', '--overrides', c.file('overrides-reuse.json', { reuse: { policy: 'never' } })], exit: EXIT.badInput, message: /overrides\.reuse cannot be set/ },
  { channel: 'cli-rerun', issue: '13 error shape', name: 'rerun --from an unknown stage', args: (c) => ['rerun', c.source, '--from', 'stage9', '--dry-run'], exit: EXIT.badInput, message: /unknown stage "stage9"/ },

  // 13: error shape of the API.
  { channel: 'api', issue: '13 error shape', name: 'logs of a run that failed validation', method: 'GET', path: (c) => `/v1/runs/${c.invalidRun}/stages/metricCache/logs`, token: 'ro', status: 404, message: /run hostile-invalid ended \(FAILED\) before any stage was planned: invalid pipeline input: experiment: / },
  { channel: 'api', issue: '13 error shape', name: 'status of a run that failed validation says why', method: 'GET', path: (c) => `/v1/runs/${c.invalidRun}`, token: 'ro', status: 200, message: /before any stage was planned: invalid pipeline input/ },
  { channel: 'api', issue: '13 error shape', name: 'cancel of a run that failed validation', method: 'POST', path: (c) => `/v1/runs/${c.invalidRun}/cancel`, status: 409, message: /has already ended \(FAILED\)/ },
  { channel: 'api', issue: '13 error shape', name: 'a rerun of a run that failed validation', method: 'POST', path: (c) => `/v1/runs/${c.invalidRun}/reruns?dryRun=true`, body: {}, status: 400, message: /invalid pipeline input/ },
  { channel: 'api', issue: '13 error shape', name: 'text/plain', method: 'POST', path: '/v1/runs', raw: (c) => json(c.input()), contentType: 'text/plain', status: 415, message: /the body must be application\/json \(got text\/plain\)/ },
  { channel: 'api', issue: '13 error shape', name: 'a form body', method: 'POST', path: '/v1/runs', raw: 'experiment=x', contentType: 'application/x-www-form-urlencoded', status: 415, message: /application\/json/ },
  { channel: 'api', issue: '13 error shape', name: 'a 300-character run id in the path', method: 'GET', path: `/v1/runs/${'r'.repeat(300)}`, token: 'ro', status: 400, message: /it has 300 characters; a run id has at most 200/ },
  { channel: 'api', issue: '13 error shape', name: 'a 3000-character run id in the path', method: 'GET', path: `/v1/runs/${'r'.repeat(3000)}`, token: 'ro', status: 400, message: /a path parameter is too long \(a run id has at most 200 characters\)/ },
  { channel: 'api', issue: '13 error shape', name: 'a path that is not percent-encoding', method: 'GET', path: '/v1/runs/%E0%A4%A', token: 'ro', status: 400, message: /not valid percent-encoding/ },
  { channel: 'api', issue: '13 error shape', name: 'malformed JSON', method: 'POST', path: '/v1/runs', raw: '{"experiment": "x",', status: 400, message: /the body is not valid JSON/ },
  { channel: 'api', issue: '13 error shape', name: 'a JSON array body', method: 'POST', path: '/v1/runs', raw: '[{"experiment": "x"}]', status: 400, message: /body: .*array/ },
  { channel: 'api', issue: '13 error shape', name: 'a JSON null body', method: 'POST', path: '/v1/runs', raw: 'null', status: 400, message: /body: / },
  { channel: 'api', issue: '13 error shape', name: 'a JSON number body', method: 'POST', path: '/v1/runs', raw: '42', status: 400, message: /body: .*number/ },
  { channel: 'api', issue: '13 error shape', name: 'a JSON string body', method: 'POST', path: '/v1/runs', raw: '"run"', status: 400, message: /body: .*string/ },
  { channel: 'api', issue: '13 error shape', name: 'an empty JSON body', method: 'POST', path: '/v1/runs', raw: '', status: 400, message: /body: / },
  { channel: 'api', issue: '13 error shape', name: 'a body nested 100000 deep', method: 'POST', path: '/v1/runs', raw: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, status: 400, message: /nests deeper than 32 levels/ },
  { channel: 'api', issue: '13 error shape', name: 'a 2 MiB body', method: 'POST', path: '/v1/runs', raw: (c) => json({ ...c.input(), padding: 'x'.repeat(2 * 1024 * 1024) }), status: 413, message: /the body is larger than 1048576 bytes/ },
  { channel: 'api', issue: '13 error shape', name: 'a token in the query string is refused and never logged', method: 'GET', path: '/v1/runs?access_token={rw}', token: 'ro', status: 400, message: /access_token/ },
  { channel: 'api', issue: '13 error shape', name: 'a list with pageSize 1e9', method: 'GET', path: '/v1/runs?pageSize=1000000000', token: 'ro', status: 400, message: /pageSize/ },
  { channel: 'api', issue: '13 error shape', name: 'a list filter with a bidi override', method: 'GET', path: '/v1/runs?experiment=%E2%80%AEabc', token: 'ro', status: 400, message: /experiment/ },
  { channel: 'api', issue: '13 error shape', name: 'logs of attempt 1e11', method: 'GET', path: (c) => `/v1/runs/${c.source}/stages/metricCache/logs?attempt=99999999999`, token: 'ro', status: 400, message: /attempt/ },
  { channel: 'api', issue: '13 error shape', name: 'logs of worker -1', method: 'GET', path: (c) => `/v1/runs/${c.source}/stages/metricCache/logs?worker=-1`, token: 'ro', status: 400, message: /worker/ },
  { channel: 'api', issue: '13 error shape', name: 'logs of a stage the run does not run', method: 'GET', path: (c) => `/v1/runs/${c.source}/stages/stage1/logs`, token: 'ro', status: 404, message: /does not run stage stage1/ },
  { channel: 'api', issue: '13 error shape', name: 'logs of an unknown stage', method: 'GET', path: (c) => `/v1/runs/${c.source}/stages/stage9/logs`, token: 'ro', status: 400, message: /stage/ },
  { channel: 'api', issue: '13 error shape', name: 'logs of an unknown run', method: 'GET', path: '/v1/runs/hostile-nosuch/stages/metricCache/logs', token: 'ro', status: 404, message: /no run hostile-nosuch/ },
  { channel: 'api', issue: '13 error shape', name: 'status of an unknown run', method: 'GET', path: '/v1/runs/hostile-nosuch', token: 'ro', status: 404, message: /no run hostile-nosuch/ },
  { channel: 'api', issue: '13 error shape', name: 'cancel of an unknown run', method: 'POST', path: '/v1/runs/hostile-nosuch/cancel', status: 404, message: /no run hostile-nosuch/ },
  { channel: 'api', issue: '13 error shape', name: 'cancel of a run that has ended', method: 'POST', path: (c) => `/v1/runs/${c.source}/cancel`, status: 409, message: /has already ended \(COMPLETED\)/ },
  { channel: 'api', issue: '13 error shape', name: 'a stage workflow is no run', method: 'GET', path: (c) => `/v1/runs/${c.source}%2FmetricCache/stages/metricCache/logs`, token: 'ro', status: 400, message: /not a run id/ },
  { channel: 'api', issue: '13 error shape', name: 'PUT on a run', method: 'PUT', path: (c) => `/v1/runs/${c.source}`, status: 405, message: /PUT is not allowed here; use GET/ },
  { channel: 'api', issue: '13 error shape', name: 'DELETE on the runs', method: 'DELETE', path: '/v1/runs', status: 405, message: /DELETE is not allowed here/ },
  { channel: 'api', issue: '13 error shape', name: 'an unknown route', method: 'GET', path: '/v1/secrets', token: 'ro', status: 404, message: /no route GET \/v1\/secrets/ },
  { channel: 'api', issue: 'extra', name: 'OPTIONS on the runs', method: 'OPTIONS', path: '/v1/runs', status: 405, message: /OPTIONS is not allowed here/ },
  { channel: 'api', issue: 'extra', name: 'an empty run id (trailing slash)', method: 'GET', path: '/v1/runs/', token: 'ro', status: 400, message: /a run id cannot be empty/ },
  { channel: 'api', issue: 'extra', name: 'a NUL byte as run id', method: 'GET', path: '/v1/runs/%00', token: 'ro', status: 400, message: /"\\u0000" is not a run id/ },
  { channel: 'api', issue: 'extra', name: 'a query parameter given 500 times', method: 'GET', path: `/v1/runs?${'experiment=a&'.repeat(500)}`, token: 'ro', status: 400, message: /experiment: .*array/ },
  { channel: 'api', issue: '13 error shape', name: 'no token', method: 'POST', path: '/v1/runs', body: (c) => c.input(), token: 'none', status: 401, message: /a valid bearer token is required/ },
  { channel: 'api', issue: '13 error shape', name: 'a read-only token starting a run', method: 'POST', path: '/v1/runs', body: (c) => c.input(), token: 'ro', status: 403, message: /lacks the scope runs:write/ },
  { channel: 'api-rerun', issue: '13 error shape', name: 'a rerun of an unknown run', method: 'POST', path: '/v1/runs/hostile-nosuch/reruns?dryRun=true', body: {}, status: 404, message: /no run hostile-nosuch/ },
  { channel: 'api-rerun', issue: '13 error shape', name: 'rerun overrides that are an array', method: 'POST', path: (c) => `/v1/runs/${c.source}/reruns?dryRun=true`, body: { overrides: [1] }, status: 400, message: /overrides/ },
  { channel: 'api-rerun', issue: '13 error shape', name: 'rerun force with 10000 stages', method: 'POST', path: (c) => `/v1/runs/${c.source}/reruns?dryRun=true`, body: { force: Array.from({ length: 10_000 }, () => 'stage1') }, status: 400, message: /force/ },
  { channel: 'api-rerun', issue: '13 error shape', name: 'a confirm with a made-up plan token', method: 'POST', path: (c) => `/v1/runs/${c.source}/reruns`, body: { planToken: 'a'.repeat(64) }, status: 409, message: /the plan changed since the dry run/ },

  // 13: error shape of the CLI: one line, an exit code per kind.
  { channel: 'cli', issue: '13 error shape', name: 'status of an unknown run', args: ['status', 'hostile-nosuch'], exit: EXIT.notFound, message: /^recogdrive: no run hostile-nosuch$/m },
  { channel: 'cli', issue: '13 error shape', name: 'status --watch of an unknown run', args: ['status', 'hostile-nosuch', '--watch'], exit: EXIT.notFound, message: /no run hostile-nosuch/ },
  { channel: 'cli', issue: '13 error shape', name: 'logs of an unknown run', args: ['logs', 'hostile-nosuch', 'metricCache'], exit: EXIT.notFound, message: /no run hostile-nosuch/ },
  { channel: 'cli', issue: '13 error shape', name: 'cancel of an unknown run', args: ['cancel', 'hostile-nosuch'], exit: EXIT.notFound, message: /no run hostile-nosuch/ },
  { channel: 'cli', issue: '13 error shape', name: 'rerun of an unknown run', args: ['rerun', 'hostile-nosuch', '--dry-run'], exit: EXIT.notFound, message: /no run hostile-nosuch/ },
  { channel: 'cli', issue: '13 error shape', name: 'cancel of a run that has ended', args: (c) => ['cancel', c.source], exit: EXIT.conflict, message: /run hostile-source has already ended \(COMPLETED\)/ },
  { channel: 'cli', issue: '13 error shape', name: 'status of a run that failed validation', args: (c) => ['status', c.invalidRun], exit: EXIT.runFailed, message: /run hostile-invalid ended \(FAILED\) before any stage was planned: invalid pipeline input: experiment: / },
  { channel: 'cli', issue: '13 error shape', name: 'logs of a run that failed validation', args: (c) => ['logs', c.invalidRun, 'metricCache'], exit: EXIT.notFound, message: /before any stage was planned/ },
  { channel: 'cli', issue: '13 error shape', name: 'logs of a stage the run does not run', args: (c) => ['logs', c.source, 'stage1'], exit: EXIT.notFound, message: /does not run stage stage1/ },
  { channel: 'cli', issue: '13 error shape', name: 'logs of an unknown stage', args: (c) => ['logs', c.source, 'stage9'], exit: EXIT.badInput, message: /unknown stage "stage9"/ },
  { channel: 'cli', issue: '13 error shape', name: 'logs --attempt 1e9', args: (c) => ['logs', c.source, 'metricCache', '--attempt', '1e9'], exit: EXIT.badInput, message: /--attempt must be a whole number from 1 to 1000/ },
  { channel: 'cli', issue: '13 error shape', name: 'logs --worker -1', args: (c) => ['logs', c.source, 'metricCache', '--worker', '-1'], exit: EXIT.badInput, message: /--worker must be a whole number from 0 to 1023/ },
  { channel: 'cli', issue: '13 error shape', name: 'status --interval 0', args: (c) => ['status', c.source, '--watch', '--interval', '0'], exit: EXIT.badInput, message: /--interval must be a whole number/ },
  { channel: 'cli', issue: '13 error shape', name: 'start with an input that is not JSON', args: (c) => ['start', '--input', c.file('not-json.json', '{"experiment": ')], exit: EXIT.badInput, message: /is not valid JSON/ },
  { channel: 'cli', issue: '13 error shape', name: 'start with an input that is an array', args: (c) => ['start', '--input', c.file('array.json', [c.input()])], exit: EXIT.badInput, message: /invalid pipeline input/ },
  { channel: 'cli', issue: '13 error shape', name: 'start with a missing input file', args: ['start', '--input', '/nonexistent/hostile.json'], exit: EXIT.badInput, message: /cannot read \/nonexistent\/hostile\.json/ },
  { channel: 'cli', issue: '13 error shape', name: 'an unknown command', args: ['destroy'], exit: EXIT.badInput, message: /unknown command 'destroy'/ },
  { channel: 'cli', issue: '13 error shape', name: 'an unknown option', args: ['status', '--rm-rf', 'x'], exit: EXIT.badInput, message: /unknown option '--rm-rf'/ },
  { channel: 'cli', issue: '13 error shape', name: 'a malformed TEMPORAL_ADDRESS', args: ['status', 'hostile-source'], env: { TEMPORAL_ADDRESS: 'host with spaces' }, exit: EXIT.badInput, message: /TEMPORAL_ADDRESS: host:port/ },
  { channel: 'cli', issue: '13 error shape', name: 'an unreachable server', args: ['status', 'hostile-source'], env: { TEMPORAL_ADDRESS: '127.0.0.1:1' }, exit: EXIT.unreachable, message: /cannot reach Temporal at 127\.0\.0\.1:1/ },
  {
    channel: 'cli',
    issue: '13 error shape',
    name: 'api with a tokens file that holds a token instead of its hash (never echoed)',
    args: ['api', '--port', '65000'],
    env: (c) => ({ RECOGDRIVE_API_TOKENS_FILE: c.file('plaintext-tokens.json', [{ name: 'ci', sha256: c.secret, scopes: ['runs:read'] }]) }),
    exit: EXIT.badInput,
    message: /0\.sha256: the hex sha256 of the token \(never the token itself\)/,
  },
  { channel: 'cli', issue: '13 error shape', name: 'api with a missing tokens file', args: ['api', '--port', '65000'], env: { RECOGDRIVE_API_TOKENS_FILE: '/nonexistent/tokens.json' }, exit: EXIT.badInput, message: /cannot read RECOGDRIVE_API_TOKENS_FILE \/nonexistent\/tokens\.json: ENOENT/ },
  { channel: 'cli', issue: '13 error shape', name: 'api with a short plan secret', args: ['api', '--port', '65000'], env: { RECOGDRIVE_API_PLAN_SECRET: 'short' }, exit: EXIT.badInput, message: /RECOGDRIVE_API_PLAN_SECRET: at least 32 characters/ },
];
