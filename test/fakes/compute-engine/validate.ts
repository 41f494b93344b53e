/**
 * What instances.insert refuses (HTTP 400, the API's wording): a bad name, a machine type the
 * zone does not offer, labels or metadata out of format, not exactly one boot disk from a
 * well-formed image, no network interface, scheduling Compute Engine does not allow (spot with
 * automatic restart or live migration, a TPU VM that would live-migrate). GPUs: gpus.ts.
 */
import { FAKE_GPU_MACHINES, isGpuSeries } from './gpus.ts';
import { invalidField, invalidMachineType } from './messages.ts';

export const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const METADATA_KEY = /^[a-zA-Z0-9_-]{1,128}$/;
const IMAGE = /^(https:\/\/www\.googleapis\.com\/compute\/v1\/)?projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/global\/images\/(family\/)?[a-z][a-z0-9-]{0,62}$/;
const FAMILIES = /^(e2|f1|g1|n1|n2|n2d|n4|c2|c2d|c3|c3d|c4|c4a|c4d|t2a|t2d|m1|m2|m3|h3|z3)-(standard|highmem|highcpu|megamem|ultramem|micro|small|medium)(-\d+)?(-lssd)?$/;

/**
 * Machine types offered by default: a well-formed type of a known family; TPU VMs in their
 * single-host sizes; GPU types (a2/a3/g2) in their exact sizes only (the server also asks that
 * the zone offer their GPU).
 */
export function defaultOffers(_zone: string, machineType: string): boolean {
  if (isGpuSeries(machineType)) return FAKE_GPU_MACHINES[machineType] !== undefined;
  return FAMILIES.test(machineType) || /^ct6e-standard-(1|4|8)t$/.test(machineType) || /^ct5lp-hightpu-(1|4|8)t$/.test(machineType);
}

/** The short machine type of `zones/Z/machineTypes/T` (or a full URL), when the zone offers it. */
export function checkMachineType(zone: string, value: string, offered: (zone: string, machineType: string) => boolean): string {
  const match = /^(?:(?:https:\/\/www\.googleapis\.com\/compute\/v1\/)?projects\/[^/]+\/)?zones\/([^/]+)\/machineTypes\/([^/]+)$/.exec(value);
  const machineType = match?.[2] ?? value.split('/').pop() ?? '';
  if (match === null || match[1] !== zone) throw invalidMachineType(value, machineType, zone);
  if (!offered(zone, machineType)) throw invalidMachineType(value, machineType, zone);
  return machineType;
}

export function checkLabels(labels: unknown): void {
  if (labels === undefined || labels === null) return;
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > 64) throw invalidField('resource.labels', '', 'At most 64 labels.');
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k)) throw invalidField('resource.labels', '', `Label key '${k}' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long. International characters are allowed.`);
    if (typeof v !== 'string' || !LABEL_VALUE.test(v)) throw invalidField('resource.labels', '', `Label value '${String(v)}' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.`);
  }
}

export function checkMetadata(metadata: unknown): void {
  const items = ((metadata ?? {}) as { items?: Array<{ key?: string; value?: string }> }).items ?? [];
  const seen = new Set<string>();
  let size = 0;
  for (const item of items) {
    const k = String(item.key ?? '');
    if (!METADATA_KEY.test(k)) throw invalidField('resource.metadata', '', `Metadata key '${k}' contains invalid characters or is too long.`);
    if (seen.has(k)) throw invalidField('resource.metadata', '', `Metadata has duplicate keys: ${k}.`);
    seen.add(k);
    size += k.length + String(item.value ?? '').length;
  }
  if (size > 512 * 1024) throw invalidField('resource.metadata', '', 'Metadata total size exceeds 512 KB.');
}

export function checkDisks(disks: unknown): void {
  const list = Array.isArray(disks) ? (disks as Array<Record<string, unknown>>) : [];
  const boot = list.filter((d) => d.boot === true);
  if (boot.length !== 1) throw invalidField('resource.disks', '', 'Exactly one boot disk must be specified.');
  const init = (boot[0]!.initializeParams ?? {}) as Record<string, unknown>;
  const image = String(init.sourceImage ?? '');
  if (!IMAGE.test(image)) throw invalidField('resource.disks[0].initializeParams.sourceImage', image, 'The referenced image resource cannot be found.');
  const size = Number(init.diskSizeGb ?? 10);
  if (!Number.isInteger(size) || size < 10) throw invalidField('resource.disks[0].initializeParams.diskSizeGb', String(init.diskSizeGb), 'Requested disk size cannot be smaller than the image size (10 GB).');
}

export function checkScheduling(scheduling: unknown, machineType: string): void {
  const s = (scheduling ?? {}) as Record<string, unknown>;
  const spot = s.provisioningModel === 'SPOT';
  if (s.provisioningModel !== undefined && s.provisioningModel !== 'SPOT' && s.provisioningModel !== 'STANDARD') {
    throw invalidField('resource.scheduling.provisioningModel', String(s.provisioningModel), 'Unknown provisioning model.');
  }
  if (spot && s.automaticRestart === true) throw invalidField('resource.scheduling.automaticRestart', 'true', 'Spot VMs cannot be restarted automatically.');
  if ((spot || s.preemptible === true) && s.onHostMaintenance === 'MIGRATE') {
    throw invalidField('resource.scheduling.onHostMaintenance', 'MIGRATE', 'Spot and preemptible VMs must terminate on host maintenance.');
  }
  if (/^ct/.test(machineType) && s.onHostMaintenance !== 'TERMINATE') {
    throw invalidField('resource.scheduling.onHostMaintenance', String(s.onHostMaintenance ?? 'MIGRATE'), 'TPU VMs do not support live migration; onHostMaintenance must be TERMINATE.');
  }
  const action = s.instanceTerminationAction;
  if (action !== undefined && action !== 'STOP' && action !== 'DELETE') throw invalidField('resource.scheduling.instanceTerminationAction', String(action), 'Must be STOP or DELETE.');
}
