/** GPU machine types, the compute-engine input's `gpus` and boot image, and GPU-hours in the cost record, the status and the HTTP API. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gpuHoursOf, gpuUsageOf, tpuHoursOf, type ComputeUsage } from '../../pipeline/cost.ts';
import { DEFAULT_BOOT_IMAGE, GPU_BOOT_IMAGE, gpusOf, gpuRequestProblem, n1GpuCounts } from '../../pipeline/gpu-machines.ts';
import { gpusPerMachine } from '../../pipeline/trainers.ts';
import { ComputeSpec } from '../../pipeline/input.ts';
import { gpuHoursSoFar } from '../../workers/api/estimate.ts';
import { formatStatus } from '../../workers/format.ts';

test('GPU machine types carry their GPUs: A2 (A100 40GB / 80GB), A3 (H100), G2 (L4: 1, or 2/4/8 on -24/-48/-96); N1 only with attached GPUs; others none', () => {
  const expected: Array<[string, string, number]> = [
    ['a2-highgpu-1g', 'nvidia-tesla-a100', 1], ['a2-highgpu-2g', 'nvidia-tesla-a100', 2], ['a2-highgpu-4g', 'nvidia-tesla-a100', 4], ['a2-highgpu-8g', 'nvidia-tesla-a100', 8],
    ['a2-megagpu-16g', 'nvidia-tesla-a100', 16],
    ['a2-ultragpu-1g', 'nvidia-a100-80gb', 1], ['a2-ultragpu-2g', 'nvidia-a100-80gb', 2], ['a2-ultragpu-4g', 'nvidia-a100-80gb', 4], ['a2-ultragpu-8g', 'nvidia-a100-80gb', 8],
    ['a3-highgpu-1g', 'nvidia-h100-80gb', 1], ['a3-highgpu-2g', 'nvidia-h100-80gb', 2], ['a3-highgpu-4g', 'nvidia-h100-80gb', 4], ['a3-highgpu-8g', 'nvidia-h100-80gb', 8],
    ['a3-megagpu-8g', 'nvidia-h100-mega-80gb', 8],
    ['g2-standard-4', 'nvidia-l4', 1], ['g2-standard-8', 'nvidia-l4', 1], ['g2-standard-12', 'nvidia-l4', 1], ['g2-standard-16', 'nvidia-l4', 1], ['g2-standard-32', 'nvidia-l4', 1],
    ['g2-standard-24', 'nvidia-l4', 2], ['g2-standard-48', 'nvidia-l4', 4], ['g2-standard-96', 'nvidia-l4', 8],
  ];
  for (const [machine, type, count] of expected) assert.deepEqual(gpusOf(machine), { type, count }, machine);
  assert.deepEqual(gpusOf('a2-highgpu-8g', { type: 'nvidia-tesla-t4', count: 1 }), { type: 'nvidia-tesla-a100', count: 8 }, 'the type\'s own GPUs win');
  assert.deepEqual(gpusOf('n1-standard-8', { type: 'nvidia-tesla-t4', count: 2 }), { type: 'nvidia-tesla-t4', count: 2 });
  for (const machine of ['n1-standard-8', 'n2-standard-32', 'ct6e-standard-4t', 'a2-highgpu-3g', 'g2-standard-5']) assert.equal(gpusOf(machine), undefined, machine);
  assert.deepEqual(n1GpuCounts('nvidia-tesla-v100'), [1, 2, 4, 8]);
  assert.deepEqual(n1GpuCounts('nvidia-tesla-t4'), [1, 2, 4]);
  assert.deepEqual(n1GpuCounts('nvidia-tesla-p4'), [1, 2, 4]);
  assert.deepEqual(n1GpuCounts('nvidia-tesla-p100'), [1, 2, 4]);
});

test('N1 vCPU limits per GPU count: V100 × 1 takes at most 12 vCPUs, × 2 24; T4 × 1 48, × 4 96; shared-core N1 takes none', () => {
  assert.equal(gpuRequestProblem('n1-standard-8', { type: 'nvidia-tesla-v100', count: 1 }), undefined);
  assert.match(gpuRequestProblem('n1-standard-16', { type: 'nvidia-tesla-v100', count: 1 })?.message ?? '', /at most 12 vCPUs go with 1 × nvidia-tesla-v100/);
  assert.equal(gpuRequestProblem('n1-standard-16', { type: 'nvidia-tesla-v100', count: 2 }), undefined);
  assert.equal(gpuRequestProblem('n1-highmem-32', { type: 'nvidia-tesla-t4', count: 1 }), undefined);
  assert.match(gpuRequestProblem('n1-standard-64', { type: 'nvidia-tesla-t4', count: 2 })?.message ?? '', /at most 48 vCPUs/);
  assert.equal(gpuRequestProblem('n1-standard-96', { type: 'nvidia-tesla-t4', count: 4 }), undefined);
  assert.match(gpuRequestProblem('n1-standard-3', { type: 'nvidia-tesla-t4', count: 1 })?.message ?? '', /not a predefined N1 machine type/);
  assert.equal(gpuRequestProblem('n2-standard-8', undefined), undefined, 'no gpus asked, nothing to say');
});

const parse = (compute: Record<string, unknown>) => ComputeSpec.safeParse({ backend: 'compute-engine', zones: ['us-central1-a'], ...compute });
const issuesOf = (compute: Record<string, unknown>): string[] => {
  const result = parse(compute);
  assert.equal(result.success, false, `expected ${JSON.stringify(compute)} to be refused`);
  return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

test('input: gpus only on N1 types, refused on types with their own GPUs, on TPU and other CPU types, with messages naming the field', () => {
  assert.deepEqual(issuesOf({ machineType: 'a2-highgpu-8g', gpus: { type: 'nvidia-tesla-t4', count: 1 } }), [
    'gpus: a2-highgpu-8g comes with its GPUs (8 × nvidia-tesla-a100); remove "gpus" (only N1 machine types take attached GPUs)',
  ]);
  assert.match(issuesOf({ machineType: 'ct6e-standard-4t', gpus: { type: 'nvidia-tesla-t4', count: 1 } })[0]!, /^gpus: ct6e-standard-4t is a TPU VM/);
  assert.match(issuesOf({ machineType: 'n2-standard-32', gpus: { type: 'nvidia-tesla-t4', count: 1 } })[0]!, /^gpus: n2-standard-32 cannot take GPUs/);
  assert.deepEqual(issuesOf({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 3 } }), ['gpus.count: nvidia-tesla-t4 comes 1, 2 or 4 per VM, not 3']);
  assert.match(issuesOf({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-k80', count: 1 } })[0]!, /^gpus\.type: one of nvidia-tesla-t4, nvidia-tesla-v100, nvidia-tesla-p4, nvidia-tesla-p100/);
  assert.match(issuesOf({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 16 } })[0]!, /^gpus\.count: /);
  assert.match(issuesOf({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4' } })[0]!, /^gpus\.count: /);
  assert.match(issuesOf({ machineType: 'a2-highgpu-3g' })[0]!, /^machineType: unknown GPU machine type "a2-highgpu-3g"/);
  assert.ok(parse({ machineType: 'n1-standard-32', gpus: { type: 'nvidia-tesla-t4', count: 4 } }).success);
});

test('input: a GPU machine boots the Deep Learning VM image by default, a given bootImage wins, CPU and TPU machines keep cos-stable', () => {
  const image = (compute: Record<string, unknown>): string => {
    const parsed = ComputeSpec.parse({ backend: 'compute-engine', zones: ['us-central1-a'], ...compute });
    assert.ok(parsed.backend === 'compute-engine');
    return parsed.bootImage;
  };
  assert.equal(GPU_BOOT_IMAGE, 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570');
  assert.equal(image({ machineType: 'a2-highgpu-8g' }), GPU_BOOT_IMAGE);
  assert.equal(image({ machineType: 'g2-standard-8' }), GPU_BOOT_IMAGE);
  assert.equal(image({ machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 1 } }), GPU_BOOT_IMAGE);
  assert.equal(image({ machineType: 'n1-standard-8' }), DEFAULT_BOOT_IMAGE);
  assert.equal(image({ machineType: 'n2-standard-64' }), 'projects/cos-cloud/global/images/family/cos-stable');
  assert.equal(image({ machineType: 'ct6e-standard-4t' }), 'projects/cos-cloud/global/images/family/cos-stable');
  assert.equal(image({ machineType: 'a2-highgpu-8g', bootImage: 'projects/my-images-1/global/images/gpu-docker-v3' }), 'projects/my-images-1/global/images/gpu-docker-v3');
  const parsed = ComputeSpec.parse({ backend: 'compute-engine', zones: ['us-central1-a'], machineType: 'n1-standard-8', gpus: { type: 'nvidia-tesla-t4', count: 2 } });
  assert.equal(gpusPerMachine(parsed), 2);
  assert.equal(gpusPerMachine(ComputeSpec.parse({ backend: 'local' })), 0);
});

test('the cost record: GPU-hours are GPUs × held time (a machine still held counts up to now); records without gpus (older ones, TPU and CPU machines) count 0', () => {
  const hour = 3_600_000;
  const gpuVm: ComputeUsage = { name: 'rd-x-stage3-1', backend: 'compute-engine', attempt: 1, chips: 0, spot: true, acquiredAt: 0, releasedAt: 2 * hour, zone: 'us-east5-b', machine: 'a2-highgpu-8g', gpus: 8, gpuType: 'nvidia-tesla-a100', outcome: 'preempted' };
  const held: ComputeUsage = { ...gpuVm, name: 'rd-x-stage3-2', attempt: 2, acquiredAt: 2 * hour, releasedAt: undefined, outcome: undefined };
  const tpu: ComputeUsage = { name: 'rd-x-stage2-1', backend: 'tpu-api', attempt: 1, chips: 8, spot: false, acquiredAt: 0, releasedAt: hour };
  assert.equal(gpuHoursOf([gpuVm], 99 * hour), 16);
  assert.equal(gpuHoursOf([gpuVm, held], 2.5 * hour), 20, 'the replacement has run half an hour');
  assert.equal(gpuHoursOf([tpu], hour), 0, 'a record without gpus (older records too) is 0 GPU-hours');
  assert.equal(tpuHoursOf([gpuVm], hour), 0);
  assert.deepEqual(gpuUsageOf({ gpus: 4, gpuType: 'nvidia-tesla-t4' }), { gpus: 4, gpuType: 'nvidia-tesla-t4' });
  assert.deepEqual(gpuUsageOf({ gpus: 0 }), {});
  assert.deepEqual(gpuUsageOf(undefined), {}, 'a lease without GPU fields (tpu-api, static, local) adds nothing');

  const status = formatStatus({
    runId: 'x', experiment: 'e', state: 'running', startedAt: '2026-01-01T00:00:00Z',
    stages: [
      { stage: 'stage3', decision: 'RUN', state: 'succeeded', attempt: 2, compute: [gpuVm, { ...held, releasedAt: 3 * hour, outcome: 'succeeded' }] },
      { stage: 'stage2', decision: 'RUN', state: 'succeeded', attempt: 1, compute: [tpu] },
    ],
  } as Parameters<typeof formatStatus>[0]);
  assert.match(status, /machines: rd-x-stage3-1 us-east5-b a2-highgpu-8g 8×nvidia-tesla-a100 spot preempted; rd-x-stage3-2 .* — 0 TPU-hours, 24 GPU-hours/);
  assert.match(status, /machines: rd-x-stage2-1 — 8 TPU-hours$/m, 'no GPU-hours where no machine had GPUs');

  const used = gpuHoursSoFar(
    [
      { stage: 'stage3', decision: 'RUN', state: 'running', attempt: 2, compute: [gpuVm, held] },
      { stage: 'stage2', decision: 'RUN', state: 'succeeded', attempt: 1, compute: [tpu] },
      { stage: 'eval', decision: 'RUN', state: 'pending', attempt: 0 },
    ] as Parameters<typeof gpuHoursSoFar>[0],
    3 * hour,
  );
  assert.deepEqual(used, { total: 24, byStage: { stage3: 24, stage2: 0, eval: 0 } });
});
