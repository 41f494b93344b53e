/**
 * Cloud TPU recovery figures (part of `npm run bench`; needs the test bed: sshd + podman).
 * A real Temporal server and worker, the real v2.TpuClient against the fake Cloud TPU API, the
 * nodes' workers are test bed workers running the stage image.
 *
 * 1. Preemption → recovery, with the production defaults for detection (health check every
 *    30 s, cloud polls every 15 s) and a node creation time of BENCH_TPU_CREATE_MS (default
 *    30 s; real v6e slices take 1–5 minutes, so the overhead beyond creation is the figure to
 *    compare): preemption → noticed, → replacement READY, → the stage running again.
 *    BENCH_PREEMPTIONS (default 3) rounds.
 * 2. Chaos: BENCH_CHAOS_RUNS (default 8) runs, each with one fault (stockout, preemption,
 *    cancel while provisioning, cancel while running, failing deletes, a quota of 0 in the region
 *    of both zones — which must fail the stage at once), then the nodes
 *    and queued resources left in the fake (goal: 0) and what a janitor dry run would delete.
 */
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { stageWorkflowId } from '../pipeline/naming.ts';
import type { RunStatus } from '../pipeline/status.ts';
import { runStatusQuery } from '../workflows/messages.ts';
import { runJanitorOnce } from '../workers/janitor-command.ts';
import { PROJECT_ROOT } from '../workers/project-root.ts';
import { cloudWorkerEnv, type FakeTpuCloud, metricCacheStatus, pinnedTestbedImage, startFakeTpuCloud, tpuInput, vmGone, ZONES } from '../test/helpers/cloud-env.ts';
import { startTestEnv, waitUntilRunning, type TestEnv } from '../test/helpers/local-env.ts';
import { testbedUnmet } from '../test/testbed/requirements.ts';
import { startTestbed } from '../test/testbed/testbed.ts';

const createMs = Number(process.env.BENCH_TPU_CREATE_MS ?? 30_000);
const preemptions = Number(process.env.BENCH_PREEMPTIONS ?? 3);
const chaosRuns = Number(process.env.BENCH_CHAOS_RUNS ?? 8);

