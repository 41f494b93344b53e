/**
 * GPUs in the Compute Engine fake, as the API checks them on instances.insert. Its own catalogue
 * (not pipeline/gpu-machines.ts: a fake that reused the orchestrator's table would agree with it
 * whatever it says), from the "GPU machine types" page (https://cloud.google.com/compute/docs/gpus)
 * and the API's wordings where they are known:
 *
 * - Accelerator-optimized types carry their GPUs (a2-highgpu-Ng: N × nvidia-tesla-a100,
 *   a2-megagpu-16g, a2-ultragpu-Ng: nvidia-a100-80gb, a3-highgpu-Ng: nvidia-h100-80gb,
 *   a3-megagpu-8g: nvidia-h100-mega-80gb, g2-standard-*: nvidia-l4) and exist only in zones that
 *   offer that GPU (elsewhere: "Machine type with name '…' does not exist in zone '…'.").
 * - N1 types (not f1/g1 shared-core) take `guestAccelerators` of nvidia-tesla-t4 (1, 2, 4),
 *   -p4 (1, 2, 4), -v100 (1, 2, 4, 8), -p100 (1, 2, 4), within a vCPU limit per count ("At most 8
 *   vCPUs can be used along with 1 accelerator cards in an instance.", google/deepvariant#70).
 * - An accelerator type the zone does not offer, or that does not exist: "The resource
 *   'projects/P/zones/Z/acceleratorTypes/T' was not found" (what gcloud prints; fastai/course-v3#430).
 * - A VM with GPUs whose onHostMaintenance is not TERMINATE (MIGRATE is the default for a
 *   standard VM): HTTP 400 badRequest "Instances with guest accelerators do not support live
 *   migration." (openshift/release#63296, for a2-highgpu-1g).
 * - A3 takes only a gVNIC interface; A3 and G2 take no pd-standard boot disk (the default disk
 *   type): from memory of the machine-series pages, not found again for this file, so possibly
 *   stricter than the API (a fake may be stricter, never looser). Wordings of these two, of an
 *   unsupported count and of GPUs on a non-N1 type are the fake's own (the real ones were not found).
 *
 * Which zone offers which GPU is the fake's catalogue below (a plausible one, not Google's).
 */
import { HttpError, invalidField, notFound } from './messages.ts';

export interface FakeGpus {
  type: string;
  count: number;
}

const series = (prefix: string, type: string, counts: readonly number[]): Array<[string, FakeGpus]> => counts.map((count) => [`${prefix}-${count}g`, { type, count }]);

/** Machine types that come with GPUs. */
export const FAKE_GPU_MACHINES: Readonly<Record<string, FakeGpus>> = Object.fromEntries([
  ...series('a2-highgpu', 'nvidia-tesla-a100', [1, 2, 4, 8]),
  ['a2-megagpu-16g', { type: 'nvidia-tesla-a100', count: 16 }],
  ...series('a2-ultragpu', 'nvidia-a100-80gb', [1, 2, 4, 8]),
  ...series('a3-highgpu', 'nvidia-h100-80gb', [1, 2, 4, 8]),
  ['a3-megagpu-8g', { type: 'nvidia-h100-mega-80gb', count: 8 }],
  ['g2-standard-4', { type: 'nvidia-l4', count: 1 }],
  ['g2-standard-8', { type: 'nvidia-l4', count: 1 }],
  ['g2-standard-12', { type: 'nvidia-l4', count: 1 }],
  ['g2-standard-16', { type: 'nvidia-l4', count: 1 }],
  ['g2-standard-24', { type: 'nvidia-l4', count: 2 }],
  ['g2-standard-32', { type: 'nvidia-l4', count: 1 }],
  ['g2-standard-48', { type: 'nvidia-l4', count: 4 }],
  ['g2-standard-96', { type: 'nvidia-l4', count: 8 }],
]);

