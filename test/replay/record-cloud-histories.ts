/**
 * `npm run record-cloud-histories`: a run on (fake) Cloud TPUs with a stockout in the first zone
 * and a preemption mid-stage, recorded as replay fixtures of the cloud path of the stage
 * workflow (zone failover, node loss → new attempt, health checks, cost record). Needs the test
 * bed. Re-record only for a deliberate, patched()-guarded change, like record-histories.ts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { stageWorkflowId } from '../../pipeline/naming.ts';
import { metricCacheStatus, startCloudBed, tpuInput, vmGone, ZONES } from '../helpers/cloud-env.ts';
import { waitForStatus, waitUntilRunning } from '../helpers/local-env.ts';
import { HISTORY_DIR } from './history-dir.ts';

const runId = 'replay-cloud';
const world = await startCloudBed(2, 'record-cloud-histories');
const { bed, cloud, env, image } = world;
try {
  cloud.fake.stockout(ZONES[0]);
  const handle = await env.start(
    runId,
    tpuInput(env, image, { metricCache: { env: { RECOGDRIVE_SIM_DURATION_MS: '8000' }, compute: { spot: true, failover: { spotFallbackAfterPreemptions: 1 } } } }),
  );
  await waitUntilRunning(handle, 'metricCache');
  cloud.fake.stockout(ZONES[0], false);
  const [node] = cloud.nodesOf(runId);
  cloud.fake.preemptAt(node!.name);
  await vmGone(bed, cloud.slotOf(node!.name)!, runId);
  await waitForStatus(handle, (s) => metricCacheStatus(s).attempt === 2, 60_000);
  await handle.result();
  await mkdir(HISTORY_DIR, { recursive: true });
  for (const workflowId of [runId, stageWorkflowId(runId, 'metricCache')]) {
    const history = await env.stack.client.workflow.getHandle(workflowId).fetchHistory();
    const file = join(HISTORY_DIR, `${workflowId.replace('/', '--')}.json`);
    await writeFile(file, JSON.stringify({ workflowId, history: JSON.parse(historyToJSON(history)) }, null, 1));
    console.log(`recorded ${file} (${history.events?.length} events)`);
  }
} finally {
  await world.stop();
}
