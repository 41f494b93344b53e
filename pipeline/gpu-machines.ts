/**
 * Which Compute Engine machine types carry NVIDIA GPUs, and which GPUs an N1 machine type can
 * take (`guestAccelerators`). Pure: the input schema, the compute-engine provider, the launch
 * spec and the cost record share it.
 *
 * Sources (looked up for this file; nothing here was checked against a real project):
 * - "GPU machine types", https://cloud.google.com/compute/docs/gpus : A3 High a3-highgpu-{1,2,4,8}g
 *   and A3 Mega a3-megagpu-8g (H100 80GB: nvidia-h100-80gb / nvidia-h100-mega-80gb), A2 Standard
 *   a2-highgpu-{1,2,4,8}g and a2-megagpu-16g (A100 40GB: nvidia-tesla-a100), A2 Ultra
 *   a2-ultragpu-{1,2,4,8}g (A100 80GB: nvidia-a100-80gb), G2 g2-standard-{4,8,12,16,32} with one
 *   L4 (nvidia-l4), g2-standard-24 with 2, -48 with 4, -96 with 8. "For the A and G series
 *   accelerator-optimized machine types, the specified GPU model automatically attaches to the
 *   instance. For the N1 general-purpose machine types, you can attach the GPU models specified":
 *   T4, V100, P100, P4, on any N1 type "except for the N1 shared-core (f1-micro and g1-small)".
 * - The N1 table of that page (GPUs per VM and the most vCPUs and memory each count allows), as
 *   SkyPilot's GCP catalogue transcribes it (sky/clouds/catalog/gcp_catalog.py): T4 1/2/4
 *   (48/48/96 vCPUs), P4 1/2/4 (24/48/96), V100 1/2/4/8 (12/24/48/96), P100 1/2/4 (16/32/96).
 *   Memory limits are 6.5 GB per allowed vCPU, the n1-highmem ratio, so for predefined N1 types
 *   the vCPU limit is the one that binds. The API's own refusal reads "Invalid value for field
 *   'resource.guestAccelerators[0].acceleratorCount': '1'. At most 8 vCPUs can be used along with
 *   1 accelerator cards in an instance." (google/deepvariant#70).
 * - The REST field: `guestAccelerators: [{ acceleratorType: "zones/Z/acceleratorTypes/T",
 *   acceleratorCount: N }]` (https://cloud.google.com/compute/docs/reference/rest/v1/AcceleratorConfig).
 * - Live migration: VMs with GPUs cannot live-migrate ("About GPUs",
 *   https://cloud.google.com/compute/docs/gpus/about-gpus), so `scheduling.onHostMaintenance`
 *   must be TERMINATE; the API refuses anything else with HTTP 400 badRequest "Instances with
 *   guest accelerators do not support live migration." (seen in openshift/release#63296 for
 *   a2-highgpu-1g, GoogleCloudPlatform/python-docs-samples#10272 for N1 + GPU).
 * - A GPU stockout is the create operation's ZONE_RESOURCE_POOL_EXHAUSTED(_WITH_DETAILS), "A
 *   n1-standard-4 VM instance with 1 nvidia-tesla-t4 accelerator(s) is currently unavailable in
 *   the us-central1-b zone." (kubernetes/k8s.io#9834): the same class as any other stockout.
 */

/** A machine's GPUs: the accelerator type as Compute Engine names it, and how many. */
export interface Gpus {
  type: string;
  count: number;
}

/** GPUs that attach to N1 machine types, with the counts allowed and the most vCPUs each count allows. */
export const N1_GPUS = {
  'nvidia-tesla-t4': { name: 'NVIDIA T4', maxVcpus: { 1: 48, 2: 48, 4: 96 } },
  'nvidia-tesla-v100': { name: 'NVIDIA V100', maxVcpus: { 1: 12, 2: 24, 4: 48, 8: 96 } },
  'nvidia-tesla-p4': { name: 'NVIDIA P4', maxVcpus: { 1: 24, 2: 48, 4: 96 } },
  'nvidia-tesla-p100': { name: 'NVIDIA P100', maxVcpus: { 1: 16, 2: 32, 4: 96 } },
} as const satisfies Record<string, { name: string; maxVcpus: Record<number, number> }>;
export type N1GpuType = keyof typeof N1_GPUS;
export const N1_GPU_TYPES = Object.keys(N1_GPUS) as [N1GpuType, ...N1GpuType[]];

