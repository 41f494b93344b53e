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
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

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
});
