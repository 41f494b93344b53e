/**
 * The fake's resources and how the API renders them: instances and zone operations as the
 * Compute Engine v1 JSON (selfLinks on www.googleapis.com, uint64 ids as strings, RFC 3339
 * timestamps with GCE's Pacific offset, ephemeral external IPs only while the VM is up).
 */
import { createHash } from 'node:crypto';
import type { OperationFailure } from './messages.ts';

export type InstanceStatus = 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'STOPPED' | 'TERMINATED' | 'SUSPENDING' | 'SUSPENDED' | 'REPAIRING';

export interface FakeInstance {
  project: string;
  zone: string;
  name: string;
  /** Numeric, as a string (uint64 in the API). */
  id: string;
  createdAt: number;
  status: InstanceStatus;
  statusMessage?: string;
  /** Short name, e.g. n2-standard-8. */
  machineType: string;
  description: string;
  labels: Record<string, string>;
  metadata: Record<string, string>;
  /** As GCE reports it: the request's values with GCE's defaults filled in. */
  scheduling: { provisioningModel: 'STANDARD' | 'SPOT'; automaticRestart: boolean; onHostMaintenance: 'MIGRATE' | 'TERMINATE'; preemptible: boolean; instanceTerminationAction?: 'STOP' | 'DELETE' };
  sourceImage: string;
  bootDiskGb: number;
  /** Boot disk type, short (pd-standard when the request named none). */
  diskType: string;
  /** The VM's GPUs: its machine type's (a2/a3/g2) or the N1 guestAccelerators; undefined for none. */
  gpus?: { type: string; count: number };
  network: string;
  /** VIRTIO_NET unless the request asked for GVNIC. */
  nicType: 'VIRTIO_NET' | 'GVNIC';
  /** An external (ONE_TO_ONE_NAT) access config was asked for. */
  external: boolean;
  serviceAccounts: unknown[];
  ipAddress: string;
  natIP?: string;
  /** Where this VM's SSH "really" listens (tests map VMs onto local sshd ports). */
  sshPort?: number;
  /** "type base64" each. */
  hostKeys: string[];
  /** Clock time the create operation completes (PROVISIONING until then). */
  createdDoneAt: number;
  /** Clock time it becomes RUNNING (STAGING in between). */
  runningAt: number;
  createFailure?: OperationFailure;
  preemptAt?: number;
  lastStartAt?: number;
  lastStopAt?: number;
}

export type SystemEvent = 'compute.instances.preempted' | 'compute.instances.hostError' | 'compute.instances.terminateOnHostMaintenance' | 'compute.instances.guestTerminate';

export interface FakeOperation {
  name: string;
  id: string;
  project: string;
  zone: string;
  operationType: 'insert' | 'delete' | SystemEvent;
  targetName: string;
  targetId: string;
  user: string;
  insertTime: number;
  doneAt: number;
  completed: boolean;
  statusMessage?: string;
  failure?: OperationFailure;
}

export const API = 'https://www.googleapis.com/compute/v1';

export const instanceKey = (project: string, zone: string, name: string): string => `projects/${project}/zones/${zone}/instances/${name}`;