/** GPU counts an N1 VM may take of this type. */
export function n1GpuCounts(type: string): number[] {
  const entry = (N1_GPUS as Record<string, { maxVcpus: Record<number, number> }>)[type];
  return entry === undefined ? [] : Object.keys(entry.maxVcpus).map(Number);
}

const series = (prefix: string, type: string, counts: readonly number[]): Array<[string, Gpus]> =>
  counts.map((count) => [`${prefix}-${count}g`, { type, count }]);

/** Accelerator-optimized machine types and the GPUs they come with. */
export const GPU_MACHINE_TYPES: Readonly<Record<string, Gpus>> = Object.fromEntries([
  ...series('a2-highgpu', 'nvidia-tesla-a100', [1, 2, 4, 8]),
  ['a2-megagpu-16g', { type: 'nvidia-tesla-a100', count: 16 }],
  ...series('a2-ultragpu', 'nvidia-a100-80gb', [1, 2, 4, 8]),
  ...series('a3-highgpu', 'nvidia-h100-80gb', [1, 2, 4, 8]),
  ['a3-megagpu-8g', { type: 'nvidia-h100-mega-80gb', count: 8 }],
  ...[4, 8, 12, 16, 32].map((vcpus): [string, Gpus] => [`g2-standard-${vcpus}`, { type: 'nvidia-l4', count: 1 }]),
  ['g2-standard-24', { type: 'nvidia-l4', count: 2 }],
  ['g2-standard-48', { type: 'nvidia-l4', count: 4 }],
  ['g2-standard-96', { type: 'nvidia-l4', count: 8 }],
]);

/** Machine families whose every type carries GPUs (only the types above are known here). */
const ACCELERATOR_FAMILIES = new Set(['a2', 'a3', 'a4', 'g2']);

/** vCPUs of the predefined N1 types that take GPUs (n1-standard/highmem/highcpu; not f1-micro, g1-small). */
const N1_VCPUS: Readonly<Record<string, readonly number[]>> = {
  'n1-standard': [1, 2, 4, 8, 16, 32, 64, 96],
  'n1-highmem': [2, 4, 8, 16, 32, 64, 96],
  'n1-highcpu': [2, 4, 8, 16, 32, 64, 96],
};

/** vCPUs of a predefined N1 machine type (n1-standard-8 → 8), undefined for anything else. */
export function n1Vcpus(machineType: string): number | undefined {
  const match = /^(n1-[a-z]+)-(\d+)$/.exec(machineType);
  if (match === null) return undefined;
  const vcpus = Number(match[2]);
  return N1_VCPUS[match[1]!]?.includes(vcpus) === true ? vcpus : undefined;
}

/** The GPUs a machine type carries by itself (a2/a3/g2), undefined for others. */
export function builtInGpusOf(machineType: string): Gpus | undefined {
  const gpus = GPU_MACHINE_TYPES[machineType];
  return gpus === undefined ? undefined : { ...gpus };
}

/** Whether the machine type's family is accelerator-optimized (a2, a3, a4, g2): its GPUs come with the type. */
export function isAcceleratorFamily(machineType: string): boolean {
  return ACCELERATOR_FAMILIES.has(machineType.split('-')[0]!);
}

/**
 * The GPUs of a machine: the type's own (a2/a3/g2), else the attached ones of an N1 type
 * (`accelerators`, e.g. the input's `gpus` or what the API reports), else undefined (no GPUs).
 */
export function gpusOf(machineType: string, accelerators?: Gpus | null): Gpus | undefined {
  const builtIn = builtInGpusOf(machineType);
  if (builtIn !== undefined) return builtIn;
  if (accelerators === undefined || accelerators === null || accelerators.count <= 0) return undefined;
  return { type: accelerators.type, count: accelerators.count };
}

/** Why an accelerator-family machine type is not one this project knows the GPUs of; undefined when it is, or is no such family. */
export function gpuMachineTypeProblem(machineType: string): string | undefined {
  if (!isAcceleratorFamily(machineType) || builtInGpusOf(machineType) !== undefined) return undefined;
  return `unknown GPU machine type "${machineType}"; one of ${Object.keys(GPU_MACHINE_TYPES).join(', ')} (or an N1 type with gpus)`;
}