/** GPUs that attach to N1: count → the most vCPUs the VM may have. */
const N1_ATTACHABLE: Readonly<Record<string, Readonly<Record<number, number>>>> = {
  'nvidia-tesla-t4': { 1: 48, 2: 48, 4: 96 },
  'nvidia-tesla-p4': { 1: 24, 2: 48, 4: 96 },
  'nvidia-tesla-v100': { 1: 12, 2: 24, 4: 48, 8: 96 },
  'nvidia-tesla-p100': { 1: 16, 2: 32, 4: 96 },
};

/** The fake's default catalogue of GPUs per zone; zones not listed offer none. */
export const DEFAULT_ZONE_GPUS: Readonly<Record<string, readonly string[]>> = {
  'us-central1-a': ['nvidia-tesla-a100', 'nvidia-a100-80gb', 'nvidia-h100-80gb', 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-v100', 'nvidia-tesla-p4'],
  'us-central1-b': ['nvidia-tesla-a100', 'nvidia-h100-80gb', 'nvidia-h100-mega-80gb', 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-v100'],
  'us-central1-c': ['nvidia-tesla-a100', 'nvidia-a100-80gb', 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-v100', 'nvidia-tesla-p100', 'nvidia-tesla-p4'],
  'us-east5-a': ['nvidia-h100-80gb', 'nvidia-h100-mega-80gb', 'nvidia-l4', 'nvidia-tesla-t4'],
  'us-east5-b': ['nvidia-tesla-a100', 'nvidia-h100-80gb', 'nvidia-l4', 'nvidia-tesla-t4'],
  'us-east5-c': ['nvidia-h100-80gb', 'nvidia-l4'],
  'europe-west4-a': ['nvidia-tesla-a100', 'nvidia-a100-80gb', 'nvidia-h100-80gb', 'nvidia-l4', 'nvidia-tesla-t4', 'nvidia-tesla-v100', 'nvidia-tesla-p100'],
};

const N1_VCPUS = /^n1-(standard-(1|2|4|8|16|32|64|96)|highmem-(2|4|8|16|32|64|96)|highcpu-(2|4|8|16|32|64|96))$/;

/** Whether the type belongs to a GPU machine series (its sizes are exactly those of FAKE_GPU_MACHINES). */
export const isGpuSeries = (machineType: string): boolean => /^(a2|a3|a4|g2)-/.test(machineType);

const acceleratorPath = (project: string, zone: string, type: string): string => `projects/${project}/zones/${zone}/acceleratorTypes/${type}`;

/**
 * The GPUs an insert asks for: the machine type's own, or the N1 `guestAccelerators`; undefined
 * for none. Throws the API's refusal for anything it would refuse.
 */
export function checkGuestAccelerators(
  project: string,
  zone: string,
  machineType: string,
  value: unknown,
  zoneOffers: (zone: string, gpuType: string) => boolean,
): FakeGpus | undefined {
  const list = Array.isArray(value) ? (value as Array<Record<string, unknown>>) : [];
  const builtIn = FAKE_GPU_MACHINES[machineType];
  const asked = list.map((item, i) => {
    const raw = String(item.acceleratorType ?? '');
    const match = /^(?:(?:https:\/\/www\.googleapis\.com\/compute\/v1\/)?projects\/[^/]+\/)?zones\/([^/]+)\/acceleratorTypes\/([^/]+)$/.exec(raw);
    const type = match?.[2] ?? raw.split('/').pop() ?? '';
    if (match === null || match[1] !== zone || !zoneOffers(zone, type)) throw notFound(acceleratorPath(project, zone, type));
    const count = Number(item.acceleratorCount ?? 0);
    if (!Number.isInteger(count) || count < 0) throw invalidField(`resource.guestAccelerators[${i}].acceleratorCount`, String(item.acceleratorCount), 'Must be a non-negative integer.');
    return { type, count, i };
  }).filter((a) => a.count > 0);
  if (asked.length > 1) throw invalidField('resource.guestAccelerators', '', 'At most one accelerator type can be attached to an instance.');
  const [gpu] = asked;
  if (builtIn !== undefined) {
    // GCE lists an accelerator-optimized type's own GPUs in guestAccelerators; asking for exactly those is accepted.
    if (gpu !== undefined && (gpu.type !== builtIn.type || gpu.count !== builtIn.count)) {
      throw invalidField(`resource.guestAccelerators[${gpu.i}].acceleratorType`, gpu.type, `Machine type ${machineType} comes with ${builtIn.count} ${builtIn.type} accelerator cards; no other accelerators can be attached.`);
    }
    return { ...builtIn };
  }
  if (gpu === undefined) return undefined;
  const limits = N1_ATTACHABLE[gpu.type];
  if (!N1_VCPUS.test(machineType) || limits === undefined) {
    throw invalidField(`resource.guestAccelerators[${gpu.i}].acceleratorType`, gpu.type, `Accelerator type '${gpu.type}' cannot be attached to machine type '${machineType}'.`);
  }
  const maxVcpus = limits[gpu.count];
  if (maxVcpus === undefined) {
    throw invalidField(`resource.guestAccelerators[${gpu.i}].acceleratorCount`, String(gpu.count), `Accelerator count ${gpu.count} is not supported for accelerator type '${gpu.type}'; valid counts: ${Object.keys(limits).join(', ')}.`);
  }
  const vcpus = Number(machineType.split('-').pop());
  if (vcpus > maxVcpus) {
    throw invalidField(`resource.guestAccelerators[${gpu.i}].acceleratorCount`, String(gpu.count), `At most ${maxVcpus} vCPUs can be used along with ${gpu.count} accelerator cards in an instance.`);
  }
  return { type: gpu.type, count: gpu.count };
}

/** A VM with GPUs must terminate on host maintenance (what GCE defaults to: MIGRATE for a standard VM, TERMINATE for spot/preemptible). */
export function checkGpuScheduling(scheduling: unknown, gpus: FakeGpus | undefined): void {
  if (gpus === undefined) return;
  const s = (scheduling ?? {}) as Record<string, unknown>;
  const spot = s.provisioningModel === 'SPOT' || s.preemptible === true;
  const onHostMaintenance = s.onHostMaintenance ?? (spot ? 'TERMINATE' : 'MIGRATE');
  if (onHostMaintenance !== 'TERMINATE') {
    throw new HttpError({ status: 400, reason: 'badRequest', message: 'Instances with guest accelerators do not support live migration.' });
  }
}

/** A3: gVNIC only; A3 and G2: no pd-standard boot disk (GCE's default disk type). Returns the disk type. */
export function checkGpuHardware(machineType: string, zone: string, disks: unknown, networkInterfaces: unknown): string {
  const boot = (Array.isArray(disks) ? (disks as Array<Record<string, unknown>>) : []).find((d) => d.boot === true) ?? {};
  const raw = String(((boot.initializeParams ?? {}) as Record<string, unknown>).diskType ?? '');
  const diskType = raw === '' ? 'pd-standard' : (raw.split('/').pop() ?? '');
  if (raw !== '' && !new RegExp(`^(?:(?:https://www\\.googleapis\\.com/compute/v1/)?projects/[^/]+/)?zones/${zone}/diskTypes/[a-z0-9-]+$`).test(raw)) {
    throw invalidField('resource.disks[0].initializeParams.diskType', raw, `The disk type must be zones/${zone}/diskTypes/TYPE.`);
  }
  if (/^(a3|g2)-/.test(machineType) && diskType === 'pd-standard') {
    throw invalidField('resource.disks[0].initializeParams.diskType', raw || 'pd-standard', `Disk type pd-standard is not supported for machine type ${machineType}; use pd-balanced or pd-ssd.`);
  }
  const nic = ((Array.isArray(networkInterfaces) ? networkInterfaces[0] : undefined) ?? {}) as Record<string, unknown>;
  if (/^a3-/.test(machineType) && nic.nicType !== 'GVNIC') {
    throw invalidField('resource.networkInterfaces[0].nicType', String(nic.nicType ?? 'VIRTIO_NET'), `Machine type ${machineType} supports only the GVNIC network interface type.`);
  }
  return diskType;
}
