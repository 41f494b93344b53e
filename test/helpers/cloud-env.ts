/**
 * Cloud compute made of local parts, for tests on a real Temporal server: the fake Cloud TPU API
 * (gRPC, the real v2.TpuClient talks to it) and the fake Compute Engine API (REST, the real
 * @google-cloud/compute client), whose machines are test bed workers (real sshd + podman): one
 * test bed worker per TPU node and per VM in turn, with that worker's real host key in the
 * machine's guest attributes and its sshd port where the worker reads it with
 * RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT (a TPU worker's endpoint port, a VM's guest attribute
 * recogdrive/ssh-port). The worker process reaches the fakes through the same settings a
 * deployment uses (RECOGDRIVE_GCP_PROJECTS, RECOGDRIVE_TPU_API_ENDPOINT,
 * RECOGDRIVE_COMPUTE_API_ENDPOINT...).
 */
import { containerName } from '../../pipeline/naming.ts';
import type { StageName } from '../../pipeline/stages.ts';
import type { RunStatus, StageStatus } from '../../pipeline/status.ts';
import { FakeComputeEngine, type FakeInstance } from '../fakes/compute-engine/server.ts';
import { FakeTpuApi, type FakeNode } from '../fakes/tpu-api/server.ts';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { startTestbed, type Testbed, type VmServiceAccount } from '../testbed/testbed.ts';
import { startTestEnv, type TestEnv } from './local-env.ts';
import { testbedWorkerEnv } from './testbed-input.ts';

export const PROJECT = 'chaos-project';
export const ZONES = ['us-east5-a', 'us-east5-b'] as const;

export interface FakeTpuCloud {
  fake: FakeTpuApi;
  /** Compute Engine's fake: the worker's compute-engine backend (and the janitor) talk to it. */
  gce: FakeComputeEngine;
  /** The test bed worker a node's worker 0 is. */
  slotOf(nodeName: string): number | undefined;
  /** Nodes of a run (by the exact run id in their metadata). */
  nodesOf(runId: string): FakeNode[];
  /** The test bed worker a Compute Engine VM is (the VM, or projects/P/zones/Z/instances/N). */
  gceSlotOf(vm: FakeInstance | string): number | undefined;
  /** Compute Engine VMs of a run (by the exact run id in their metadata). */
  instancesOf(runId: string): FakeInstance[];
  stop(): Promise<void>;
}

const instancePath = (vm: { project: string; zone: string; name: string }): string => `projects/${vm.project}/zones/${vm.zone}/instances/${vm.name}`;

export interface FakeTpuCloudOptions {
  createDelayMs?: number;
  /**
   * Every new VM (TPU node worker, Compute Engine VM) starts bare on its test bed worker
   * (bed.resetWorker; the bed must be bare): the worker is reset when the VM lands on it.
   */
  bareVms?: boolean;
  /**
   * With bareVms: the service account a VM gets when its create request names none (TPU) or
   * "default" (Compute Engine) — the project's default compute account. A request naming another
   * email gets that email with this token. Without it such VMs have none; a Compute Engine VM
   * created with no serviceAccounts never has one.
   */
  serviceAccount?: VmServiceAccount;
}

/** The service account of a new VM, from what its create request asked for. */
function accountOf(requested: string | undefined, fallback: VmServiceAccount | undefined): VmServiceAccount | undefined {
  if (requested === undefined || requested === 'default') return fallback;
  return { email: requested, token: fallback?.token ?? `ya29.testbed-${requested}` };
}

