/**
 * Compute Engine compute end to end: a real Temporal server and worker, the real
 * @google-cloud/compute client against the fake Compute Engine API, and VMs that are test bed
 * workers (real sshd + podman running the stage image). The worker process is configured by its
 * environment only (cloudWorkerEnv): it finds each VM's sshd port in the guest attribute the
 * fake publishes (RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT=true) and its host key in the VM's
 * hostkeys guest attributes. A CPU VM runs the metric cache; stockout → next zone; a spot VM
 * preempted mid-stage → new VM, old one deleted, retry budget untouched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { bringUpLogName, computeName, runSlug, shortHash, stageLogsUri } from '../../pipeline/naming.ts';
import { STAGE_SLUGS } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { type CloudBed, type FakeTpuCloud, gceInput, metricCacheStatus, PROJECT, startCloudBed, vmGone, ZONES } from '../helpers/cloud-env.ts';
import { waitForStatus, waitUntilRunning, type TestEnv } from '../helpers/local-env.ts';
import { testbedSkip } from './requirements.ts';
import type { Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let cloud: FakeTpuCloud;
let env: TestEnv;
let image: string;

let world: CloudBed | undefined;
before(async () => {
  if (skip) return;
  world = await startCloudBed(2, 'testbed-cloud-gce');
  ({ bed, cloud, env, image } = world);
});
after(() => world?.stop());

interface InsertBody {
  name?: string;
  labels?: Record<string, string>;
  metadata?: { items?: Array<{ key?: string; value?: string }> };
}

/** instances.insert calls for a run's VMs (by the exact run id in the VM's metadata), with the zone each was asked in. */
function insertsOf(runId: string): Array<{ zone: string; body: InsertBody }> {
  return cloud.gce.requests
    .filter((r) => r.method === 'instances.insert')
    .map((r) => ({ zone: decodeURIComponent(r.path.split('/zones/')[1]!.split('/')[0]!), body: (r.body ?? {}) as InsertBody }))
    .filter(({ body }) => body.metadata?.items?.some((i) => i.key === 'recogdrive-run' && i.value === runId) === true);
}

const pathOf = (zone: string, name: string): string => `projects/${PROJECT}/zones/${zone}/instances/${name}`;

// Every test has a timeout: a regression (say, a VM's SSH port not found) fails it instead of hanging the run.

