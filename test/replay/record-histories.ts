/**
 * `npm run record-histories`: runs pipelines on a real Temporal server and saves their event
 * histories as replay fixtures. Re-record only when a workflow change is deliberate AND guarded
 * with patched() for runs in flight; the replay test fails on any unguarded change.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { startTestEnv } from '../helpers/local-env.ts';
import { HISTORY_DIR } from './history-dir.ts';

const env = await startTestEnv();
try {
  const ok = await env.start('replay-success', env.input({ durationMs: 300, reuse: { policy: 'verified' } }));
  const failing = await env.start('replay-failure', env.input({ durationMs: 300, simulate: { featureCache: { fault: { kind: 'crash' } } } }));
  await ok.result();
  await failing.result().catch(() => {});
  // A partial rerun of the successful run: upstream stages reused, the metric cache and what reads it run.
  const rerun = env.input({ durationMs: 300, reuse: { policy: 'verified', rerunOf: 'replay-success' } }) as unknown as Record<string, Record<string, unknown>>;
  rerun.metricCache = { ...rerun.metricCache, worker: 'single_machine_thread_pool' };
  await (await env.start('replay-reuse', rerun)).result();
  await mkdir(HISTORY_DIR, { recursive: true });
  for (const workflowId of ['replay-success', 'replay-success/stage3', 'replay-failure', 'replay-failure/featureCache', 'replay-reuse']) {
    const history = await env.stack.client.workflow.getHandle(workflowId).fetchHistory();
    const file = join(HISTORY_DIR, `${workflowId.replace('/', '--')}.json`);
    await writeFile(file, JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1));
    console.log(`recorded ${file} (${history.events?.length} events)`);
  }
} finally {
  await env.close();
}