export async function startFakeTpuCloud(bed: Testbed, options: FakeTpuCloudOptions = {}): Promise<FakeTpuCloud> {
  // New VMs becoming bare: the fakes' hooks are synchronous, so the resets run beside them (the
  // VM's sshd is down meanwhile, as a booting VM's is); stop() waits for them and reports a failure.
  const resets = new Set<Promise<void>>();
  const failures: unknown[] = [];
  const newVm = (slot: number, account: VmServiceAccount | undefined): void => {
    if (options.bareVms !== true) return;
    const reset = bed
      .resetWorker(slot)
      .then(() => bed.setServiceAccount(slot, account))
      .catch((error: unknown) => {
        console.error(`resetting test bed worker ${slot} for a new VM failed:`, error);
        failures.push(error);
      })
      .finally(() => resets.delete(reset));
    resets.add(reset);
  };
  const slots = new Map<string, number>();
  let next = 0;
  const fake = new FakeTpuApi({
    createDelayMs: options.createDelayMs ?? 300,
    addressFor: (node, worker) => {
      let slot = slots.get(node.name);
      if (slot === undefined) {
        slot = next++ % bed.workers.length;
        slots.set(node.name, slot);
      }
      const bedIndex = (slot + worker) % bed.workers.length;
      if (worker < bed.workers.length) newVm(bedIndex, accountOf(node.serviceAccount, options.serviceAccount));
      const bedWorker = bed.workers[bedIndex]!;
      return { ipAddress: bedWorker.address, port: bedWorker.port, hostKeys: [bedWorker.hostKey] };
    },
  });
  // A VM is one test bed worker, in turn; by path (a new VM can take a deleted one's name).
  const gceSlots = new Map<string, number>();
  let nextGce = 0;
  const gce = new FakeComputeEngine({
    addressFor: (vm) => {
      const slot = nextGce++ % bed.workers.length;
      gceSlots.set(instancePath(vm), slot);
      const requested = (vm.serviceAccounts[0] as { email?: unknown } | undefined)?.email;
      if (vm.serviceAccounts.length > 0) newVm(slot, accountOf(typeof requested === 'string' ? requested : undefined, options.serviceAccount));
      else newVm(slot, undefined);
      const bedWorker = bed.workers[slot]!;
      return { ipAddress: bedWorker.address, natIP: bedWorker.address, port: bedWorker.port, hostKeys: [bedWorker.hostKey] };
    },
  });
  await Promise.all([fake.start(), gce.start()]);
  return {
    fake,
    gce,
    slotOf: (name) => slots.get(name),
    nodesOf: (runId) => fake.allNodes().filter((n) => n.metadata['recogdrive-run'] === runId),
    gceSlotOf: (vm) => gceSlots.get(typeof vm === 'string' ? vm : instancePath(vm)),
    instancesOf: (runId) => gce.allInstances().filter((vm) => vm.metadata['recogdrive-run'] === runId),
    stop: async () => {
      await Promise.all([fake.stop(), gce.stop(), ...resets]);
      if (failures.length > 0) throw new Error(`${failures.length} test bed worker reset(s) for new VMs failed (logged above)`, { cause: failures[0] });
    },
  };
}

/** A worker's environment: the test bed's SSH key and the fakes as the Cloud TPU and Compute Engine APIs. */
export function cloudWorkerEnv(bed: Testbed, cloud: FakeTpuCloud): NodeJS.ProcessEnv {
  return {
    ...testbedWorkerEnv(bed),
    RECOGDRIVE_GCP_PROJECTS: PROJECT,
    RECOGDRIVE_GCP_ZONES: ZONES.join(','),
    RECOGDRIVE_TPU_API_ENDPOINT: `127.0.0.1:${cloud.fake.port}`,
    RECOGDRIVE_COMPUTE_API_ENDPOINT: `http://127.0.0.1:${cloud.gce.port}`,
    RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT: 'true',
    RECOGDRIVE_CLOUD_SSH_USER: bed.workers[0]!.user,
    RECOGDRIVE_CLOUD_POLL_INTERVAL_MS: '100',
  };
}

/** The test bed image pinned by digest (cloud backends take pinned images only). */
export async function pinnedTestbedImage(bed: Testbed): Promise<string> {
  const tag = bed.images[0]!;
  const { stdout, code, stderr } = await bed.docker(0, ['image', 'inspect', '--format', '{{.Digest}}', tag]);
  if (code !== 0) throw new Error(`cannot read the digest of ${tag}: ${stderr}`);
  return `${tag.split(':')[0]}@${stdout.trim()}`;
}

export interface TpuStage {
  env?: Record<string, string>;
  /** compute fields over the defaults (see tpuInput / gceInput). */
  compute?: Record<string, unknown>;
  settings?: Record<string, unknown>;
}
export type CloudStage = TpuStage;

/** The embedded default's input with the given stages on (fake) Cloud TPUs: v6e-8 in both zones, on-demand, 1 s back-off, 1 s health checks. */
export function tpuInput(env: TestEnv, image: string, stages: Partial<Record<StageName, TpuStage>>, extra: Record<string, unknown> = {}) {
  return cloudInput(env, image, stages, extra, { backend: 'tpu-api', accelerator: 'v6e-8' });
}

