/**
 * The fake Cloud TPU API's data model: what a node, a queued resource and an operation hold, and
 * the pure helpers the server uses (names, worker counts, error texts, timestamps, host keys).
 */
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';

export type NodeState = 'CREATING' | 'READY' | 'DELETING' | 'PREEMPTED' | 'TERMINATED' | 'REPAIRING' | 'STOPPED';

export type QueuedResourceStateName =
  | 'ACCEPTED'
  | 'WAITING_FOR_RESOURCES'
  | 'PROVISIONING'
  | 'ACTIVE'
  | 'FAILED'
  | 'SUSPENDING'
  | 'SUSPENDED'
  | 'DELETING';

export interface FakeWorker {
  ipAddress: string;
  externalIp?: string;
  /** networkEndpoints[i].port; the real API puts 8470 (the TPU runtime port) there. */
  port?: number;
  hostKeys: string[];
}

/** What `addressFor` may give per worker: addresses, and for emulators the SSH port and host keys. */
export interface FakeWorkerAddress {
  ipAddress: string;
  externalIp?: string;
  port?: number;
  hostKeys?: string[];
}

export interface FakeNode {
  name: string;
  project: string;
  zone: string;
  nodeId: string;
  acceleratorType: string;
  runtimeVersion: string;
  state: NodeState;
  health?: 'HEALTHY' | 'UNHEALTHY_MAINTENANCE';
  labels: Record<string, string>;
  metadata: Record<string, string>;
  description: string;
  spot: boolean;
  enableExternalIps: boolean;
  /** The create request's serviceAccount.email, when it named one (the real API then uses the project's default compute account). */
  serviceAccount?: string;
  createdAt: number;
  readyAt: number;
  /** Create ends in this error instead of READY (stockout decided at create time). */
  createError?: { code: number; message: string };
  preemptAt?: number;
  /** Name of the queued resource that made this node (it becomes READY by the clock, not by an operation). */
  queuedResource?: string;
  workers: FakeWorker[];
}

export interface FakeQueuedResource {
  name: string;
  project: string;
  zone: string;
  queuedResourceId: string;
  /** nodeSpec[0] as given: the node is made from it once capacity arrives. */
  nodeParent: string;
  nodeId: string;
  nodeSpec: Record<string, unknown>;
  spot: boolean;
  guaranteed: boolean;
  requestId: string;
  createdAt: number;
  /** Capacity arrives then (unless the zone is stocked out at that time). */
  capacityAt: number;
  /** From queueingPolicy.validUntilDuration / validUntilTime: still waiting then → FAILED. */
  validUntil?: number;
  state: QueuedResourceStateName;
  initiator?: 'USER' | 'SERVICE';
  error?: { code: number; message: string };
  createOperation: string;
}

export interface FakeOperation {
  name: string;
  verb: 'create' | 'delete';
  kind: 'node' | 'queuedResource';
  target: string;
  createdAt: number;
  doneAt: number;
  /** Result once done; computed at completion. */
  outcome?: { node?: FakeNode; queuedResource?: FakeQueuedResource; empty?: true; error?: { code: number; message: string } };
}

export type RpcMethod =
  | 'CreateNode'
  | 'GetNode'
  | 'ListNodes'
  | 'DeleteNode'
  | 'GetGuestAttributes'
  | 'CreateQueuedResource'
  | 'GetQueuedResource'
  | 'ListQueuedResources'
  | 'DeleteQueuedResource'
  | 'GetOperation';

export const RPC_METHODS: readonly RpcMethod[] = [
  'CreateNode',
  'GetNode',
  'ListNodes',
  'DeleteNode',
  'GetGuestAttributes',
  'CreateQueuedResource',
  'GetQueuedResource',
  'ListQueuedResources',
  'DeleteQueuedResource',
  'GetOperation',
];

/** Workers (VMs) of a v6e slice: v6e-1/4/8 are one host, larger slices have 4 chips per host. */
export function fakeWorkerCount(acceleratorType: string): number | undefined {
  const match = /^v6e-(\d+)$/.exec(acceleratorType);
  if (match === null) return undefined;
  const chips = Number(match[1]);
  if (![1, 4, 8, 16, 32, 64, 128, 256].includes(chips)) return undefined;
  return chips <= 8 ? 1 : chips / 4;
}

export const stockoutMessage = (zone: string): string =>
  `There is no more capacity in the zone "${zone}"; you can try in another zone where Cloud TPU Nodes are offered (see https://cloud.google.com/tpu/docs/regions) [EID: 0x5a1f7e0c3b2d9a41]`;

export const quotaMessage = (zone: string): string =>
  `Quota limit 'TPUV6EPreemptiblePerProjectPerRegionForTPUAPI' has been exceeded. Limit: 0 in region ${zone.replace(/-[a-z]$/, '')}.`;

export class RpcError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

export const PARENT = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z]|-)$/;
export const NODE_NAME = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z])\/nodes\/([a-z]([-a-z0-9]*[a-z0-9])?)$/;
export const QR_NAME = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z])\/queuedResources\/([a-z]([-a-z0-9]*[a-z0-9])?)$/;
export const RESOURCE_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function timestamp(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** A google.protobuf.Duration ({ seconds, nanos }, as decoded: seconds may be a string) in ms. */
export function durationMs(value: unknown): number | undefined {
  const d = value as { seconds?: unknown; nanos?: unknown } | null | undefined;
  if (d === null || d === undefined || (d.seconds === undefined && d.nanos === undefined)) return undefined;
  return Number(d.seconds ?? 0) * 1000 + Math.floor(Number(d.nanos ?? 0) / 1_000_000);
}

/** A syntactically valid ssh-ed25519 public key, derived from the node and worker. */
export function fakeHostKey(nodeName: string, worker: number): string {
  const type = Buffer.from('ssh-ed25519');
  const key = createHash('sha256').update(`${nodeName}#${worker}`).digest();
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(key.length), key]).toString('base64')}`;
}

/** One page of a sorted listing; the page token is the offset. */
export function page<T>(all: readonly T[], pageSize: number, pageToken: string, maxPageSize: number): { items: T[]; next: string } {
  const size = Math.max(1, Math.min(pageSize > 0 ? pageSize : all.length || 1, maxPageSize));
  const offset = Number(pageToken || 0);
  return { items: all.slice(offset, offset + size), next: offset + size < all.length ? String(offset + size) : '' };
}