/** A syntactically valid ssh-ed25519 public key ("type base64"), derived from the seed. */
export function fakeHostKey(seed: string): string {
  const type = Buffer.from('ssh-ed25519');
  const key = createHash('sha256').update(seed).digest();
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(key.length), key]).toString('base64')}`;
}

/** RFC 3339 with a Pacific offset, as GCE writes timestamps. */
export function timestamp(ms: number): string {
  return new Date(ms - 7 * 3_600_000).toISOString().replace('Z', '-07:00');
}

export function instanceJson(vm: FakeInstance): Record<string, unknown> {
  const base = `${API}/projects/${vm.project}`;
  const nicUp = vm.status !== 'PROVISIONING';
  const metadataItems = Object.entries(vm.metadata).map(([k, v]) => ({ key: k, value: v }));
  return {
    kind: 'compute#instance',
    id: vm.id,
    creationTimestamp: timestamp(vm.createdAt),
    name: vm.name,
    ...(vm.description !== '' ? { description: vm.description } : {}),
    tags: { fingerprint: '42WmSpB8rSM=' },
    machineType: `${base}/zones/${vm.zone}/machineTypes/${vm.machineType}`,
    status: vm.status,
    ...(vm.statusMessage !== undefined ? { statusMessage: vm.statusMessage } : {}),
    zone: `${base}/zones/${vm.zone}`,
    canIpForward: false,
    networkInterfaces: [
      {
        kind: 'compute#networkInterface',
        network: `${base}/${vm.network.replace(/^.*?(global\/networks\/)/, '$1')}`,
        networkIP: vm.ipAddress,
        name: 'nic0',
        accessConfigs: vm.external
          ? [{ kind: 'compute#accessConfig', type: 'ONE_TO_ONE_NAT', name: 'External NAT', networkTier: 'PREMIUM', ...(nicUp && vm.natIP !== undefined ? { natIP: vm.natIP } : {}) }]
          : [],
        fingerprint: 'fK3yq5jJmFI=',
        stackType: 'IPV4_ONLY',
        ...(vm.nicType === 'GVNIC' ? { nicType: 'GVNIC' } : {}),
      },
    ],
    disks: [
      {
        kind: 'compute#attachedDisk',
        type: 'PERSISTENT',
        mode: 'READ_WRITE',
        source: `${base}/zones/${vm.zone}/disks/${vm.name}`,
        deviceName: 'persistent-disk-0',
        index: 0,
        boot: true,
        autoDelete: true,
        interface: 'SCSI',
        diskSizeGb: String(vm.bootDiskGb),
      },
    ],
    // GCE lists every GPU here, an accelerator-optimized type's own included.
    ...(vm.gpus !== undefined ? { guestAccelerators: [{ acceleratorType: `${base}/zones/${vm.zone}/acceleratorTypes/${vm.gpus.type}`, acceleratorCount: vm.gpus.count }] } : {}),
    metadata: { kind: 'compute#metadata', fingerprint: 'g0lWyuD4Qk4=', ...(metadataItems.length > 0 ? { items: metadataItems } : {}) },
    serviceAccounts: vm.serviceAccounts,
    selfLink: `${base}/zones/${vm.zone}/instances/${vm.name}`,
    scheduling: vm.scheduling,
    cpuPlatform: 'Intel Cascade Lake',
    ...(Object.keys(vm.labels).length > 0 ? { labels: vm.labels } : {}),
    labelFingerprint: 'vezUS-42LLM=',
    deletionProtection: false,
    ...(vm.lastStartAt !== undefined ? { lastStartTimestamp: timestamp(vm.lastStartAt) } : {}),
    ...(vm.lastStopAt !== undefined ? { lastStopTimestamp: timestamp(vm.lastStopAt) } : {}),
  };
}

export function operationJson(op: FakeOperation): Record<string, unknown> {
  const base = `${API}/projects/${op.project}/zones/${op.zone}`;
  const done = op.completed;
  return {
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    zone: base,
    operationType: op.operationType,
    targetLink: `${base}/instances/${op.targetName}`,
    targetId: op.targetId,
    status: done ? 'DONE' : 'RUNNING',
    ...(op.statusMessage !== undefined ? { statusMessage: op.statusMessage } : {}),
    user: op.user,
    progress: done ? 100 : 0,
    insertTime: timestamp(op.insertTime),
    startTime: timestamp(op.insertTime),
    ...(done ? { endTime: timestamp(op.doneAt) } : {}),
    ...(done && op.failure !== undefined
      ? { error: { errors: op.failure.errors }, httpErrorStatusCode: op.failure.httpErrorStatusCode, httpErrorMessage: op.failure.httpErrorMessage }
      : {}),
    selfLink: `${base}/operations/${op.name}`,
  };
}
