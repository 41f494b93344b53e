/**
 * A stage on a Compute Engine GPU VM, end to end: a real Temporal server and worker, the real
 * @google-cloud/compute client against the fake Compute Engine API, and VMs that are test bed
 * workers — a GPU VM is the worker with GPUs (its `docker run --gpus all` gives the container
 * RECOGDRIVE_SIM_GPUS), any other VM the worker without. The zone the stage lists first is out of
 * T4s: the VM is made in the second zone. The stage is the metric cache (any stage proves the
 * compute path; the GPU stages' contracts are elsewhere).
 *
 * Then the whole pipeline as a real run mixes its machines: Stage 1, the feature cache and Stage 2
 * on (fake) TPU VMs with the torchax trainers, the exports and the metric cache on CPU VMs, GRPO
 * and the evaluation on GPU VMs with the upstream GPU scripts under torchrun.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { protos } from '@google-cloud/compute';
import { attemptLogName, computeName, containerName, stageLogsUri, stageWorkflowId } from '../../pipeline/naming.ts';
import { STAGES, type StageName } from '../../pipeline/stages.ts';
import type { RunSummary } from '../../pipeline/status.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { runFailure } from '../helpers/assertions.ts';
import { cloudWorkerEnv, gceInput, MIXED_MACHINES, pinnedTestbedImage, startFakeTpuCloud, tpuInput, ZONES, type FakeTpuCloud } from '../helpers/cloud-env.ts';
import { startTestEnv, waitUntilRunning, type TestEnv } from '../helpers/local-env.ts';
import { FakeComputeEngine } from '../fakes/compute-engine/server.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;

const skip = testbedSkip();
const CPU_WORKER = 0;
const GPU_WORKER = 1;
let bed: Testbed;
let tpuCloud: FakeTpuCloud;
let gce: FakeComputeEngine;
let env: TestEnv;
let image: string;

before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-cloud-gce-gpu'), gpus: [0, 2] });
  tpuCloud = await startFakeTpuCloud(bed);
  // This file's Compute Engine: a VM with GPUs is the GPU worker, any other the CPU worker.
  gce = new FakeComputeEngine({
    addressFor: (vm) => {
      const worker = bed.workers[vm.gpus === undefined ? CPU_WORKER : GPU_WORKER]!;
      return { ipAddress: worker.address, natIP: worker.address, port: worker.port, hostKeys: [worker.hostKey] };
    },
  });
  await gce.start();
  env = await startTestEnv({ env: { ...cloudWorkerEnv(bed, tpuCloud), RECOGDRIVE_COMPUTE_API_ENDPOINT: `http://127.0.0.1:${gce.port}` } });
  image = await pinnedTestbedImage(bed);
});

after(async () => {
  if (skip) return;
  await env?.close();
  await gce?.stop();
  await tpuCloud?.stop();
  await bed?.stop();
});

const runVms = (runId: string) => gce.allInstances().filter((vm) => vm.metadata['recogdrive-run'] === runId);

test('a stage on an N1 VM with 2 T4s: stocked out in the first zone, made in the second with guestAccelerators and TERMINATE; its container sees the GPUs; GPU-hours in the cost record; nothing left', { skip, timeout: 240_000 }, async () => {
  const runId = 'gce-gpu';
  gce.stockoutOf(ZONES[0], 'nvidia-tesla-t4');
  try {
    const handle = await env.start(
      runId,
      gceInput(env, image, {
        metricCache: {
          compute: { machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 2 }, spot: true },
          env: { RECOGDRIVE_SIM_DURATION_MS: '8000' },
        },
      }),
    );
    await waitUntilRunning(handle, 'metricCache');
    const inspected = await bed.docker(GPU_WORKER, ['inspect', '--format', '{{json .Config.Env}}', containerName(runId, 'metricCache')]);
    assert.equal(inspected.code, 0, `the stage's container runs on the GPU worker: ${inspected.stderr}`);
    assert.ok(
      (JSON.parse(inspected.stdout) as string[]).includes('RECOGDRIVE_SIM_GPUS=2'),
      `the container was started with --gpus all (pipeline/launch.ts adds it for a GPU VM): ${inspected.stdout}`,
    );

    const summary = (await handle.result()) as RunSummary;
    const stage = summary.stages.find((s) => s.stage === 'metricCache')!;
    assert.equal(stage.outputs!.tokens, env.dataset.navtrainTokens);

    const inserts = gce.requests
      .filter((r) => r.method === 'instances.insert' && (r.body as Instance | undefined)?.metadata?.items?.some((i) => i.key === 'recogdrive-run' && i.value === runId))
      .map((r) => ({ zone: decodeURIComponent(r.path.split('/zones/')[1]!.split('/')[0]!), body: r.body as Instance }));
    assert.deepEqual(
      inserts.map((i) => [i.zone, i.body.name]),
      ZONES.map((z) => [z, computeName(runId, 'metricCache', 1)]),
      'one insert in the zone out of T4s, then one in the next',
    );
    const made = inserts[1]!.body;
    assert.deepEqual(made.guestAccelerators, [{ acceleratorType: `zones/${ZONES[1]}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: 2 }]);
    assert.equal(made.scheduling?.onHostMaintenance, 'TERMINATE');
    assert.ok(made.metadata?.items?.some((i) => i.key === 'install-nvidia-driver' && i.value === 'True'));

    assert.deepEqual(
      stage.compute!.map((u) => ({ zone: u.zone, machine: u.machine, gpus: u.gpus, gpuType: u.gpuType, outcome: u.outcome })),
      [{ zone: ZONES[1], machine: 'n1-standard-8', gpus: 2, gpuType: 'nvidia-tesla-t4', outcome: 'succeeded' }],
      'the cost record has the GPUs (workflows/cloud-compute.ts usageOf copies them from the lease)',
    );
    assert.deepEqual(runVms(runId), [], 'nothing left');
  } finally {
    gce.stockoutOf(ZONES[0], 'nvidia-tesla-t4', false);
  }
});


function mixedInput(overrides: Partial<Record<StageName, Record<string, unknown>>> = {}): Record<string, unknown> {
  const input = tpuInput(env, image, Object.fromEntries(STAGES.map((stage) => [stage, {}]))) as Record<string, Record<string, unknown>>;
  for (const stage of STAGES) {
    // Keep the zones and failover settings of the TPU input; the machine is the stage's own.
    const common = Object.fromEntries(Object.entries(input[stage]!.compute as Record<string, unknown>).filter(([key]) => key !== 'backend' && key !== 'accelerator'));
    input[stage] = { ...input[stage], compute: { ...common, ...MIXED_MACHINES[stage] }, ...overrides[stage] };
  }
  return input;
}

test('a full run on mixed machines: stages 1-2 on TPU VMs, GRPO and the evaluation on GPU VMs (L4s out in the first zone) under torchrun, the exports between them; every machine released', { skip, timeout: 600_000 }, async () => {
  const runId = 'gce-mixed';
  gce.stockoutOf(ZONES[0], 'nvidia-l4');
  try {
    const handle = await env.start(runId, mixedInput());
    const summary = (await handle.result()) as RunSummary;
    assert.deepEqual(summary.stages.map((s) => [s.stage, s.decision, s.attempts]), STAGES.map((stage) => [stage, 'RUN', 1]));
    const byStage = new Map(summary.stages.map((s) => [s.stage, s]));
    // Lightning kept a checkpoint per epoch; the exports are torch files with the same agent.* keys.
    assert.equal(byStage.get('stage3')!.outputs!.checkpoints, 2);
    assert.ok(Number(byStage.get('stage2Export')!.outputs!.tensors) > 0);
    assert.equal(byStage.get('stage3Export')!.outputs!.tensors, byStage.get('stage2Export')!.outputs!.tensors);
    assert.equal(byStage.get('eval')!.outputs!.tokens, env.dataset.testTokens);
    // The evaluation loaded the exported GRPO policy (agent.initialize() found its keys): an agent
    // that loaded nothing would score an untrained planner, with collisions and off-road tokens.
    const evalDir = byStage.get('eval')!.artifactUri!.slice('file://'.length);
    const csv = (await readdir(evalDir)).find((f) => f.endsWith('.csv'))!;
    const rows = (await readFile(join(evalDir, csv), 'utf8')).trimEnd().split('\n').slice(1, -1).map((line) => line.split(','));
    assert.equal(rows.length, env.dataset.testTokens);
    for (const row of rows) assert.deepEqual([row[2], row[3], row[4]], ['True', '1', '1'], row.join(','));

    for (const stage of ['stage3', 'eval'] as const) {
      const usage = byStage.get(stage)!.compute!;
      assert.deepEqual(usage.map((u) => [u.zone, u.machine, u.gpus, u.gpuType, u.outcome]), [[ZONES[1], 'g2-standard-24', 2, 'nvidia-l4', 'succeeded']], stage);
      // GPU-hours are 2 GPUs × the held time (seconds here: rounded to 2 decimals).
      const held = (usage[0]!.releasedAt! - usage[0]!.acquiredAt) / 3_600_000;
      assert.equal(byStage.get(stage)!.gpuHours, Math.round(2 * held * 100) / 100, `${stage} GPU-hours`);
    }
    for (const stage of ['stage2Export', 'metricCache', 'stage3Export'] as const) assert.equal(byStage.get(stage)!.compute![0]!.gpus ?? 0, 0, `${stage} on a CPU VM`);
    for (const stage of ['stage1', 'featureCache', 'stage2'] as const) assert.equal(byStage.get(stage)!.compute![0]!.chips, 8, stage);

    // GRPO ran under torchrun on both GPUs of the GPU worker: Lightning saw them (the stage's log, kept with the artifacts).
    const log = await readFile(join(stageLogsUri(`file://${env.dataDir}/artifacts`, runId, 'stage3').slice('file://'.length), attemptLogName(1, 0)), 'utf8');
    assert.match(log, /^GPU available: True \(cuda\), used: True$/m);
    assert.match(log, /^LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: \[0,1\]$/m);
    assert.match(log, /^Epoch 1: 100%.*val\/loss_epoch=/m);
    assert.deepEqual(runVms(runId), [], 'no VM left');
    assert.deepEqual(tpuCloud.nodesOf(runId), [], 'no TPU VM left');
  } finally {
    gce.stockoutOf(ZONES[0], 'nvidia-l4', false);
  }
});

test('GRPO on the torchax trainer (the public fork cannot run it) is refused with what works, before any machine or stage workflow', { skip, timeout: 60_000 }, async () => {
  const runId = 'gce-torchax-grpo';
  const [tpuCalls, gceCalls] = [tpuCloud.fake.totalCalls(), gce.totalCalls()];
  const input = mixedInput({ stage3: { trainer: 'torchax', compute: { ...MIXED_MACHINES.stage1, zones: [...ZONES] } } });
  const failure = await runFailure((await env.start(runId, { ...input, upstreamFixes: ['feature-cache-real-scenes'] })).result());
  assert.equal(failure.type, 'InvalidPipelineInput');
  assert.match(failure.message, /stage3\.trainer: stage3 cannot run on the upstream code .*tokens_list=None.*What works: the upstream GPU script/);
  const children = await Array.fromAsync(env.stack.client.workflow.list({ query: `WorkflowId = "${stageWorkflowId(runId, 'stage1')}"` }));
  assert.equal(children.length, 0, 'no stage workflow started');
  assert.deepEqual([tpuCloud.fake.totalCalls(), gce.totalCalls()], [tpuCalls, gceCalls], 'no call reached either cloud API');
});