const unmet = testbedUnmet();
if (unmet !== undefined) {
  console.log(`cloud TPU recovery bench skipped: ${unmet}`);
  process.exit(0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(handle: WorkflowHandle, predicate: (s: RunStatus) => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate(await handle.query(runStatusQuery))) return Date.now();
    if (Date.now() > deadline) throw new Error('timed out waiting for the run');
    await sleep(50);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function preemptionRound(env: TestEnv, cloud: FakeTpuCloud, image: string, round: number) {
  const runId = `bench-preempt-${Date.now()}-${round}`;
  const handle = await env.start(
    runId,
    tpuInput(env, image, {
      metricCache: {
        env: { RECOGDRIVE_SIM_DURATION_MS: String(createMs * 4 + 120_000) },
        // Production detection settings; the worker's cloud poll is set by the bench's worker env.
        compute: { spot: true, failover: { healthCheckInterval: '30s' } },
      },
    }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const [node] = cloud.nodesOf(runId);
  const preemptedAt = Date.now();
  cloud.fake.preemptAt(node!.name);
  await killVm(cloud, node!.name, runId);
  const noticedAt = await until(handle, (s) => metricCacheStatus(s).attempt === 2, 120_000);
  const runningAt = await until(handle, (s) => metricCacheStatus(s).attempt === 2 && metricCacheStatus(s).phase === 'running', createMs + 180_000);
  const replacement = cloud.nodesOf(runId).find((n) => n.name !== node!.name)!;
  await handle.cancel();
  await env.stack.client.workflow.getHandle(stageWorkflowId(runId, 'metricCache')).result().catch(() => {});
  return { noticedMs: noticedAt - preemptedAt, readyMs: replacement.readyAt - preemptedAt, runningMs: runningAt - preemptedAt };
}

/** A preempted VM takes its containers with it. */
async function killVm(cloud: FakeTpuCloud, nodeName: string, runId: string): Promise<void> {
  await vmGone(bed, cloud.slotOf(nodeName)!, runId);
}

type Fault = 'stockout' | 'preemption' | 'cancel-provisioning' | 'cancel-running' | 'failing-deletes' | 'quota' | 'none';
const FAULTS: Fault[] = ['stockout', 'preemption', 'cancel-provisioning', 'cancel-running', 'failing-deletes', 'quota', 'none'];

async function chaosRun(env: TestEnv, cloud: FakeTpuCloud, image: string, i: number, fault: Fault): Promise<string> {
  const runId = `bench-chaos-${Date.now()}-${i}`;
  if (fault === 'stockout') cloud.fake.stockout(ZONES[0]);
  if (fault === 'quota') cloud.fake.quotaExceeded(ZONES[0]);
  if (fault === 'cancel-provisioning') cloud.fake.createDelayMs = 10_000;
  if (fault === 'failing-deletes') cloud.fake.failDeletes(3);
  try {
    const handle = await env.start(runId, tpuInput(env, image, { metricCache: { env: { RECOGDRIVE_SIM_DURATION_MS: '4000' }, compute: { spot: true } } }));
    if (fault === 'cancel-provisioning') {
      while (cloud.nodesOf(runId).length === 0) await sleep(50);
      await handle.cancel();
    } else if (fault === 'cancel-running' || fault === 'preemption') {
      await waitUntilRunning(handle, 'metricCache');
      if (fault === 'cancel-running') await handle.cancel();
      else {
        const node = cloud.nodesOf(runId)[0]!;
        cloud.fake.preemptAt(node.name);
        await killVm(cloud, node.name, runId);
      }
    }
    const outcome = await handle.result().then(
      () => 'succeeded',
      (e: Error & { cause?: Error }) => `${e.message}: ${e.cause?.message ?? ''}`,
    );
    await env.stack.client.workflow.getHandle(stageWorkflowId(runId, 'metricCache')).result().catch(() => {});
    return outcome;
  } finally {
    cloud.fake.stockout(ZONES[0], false);
    cloud.fake.quotaExceeded(ZONES[0], false);
    cloud.fake.createDelayMs = 300;
  }
}

const bed = await startTestbed({ workers: 3, dir: join(PROJECT_ROOT, '.data', 'bench-cloud') });
const cloud = await startFakeTpuCloud(bed, { createDelayMs: createMs });
let env: TestEnv | undefined;
try {
  env = await startTestEnv({ env: { ...cloudWorkerEnv(bed, cloud), RECOGDRIVE_CLOUD_POLL_INTERVAL_MS: '15000' } });
  const image = await pinnedTestbedImage(bed);

  const rounds = [];
  for (let round = 0; round < preemptions; round++) rounds.push(await preemptionRound(env, cloud, image, round));
  if (rounds.length > 0) {
    console.log(`preemption → recovery (${rounds.length} rounds; node creation ${createMs} ms, health check 30 s, cloud poll 15 s):`);
    console.log(`  noticed                 median ${median(rounds.map((r) => r.noticedMs))} ms, max ${Math.max(...rounds.map((r) => r.noticedMs))} ms`);
    console.log(`  replacement READY       median ${median(rounds.map((r) => r.readyMs))} ms`);
    console.log(`  stage running again     median ${median(rounds.map((r) => r.runningMs))} ms (overhead beyond creation: ${median(rounds.map((r) => r.runningMs)) - createMs} ms)`);
  }
  await env.close();

  // Chaos with short delays: what matters is what is left.
  cloud.fake.createDelayMs = 300;
  env = await startTestEnv({ env: { ...cloudWorkerEnv(bed, cloud) } });
  const outcomes: Record<string, string[]> = {};
  for (let i = 0; i < chaosRuns; i++) {
    const fault = FAULTS[i % FAULTS.length]!;
    (outcomes[fault] ??= []).push(await chaosRun(env, cloud, image, i, fault));
  }
  const leftNodes = cloud.fake.allNodes().filter((n) => n.labels.owner === 'recogdrive');
  const leftQueued = cloud.fake.allQueuedResources().length;
  const dry = await runJanitorOnce(env.stack.client, { dryRun: true, graceMs: 0, taskQueue: env.stack.taskQueue, workflowId: `bench-janitor-${Date.now()}` });
  console.log(`chaos: ${chaosRuns} runs`);
  for (const [fault, list] of Object.entries(outcomes)) console.log(`  ${fault.padEnd(20)} ${list.map((o) => o.slice(0, 160)).join(' | ')}`);
  console.log(`  orphans left: ${leftNodes.length} node(s), ${leftQueued} queued resource(s); a janitor dry run would delete ${dry.deleted.length}`);
  console.log(`  TPU API calls: ${JSON.stringify(cloud.fake.calls)}`);
} finally {
  await env?.close();
  await cloud.stop();
  await bed.stop();
}