/** Why GPUs cannot be attached as asked: which field of the input is wrong, and why. */
export interface GpuRequestProblem {
  field: 'gpus' | 'gpus.type' | 'gpus.count';
  message: string;
}

const orList = (items: readonly (string | number)[]): string => (items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`);

/**
 * Why `gpus` cannot be attached to this machine type, undefined when it can or when no gpus are
 * asked for. Only N1 types take attached GPUs, within the counts and vCPU limits of the GPU
 * machine types page.
 */
export function gpuRequestProblem(machineType: string, gpus: Gpus | undefined): GpuRequestProblem | undefined {
  if (gpus === undefined) return undefined;
  const builtIn = builtInGpusOf(machineType);
  if (builtIn !== undefined) {
    return { field: 'gpus', message: `${machineType} comes with its GPUs (${builtIn.count} × ${builtIn.type}); remove "gpus" (only N1 machine types take attached GPUs)` };
  }
  if (/^ct[a-z0-9]+-/.test(machineType)) {
    return { field: 'gpus', message: `${machineType} is a TPU VM; GPUs attach only to N1 machine types (e.g. n1-standard-8), or use a GPU machine type such as a2-highgpu-1g or g2-standard-8` };
  }
  if (!machineType.startsWith('n1-')) {
    return { field: 'gpus', message: `${machineType} cannot take GPUs; attach them to an N1 machine type (e.g. n1-standard-8) or use a GPU machine type such as a2-highgpu-1g or g2-standard-8` };
  }
  const counts = n1GpuCounts(gpus.type);
  if (counts.length === 0) return { field: 'gpus.type', message: `"${gpus.type}" does not attach to N1 machine types; one of ${N1_GPU_TYPES.join(', ')}` };
  if (!counts.includes(gpus.count)) return { field: 'gpus.count', message: `${gpus.type} comes ${orList(counts)} per VM, not ${gpus.count}` };
  const vcpus = n1Vcpus(machineType);
  if (vcpus === undefined) {
    return { field: 'gpus', message: `${machineType} is not a predefined N1 machine type that takes GPUs (n1-standard-1..96, n1-highmem-2..96, n1-highcpu-2..96; not f1-micro or g1-small)` };
  }
  const maxVcpus = (N1_GPUS[gpus.type as N1GpuType].maxVcpus as Record<number, number>)[gpus.count]!;
  if (vcpus > maxVcpus) {
    return { field: 'gpus', message: `${machineType} has ${vcpus} vCPUs, but at most ${maxVcpus} vCPUs go with ${gpus.count} × ${gpus.type}; use a smaller N1 type or more GPUs` };
  }
  return undefined;
}

/**
 * The default boot image of a GPU machine: Google's Deep Learning VM image family
 * `common-cu128-ubuntu-2204-nvidia-570` (project deeplearning-platform-release: Ubuntu 22.04,
 * CUDA 12.8, the NVIDIA 570 driver in the image), the family Google's and users' gcloud examples
 * create N1+T4, G2 and A3 VMs from, with `--metadata install-nvidia-driver=True` (the Deep
 * Learning VM images' switch to install the driver at first boot when it is missing; see
 * GPU_DRIVER_METADATA). Image list: https://cloud.google.com/deep-learning-vm/docs/images. The
 * stage container runs with `docker run --gpus all`, which needs Docker with the NVIDIA Container
 * Toolkit on the image; README "Cloud TPUs and VMs" says what to do with an image without it.
 */
export const GPU_BOOT_IMAGE = 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570';
/** The boot image of every other compute-engine VM (CPU and TPU VMs), unchanged. */
export const DEFAULT_BOOT_IMAGE = 'projects/cos-cloud/global/images/family/cos-stable';
/** Metadata of every GPU VM: Deep Learning VM images install the NVIDIA driver at first boot when asked to (other images ignore it). */
export const GPU_DRIVER_METADATA: Readonly<Record<string, string>> = { 'install-nvidia-driver': 'True' };

/** The boot image a compute-engine VM gets when the input names none. */
export function defaultBootImage(machineType: string, gpus?: Gpus): string {
  return gpusOf(machineType, gpus) !== undefined ? GPU_BOOT_IMAGE : DEFAULT_BOOT_IMAGE;
}
