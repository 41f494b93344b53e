/** Recorded pipeline histories replay against the current workflow code: a non-deterministic change fails here. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../helpers/local-env.ts';
import { HISTORY_DIR } from './history-dir.ts';
const files = (await readdir(HISTORY_DIR)).filter((f) => f.endsWith('.json')).sort();

test('there are recorded histories of a successful, a failed and a partially reused run, of runs from before reuse, from before the markers moved beside the outputs and from before the checkpoint exports, and of a cloud run with failover and a preemption', () => {
  for (const name of [
    'replay-success.json',
    'replay-failure.json',
    'replay-reuse.json',
    'pre-artifact-reuse--replay-success.json',
    'pre-markers-beside--replay-success.json',
    'pre-markers-beside--replay-cloud.json',
    'pre-checkpoint-exports--replay-success.json',
    'pre-checkpoint-exports--replay-reuse.json',
    'pre-checkpoint-exports--replay-cloud.json',
    'replay-cloud--metricCache.json',
  ]) {
    assert.ok(files.includes(name), `${name} in ${files.join(', ')}`);
  }
});

for (const file of files) {
  test(`recorded history ${file} replays without a determinism error`, async () => {
    const { workflowId, history } = JSON.parse(await readFile(join(HISTORY_DIR, file), 'utf8')) as { workflowId: string; history: unknown };
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  });
}
