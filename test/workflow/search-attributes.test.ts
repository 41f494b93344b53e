/** Runs are findable by experiment, status and source run through Temporal's visibility (Web UI, CLI, API). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

async function idsFor(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of env.stack.client.workflow.list({ query })) ids.push(execution.workflowId);
  return ids.sort();
}

/** Visibility is eventually consistent: poll until the query returns what is expected. */
async function eventually(query: string, expected: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await idsFor(query);
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(last, expected, query);
}

test('a run is listed by experiment and status, and a rerun by its source run', async () => {
  const first = await env.start('sa-first', env.input({ experiment: 'sa-exp', stages: ['metricCache'], durationMs: 200 }));
  await first.result();
  const failing = await env.start('sa-failing', env.input({ experiment: 'sa-exp', stages: ['metricCache'], simulate: { metricCache: { fault: { kind: 'crash' } } } }));
  await failing.result().catch(() => {});
  const rerun = await env.start('sa-rerun', env.input({ experiment: 'sa-other', stages: ['metricCache'], durationMs: 200, reuse: { policy: 'verified', rerunOf: 'sa-first' } }));
  await rerun.result();

  await eventually('RecogdriveExperiment = "sa-exp" AND RecogdriveStatus = "succeeded"', ['sa-first']);
  await eventually('RecogdriveExperiment = "sa-exp" AND RecogdriveStatus = "failed"', ['sa-failing']);
  await eventually('RecogdriveRerunOf = "sa-first"', ['sa-rerun']);
  await eventually('RecogdriveExperiment = "sa-other"', ['sa-rerun']);
});