test('the metric cache runs on a Compute Engine CPU VM: one VM with our labels, its zone and machine type (0 chips) in the cost record, none left', { skip, timeout: 180_000 }, async () => {
  const runId = 'gce-metric';
  const handle = await env.start(runId, gceInput(env, image, { metricCache: {} }));
  const summary = (await handle.result()) as RunSummary;
  const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);

  const name = computeName(runId, 'metricCache', 1);
  const inserts = insertsOf(runId);
  assert.equal(inserts.length, 1, 'exactly one VM was created');
  assert.equal(inserts[0]!.body.name, name);
  assert.deepEqual(inserts[0]!.body.labels, { run: runSlug(runId, 63), 'run-hash': shortHash(runId), stage: STAGE_SLUGS.metricCache, attempt: '1', owner: 'recogdrive' });

  assert.equal(stage.compute?.length, 1, JSON.stringify(stage.compute));
  const [usage] = stage.compute!;
  assert.deepEqual(
    { name: usage!.name, backend: usage!.backend, zone: usage!.zone, machine: usage!.machine, chips: usage!.chips, spot: usage!.spot, outcome: usage!.outcome },
    { name, backend: 'compute-engine', zone: ZONES[0], machine: 'n2-standard-8', chips: 0, spot: false, outcome: 'succeeded' },
  );
  assert.ok(usage!.releasedAt !== undefined && usage!.releasedAt >= usage!.acquiredAt, 'the VM was released');
  assert.deepEqual(cloud.instancesOf(runId), [], 'nothing left');

  // The VM was brought up before the launch, each step in the attempt's bring-up log.
  const logsUri = stageLogsUri(env.input({}).artifactRoot as string, runId, 'metricCache');
  const log = await readFile(`${logsUri.slice('file://'.length)}/${bringUpLogName(1, 0)}`, 'utf8');
  for (const step of ['runtime: check the container runtime', `image: pull ${image}`, 'code: check the checkout at']) assert.match(log, new RegExp(`\\] ${step.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), log);
  assert.match(log, /image: done in/);
  assert.match(log, /already on the VM/, 'the pinned image was there: nothing pulled');
});

test('a stockout in the first zone makes the VM in the second zone, and no VM is left in either', { skip, timeout: 180_000 }, async () => {
  const runId = 'gce-stockout';
  cloud.gce.stockout(ZONES[0]);
  try {
    const handle = await env.start(runId, gceInput(env, image, { metricCache: {} }));
    const summary = (await handle.result()) as RunSummary;
    const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
    assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);
    assert.deepEqual(
      stage.compute!.map((u) => [u.zone, u.outcome]),
      [[ZONES[1], 'succeeded']],
      'held one machine, in the second zone',
    );
    assert.deepEqual(
      insertsOf(runId).map((i) => [i.zone, i.body.name]),
      ZONES.map((z) => [z, computeName(runId, 'metricCache', 1)]),
      'one insert in the stocked-out zone, then one in the next',
    );
    assert.deepEqual(cloud.instancesOf(runId), [], 'nothing left');
  } finally {
    cloud.gce.stockout(ZONES[0], false);
  }
});

test('a spot VM preempted mid-stage gets a new VM (on-demand after the fall-back), the old one is deleted and the stage completes without using the retry budget', { skip, timeout: 180_000 }, async () => {
  const runId = 'gce-preempt';
  const handle = await env.start(
    runId,
    gceInput(env, image, {
      metricCache: {
        env: { RECOGDRIVE_SIM_DURATION_MS: '12000' },
        compute: { spot: true, failover: { spotFallbackAfterPreemptions: 1 } },
        // One attempt only: if the preemption counted against it, the stage would fail.
        settings: { maxAttempts: 1 },
      },
    }),
  );
  await waitUntilRunning(handle, 'metricCache');
  const [first] = cloud.instancesOf(runId);
  assert.ok(first !== undefined && first.scheduling.provisioningModel === 'SPOT', 'a spot VM runs the stage');
  const firstPath = pathOf(first.zone, first.name);
  const slot = cloud.gceSlotOf(first)!;

  // The VM dies: Compute Engine records the preemption and stops it; its SSH goes away with its containers.
  cloud.gce.preemptAt(firstPath);
  const revive = await vmGone(bed, slot, runId, { unreachable: true });
  try {
    const status = await waitForStatus(handle, (s) => metricCacheStatus(s).attempt === 2 && metricCacheStatus(s).phase === 'running', 60_000);
    assert.match(metricCacheStatus(status).computeEvent ?? '', /preemption 1 .*on-demand/);
  } finally {
    await revive();
  }

  const summary = (await handle.result()) as RunSummary;
  const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
  assert.equal(stage.attempts, 2);
  assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);
  assert.deepEqual(
    stage.compute!.map((u) => [u.name, u.spot, u.outcome]),
    [
      [computeName(runId, 'metricCache', 1), true, 'preempted'],
      [computeName(runId, 'metricCache', 2), false, 'succeeded'],
    ],
  );
  const replacement = insertsOf(runId).find((i) => i.body.name === computeName(runId, 'metricCache', 2));
  assert.ok(replacement !== undefined, 'the replacement VM was created');
  assert.notEqual(cloud.gceSlotOf(pathOf(replacement.zone, computeName(runId, 'metricCache', 2))), slot, 'the replacement is another test bed worker');
  assert.equal(cloud.gce.instance(firstPath), undefined, 'the preempted VM was deleted');
  assert.ok(
    cloud.gce.operationsOf(firstPath).some((op) => op.operationType === 'delete' && op.user !== 'system'),
    'deleted by the run, not by Compute Engine',
  );
  assert.deepEqual(cloud.instancesOf(runId), [], 'nothing left');
});