/** The embedded default's input with the given stages on (fake) Compute Engine VMs: n2-standard-8 in both zones, on-demand, 1 s back-off, 1 s health checks. */
export function gceInput(env: TestEnv, image: string, stages: Partial<Record<StageName, CloudStage>>, extra: Record<string, unknown> = {}) {
  return cloudInput(env, image, stages, extra, { backend: 'compute-engine', machineType: 'n2-standard-8' });
}

function cloudInput(env: TestEnv, image: string, stages: Partial<Record<StageName, CloudStage>>, extra: Record<string, unknown>, machine: Record<string, unknown>) {
  const base = env.input({ stages: Object.keys(stages) as StageName[] }) as unknown as Record<string, Record<string, unknown>>;
  const input: Record<string, unknown> = {
    ...base,
    gcp: { project: PROJECT },
    images: { stage1: image, unified: image },
    orchestration: { heartbeatTimeout: '3 seconds', progressInterval: '1 second', pollInterval: '1 second' },
    ...extra,
  };
  for (const [stage, spec] of Object.entries(stages)) {
    input[stage] = {
      ...base[stage],
      compute: {
        ...machine,
        zones: [...ZONES],
        ...spec.compute,
        failover: { backoff: '1s', healthCheckInterval: '1s', ...(spec.compute?.failover as object | undefined) },
      },
      env: { RECOGDRIVE_SIM_DURATION_MS: '1500', ...spec.env },
      ...spec.settings,
    };
  }
  return input;
}

/** Everything a cloud test file needs: a test bed, the fake cloud APIs, a Temporal stack whose worker uses them, the pinned image. */
export interface CloudBed {
  bed: Testbed;
  cloud: FakeTpuCloud;
  env: TestEnv;
  image: string;
  stop(): Promise<void>;
}

export async function startCloudBed(workers: number, name: string): Promise<CloudBed> {
  const bed = await startTestbed({ workers, dir: join(PROJECT_ROOT, '.data', name) });
  const cloud = await startFakeTpuCloud(bed);
  const env = await startTestEnv({ env: cloudWorkerEnv(bed, cloud) });
  return {
    bed,
    cloud,
    env,
    image: await pinnedTestbedImage(bed),
    stop: async () => {
      await env.close();
      await cloud.stop();
      await bed.stop();
    },
  };
}

/** Polls until `check` holds (the fakes' state changes as a workflow's cleanup runs). */
export async function eventually(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * What a VM going away does to the test bed worker standing in for it: the stage's container is
 * gone and, when `unreachable`, its sshd too. Returns how to bring that worker back.
 */
export async function vmGone(bed: Testbed, slot: number, runId: string, options: { unreachable?: boolean } = {}): Promise<() => Promise<void>> {
  if (options.unreachable === true) await bed.stopWorker(slot);
  await bed.docker(slot, ['rm', '-f', containerName(runId, 'metricCache')]);
  return options.unreachable === true ? () => bed.startWorker(slot) : async () => {};
}

/** The metric cache's entry of a run's status (the stage the cloud tests run). */
export const metricCacheStatus = (status: RunStatus): StageStatus => status.stages.find((s) => s.stage === 'metricCache')!;

/** Where each stage of a full run goes: TPU VMs for the torchax stages, CPU VMs, and GPU VMs (2 L4s) for the GPU scripts. */
export const MIXED_MACHINES: Record<StageName, Record<string, unknown>> = {
  stage1: { backend: 'tpu-api', accelerator: 'v6e-8' },
  featureCache: { backend: 'tpu-api', accelerator: 'v6e-8' },
  stage2: { backend: 'tpu-api', accelerator: 'v6e-8' },
  stage2Export: { backend: 'compute-engine', machineType: 'n2-standard-8' },
  metricCache: { backend: 'compute-engine', machineType: 'n2-standard-8' },
  stage3: { backend: 'compute-engine', machineType: 'g2-standard-24', spot: true },
  stage3Export: { backend: 'compute-engine', machineType: 'n2-standard-8' },
  eval: { backend: 'compute-engine', machineType: 'g2-standard-24' },
};
