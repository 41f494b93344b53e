/** The README's way to start a run with the real `temporal` CLI: the worker completes it and `status` answers. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureTemporalCli } from '../../infra/local/temporal-cli.ts';
import type { RunStatus, RunSummary } from '../../pipeline/status.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { type TestEnv, startTestEnv, waitUntilRunning } from '../helpers/local-env.ts';

const run = promisify(execFile);
let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

test('temporal workflow start with the input from `recogdrive local-input` runs the pipeline', { timeout: 120_000 }, async () => {
  const { stdout: inputJson } = await run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'local-input', '--data-dir', env.dataDir]);
  const input = JSON.parse(inputJson) as { experiment: string; stages?: string[] };
  const inputFile = join(env.dataDir, 'input.json');
  await writeFile(inputFile, JSON.stringify({ ...input, stages: ['metricCache'] }));

  const temporal = await ensureTemporalCli();
  const address = ['--address', env.stack.server.address];
  await run(temporal, ['workflow', 'start', ...address, '--type', 'recogdrivePipeline', '--task-queue', 'recogdrive', '--workflow-id', 'cli-run', '--input-file', inputFile]);

  const summary = (await env.stack.client.workflow.getHandle('cli-run').result()) as RunSummary;
  assert.equal(summary.stages.find((s) => s.stage === 'metricCache')!.decision, 'RUN');
  const { stdout } = await run(temporal, ['workflow', 'query', ...address, '--workflow-id', 'cli-run', '--name', 'status', '--output', 'json']);
  const answer = JSON.parse(stdout) as { queryResult: RunStatus[] };
  assert.equal(answer.queryResult[0]!.state, 'succeeded');

  // The stage's log outlives its compute: `recogdrive logs` reads it from the artifact store.
  const logs = await run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'logs', 'cli-run', 'metricCache'], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address },
  });
  assert.match(logs.stdout, /Starting metric caching of \d+ files/);
  assert.match(logs.stdout, /Done storing metadata csv file\./);
  assert.deepEqual(await env.compute.list(), [], 'the compute that wrote the log is gone');
});

test('recogdrive logs --follow prints a running stage\'s log as it grows and returns when the stage ends', { timeout: 120_000 }, async () => {
  const handle = await env.start('follow-run', env.input({ stages: ['metricCache'], simulate: { metricCache: { durationMs: 4000 } } }));
  await waitUntilRunning(handle, 'metricCache');
  const { stdout } = await run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'logs', 'follow-run', 'metricCache', '--follow'], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address },
  });
  assert.match(stdout, /Starting metric caching/);
  assert.match(stdout, /Done storing metadata csv file\./, 'the lines written after following began are there too');
  assert.equal((await handle.describe()).status.name, 'COMPLETED');
});

test('recogdrive status --watch follows a run until it ends and exits by how it ended', { timeout: 120_000 }, async () => {
  const cli = (...args: string[]) =>
    run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), ...args], { env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address } }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
  // Long enough that the CLI process (started under load) sees the run still running.
  const ok = await env.start('watch-ok', env.input({ stages: ['metricCache'], simulate: { metricCache: { durationMs: 8000 } } }));
  await waitUntilRunning(ok, 'metricCache');
  const watched = await cli('status', 'watch-ok', '--watch', '--interval', '1', '--json');
  assert.equal(watched.code, 0);
  const states = watched.stdout.trim().split('\n').map((line) => (JSON.parse(line) as RunStatus).state);
  assert.equal(states[0], 'running', 'the first view shows the run running');
  assert.equal(states.at(-1), 'succeeded');

  const failing = await env.start('watch-fail', env.input({ stages: ['metricCache'], simulate: { metricCache: { fault: { kind: 'crash' } } } }));
  const failed = await cli('status', 'watch-fail', '--watch', '--interval', '1');
  await failing.result().catch(() => {});
  assert.equal(failed.code, 1);
  assert.match(failed.stdout, /run watch-fail \(local-demo\): failed/);
});

test('recogdrive start with a run id already used: the same input returns that run (exit 0), another input is a conflict (exit 5) and starts nothing', { timeout: 120_000 }, async () => {
  const cli = (...args: string[]) =>
    run(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: env.stack.server.address, RECOGDRIVE_TASK_QUEUE: env.stack.taskQueue },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  const input = env.input({ stages: ['metricCache'], durationMs: 200 });
  const same = join(env.dataDir, 'same-input.json');
  const other = join(env.dataDir, 'other-input.json');
  await writeFile(same, JSON.stringify(input));
  await writeFile(other, JSON.stringify({ ...input, experiment: 'another-experiment' }));

  const first = await cli('start', '--input', same, '--run-id', 'cli-once', '--json');
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(JSON.parse(first.stdout), { runId: 'cli-once', created: true });
  const firstExecution = (await env.stack.client.workflow.getHandle('cli-once').describe()).runId;
  await env.stack.client.workflow.getHandle('cli-once').result();

  const again = await cli('start', '--input', same, '--run-id', 'cli-once', '--json');
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), { runId: 'cli-once', created: false });
  const conflict = await cli('start', '--input', other, '--run-id', 'cli-once');
  assert.equal(conflict.code, 5, conflict.stderr);
  assert.equal(conflict.stderr, 'recogdrive: run cli-once already exists with a different input (the run id was used for another input)\n');
  assert.equal((await env.stack.client.workflow.getHandle('cli-once').describe()).runId, firstExecution, 'still the first execution: nothing was started');
});
