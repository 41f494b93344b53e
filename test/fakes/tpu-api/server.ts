/**
 * A local fake of the Cloud TPU API v2 over gRPC (`google.cloud.tpu.v2.Tpu` +
 * `google.longrunning.Operations`), built from the client's own .proto files, for the real
 * `v2.TpuClient` pointed at it with insecure credentials:
 *
 *   new v2.TpuClient({ apiEndpoint: '127.0.0.1', port: fake.port, sslCreds: grpc.credentials.createInsecure() })
 *
 * Nodes live in memory per project/zone. CreateNode returns an operation that completes after
 * `createDelayMs` (node CREATING → READY, networkEndpoints appear at READY, one per worker VM).
 * State advances lazily, on every request, from the clock: no timers to leak.
 *
 * Faults are set on the object (not over the wire): stockout per zone (the operation fails with
 * code 8 and the capacity message), quota per zone (CreateNode itself fails, code 8 + the quota
 * message), slow creation, preemption at a time, maintenance, failing deletes, pre-existing nodes
 * (CreateNode → ALREADY_EXISTS), withheld host keys. Every call is counted (`calls`).
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { loadTpuProtos } from './protos.ts';

export type NodeState = 'CREATING' | 'READY' | 'DELETING' | 'PREEMPTED' | 'TERMINATED' | 'REPAIRING' | 'STOPPED';

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
  createdAt: number;
  readyAt: number;
  /** Create ends in this error instead of READY (stockout decided at create time). */
  createError?: { code: number; message: string };
  preemptAt?: number;
  workers: Array<{ ipAddress: string; externalIp?: string; hostKeys: string[] }>;
}

interface FakeOperation {
  name: string;
  verb: 'create' | 'delete';
  target: string;
  createdAt: number;
  doneAt: number;
  /** Result once done; computed at completion. */
  outcome?: { node?: FakeNode; empty?: true; error?: { code: number; message: string } };
}

export interface FakeTpuOptions {
  /** Time from CreateNode to READY (the operation completes then). Default 50 ms. */
  createDelayMs?: number;
  /** Time a DeleteNode operation takes. Default 0. */
  deleteDelayMs?: number;
  /** Worker addresses; default 10.<n>.0.<worker+2> internal, 34.<n>.0.<worker+2> external when enabled. */
  addressFor?: (node: FakeNode, worker: number) => { ipAddress: string; externalIp?: string };
  /** The clock (ms since epoch). Default Date.now. */
  now?: () => number;
}

export type RpcMethod = 'CreateNode' | 'GetNode' | 'ListNodes' | 'DeleteNode' | 'GetGuestAttributes' | 'GetOperation';

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

class RpcError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

const PARENT = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z]|-)$/;
const NODE_NAME = /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])\/locations\/([a-z]+-[a-z]+[0-9]+-[a-z])\/nodes\/([a-z]([-a-z0-9]*[a-z0-9])?)$/;
const NODE_ID = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

function timestamp(ms: number): { seconds: string; nanos: number } {
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** A syntactically valid ssh-ed25519 public key, derived from the node and worker. */
function fakeHostKey(nodeName: string, worker: number): string {
  const type = Buffer.from('ssh-ed25519');
  const key = createHash('sha256').update(`${nodeName}#${worker}`).digest();
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return `ssh-ed25519 ${Buffer.concat([u32(type.length), type, u32(key.length), key]).toString('base64')}`;
}

export class FakeTpuApi {
  /** Calls per method, counted when they arrive (before any fault or validation). */
  readonly calls: Record<RpcMethod, number> = { CreateNode: 0, GetNode: 0, ListNodes: 0, DeleteNode: 0, GetGuestAttributes: 0, GetOperation: 0 };
  /** Every request as received, in order. */
  readonly requests: Array<{ method: RpcMethod; request: unknown }> = [];
  createDelayMs: number;
  deleteDelayMs: number;

  private readonly nodes = new Map<string, FakeNode>();
  private readonly operations = new Map<string, FakeOperation>();
  private readonly stockoutZones = new Set<string>();
  private readonly quotaZones = new Set<string>();
  private deleteFailures: Array<{ code: grpc.status; message: string }> = [];
  private hostKeysWithheld = false;
  private opCounter = 0;
  private nodeCounter = 0;
  private readonly addressFor: (node: FakeNode, worker: number) => { ipAddress: string; externalIp?: string };
  private readonly now: () => number;
  private server: grpc.Server | undefined;
  port = 0;

  constructor(options: FakeTpuOptions = {}) {
    this.createDelayMs = options.createDelayMs ?? 50;
    this.deleteDelayMs = options.deleteDelayMs ?? 0;
    this.now = options.now ?? Date.now;
    this.addressFor =
      options.addressFor ??
      ((node, worker) => {
        const index = this.nodeIndex.get(node.name) ?? 0;
        return {
          ipAddress: `10.${index % 250}.0.${worker + 2}`,
          ...(node.enableExternalIps ? { externalIp: `34.${index % 250}.0.${worker + 2}` } : {}),
        };
      });
  }

  private readonly nodeIndex = new Map<string, number>();

  // ---- lifecycle ---------------------------------------------------------------------

  /** Starts on a free loopback port; returns it. */
  async start(): Promise<number> {
    const protos = loadTpuProtos();
    const server = new grpc.Server();
    server.addService(protos.tpuService, {
      CreateNode: this.unary('CreateNode', (r) => this.createNode(r)),
      GetNode: this.unary('GetNode', (r) => this.nodeMessage(this.getExisting(String(r.name)))),
      ListNodes: this.unary('ListNodes', (r) => this.listNodes(r)),
      DeleteNode: this.unary('DeleteNode', (r) => this.deleteNode(r)),
      GetGuestAttributes: this.unary('GetGuestAttributes', (r) => this.guestAttributes(r)),
    });
    server.addService(protos.operationsService, {
      GetOperation: this.unary('GetOperation', (r) => this.operationMessage(String(r.name))),
    });
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port)));
    });
    this.server = server;
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      // tryShutdown waits for open calls; a stuck client must not hang the test run.
      setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000).unref();
    });
  }

  // ---- fault injection and inspection ------------------------------------------------

  /** CreateNode in this zone is accepted, then its operation fails with code 8 (no capacity). */
  stockout(zone: string, on = true): void {
    if (on) this.stockoutZones.add(zone);
    else this.stockoutZones.delete(zone);
  }

  /** CreateNode in this zone fails at once with code 8 and the quota message. */
  quotaExceeded(zone: string, on = true): void {
    if (on) this.quotaZones.add(zone);
    else this.quotaZones.delete(zone);
  }

  /** The next `times` DeleteNode calls fail (default INTERNAL). */
  failDeletes(times: number, code: grpc.status = grpc.status.INTERNAL, message = 'an internal error has occurred'): void {
    for (let i = 0; i < times; i++) this.deleteFailures.push({ code, message });
  }

  /** The node becomes PREEMPTED at `atMs` (clock time; now when omitted) if it is READY then. */
  preemptAt(name: string, atMs: number = this.now()): void {
    this.getExisting(name).preemptAt = atMs;
  }

  /** Maintenance: health UNHEALTHY_MAINTENANCE, and state TERMINATED when `terminate`. */
  maintenance(name: string, terminate = false): void {
    const node = this.getExisting(name);
    node.health = 'UNHEALTHY_MAINTENANCE';
    if (terminate) node.state = 'TERMINATED';
  }

  /** GetGuestAttributes answers without host keys (as before the guest agent has run). */
  withholdHostKeys(on = true): void {
    this.hostKeysWithheld = on;
  }

  /** A node that already exists (made by someone else, or an earlier try): CreateNode of it → ALREADY_EXISTS. */
  seedNode(parent: string, nodeId: string, acceleratorType: string, state: NodeState = 'READY'): FakeNode {
    const node = this.newNode(parent, nodeId, { acceleratorType, runtimeVersion: 'v2-alpha-tpuv6e' });
    node.state = state;
    node.readyAt = this.now();
    if (state !== 'CREATING') this.materializeWorkers(node);
    this.nodes.set(node.name, node);
    return node;
  }

  node(name: string): FakeNode | undefined {
    this.advance();
    return this.nodes.get(name);
  }

  allNodes(): FakeNode[] {
    this.advance();
    return [...this.nodes.values()];
  }

  totalCalls(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  // ---- the clock ---------------------------------------------------------------------

  private advance(): void {
    const now = this.now();
    for (const op of this.operations.values()) {
      if (op.outcome !== undefined || now < op.doneAt) continue;
      const node = this.nodes.get(op.target);
      if (op.verb === 'create') {
        if (node === undefined) op.outcome = { error: { code: grpc.status.ABORTED, message: `node ${op.target} was deleted while being created` } };
        else if (node.createError !== undefined) {
          op.outcome = { error: node.createError };
          this.nodes.delete(node.name);
        } else {
          if (node.state === 'CREATING') {
            node.state = 'READY';
            node.health = 'HEALTHY';
            this.materializeWorkers(node);
          }
          op.outcome = { node };
        }
      } else {
        this.nodes.delete(op.target);
        op.outcome = { empty: true };
      }
    }
    for (const node of this.nodes.values()) {
      if (node.preemptAt !== undefined && now >= node.preemptAt && node.state === 'READY') node.state = 'PREEMPTED';
    }
  }

  // ---- handlers ----------------------------------------------------------------------

  private unary(method: RpcMethod, handle: (request: Record<string, unknown>) => unknown): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
    return (call, callback) => {
      this.calls[method]++;
      this.requests.push({ method, request: call.request });
      try {
        this.advance();
        callback(null, handle(call.request));
      } catch (error) {
        if (error instanceof RpcError) callback({ code: error.code, details: error.message });
        else callback({ code: grpc.status.INTERNAL, details: `fake: ${String(error)}` });
      }
    };
  }

  private createNode(request: Record<string, unknown>): unknown {
    const parent = String(request.parent ?? '');
    const nodeId = String(request.nodeId ?? '');
    const spec = (request.node ?? {}) as Record<string, unknown>;
    const match = PARENT.exec(parent);
    if (match === null || match[2] === '-') throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid parent "${parent}"`);
    if (!NODE_ID.test(nodeId)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid node id "${nodeId}"`);
    const zone = match[2]!;
    const acceleratorType = String(spec.acceleratorType ?? '');
    if (fakeWorkerCount(acceleratorType) === undefined) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `CloudTpu received an invalid AcceleratorType "${acceleratorType}"`);
    }
    if (!spec.runtimeVersion) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'runtime_version is required');
    const name = `${parent}/nodes/${nodeId}`;
    if (this.nodes.has(name)) throw new RpcError(grpc.status.ALREADY_EXISTS, `Resource '${name}' already exists`);
    if (this.quotaZones.has(zone)) throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, quotaMessage(zone));

    const node = this.newNode(parent, nodeId, spec);
    if (this.stockoutZones.has(zone)) node.createError = { code: grpc.status.RESOURCE_EXHAUSTED, message: stockoutMessage(zone) };
    this.nodes.set(name, node);
    const op = this.newOperation('create', name, parent, this.createDelayMs);
    return this.operationMessage(op.name);
  }

  private deleteNode(request: Record<string, unknown>): unknown {
    const node = this.getExisting(String(request.name ?? ''));
    const failure = this.deleteFailures.shift();
    if (failure !== undefined) throw new RpcError(failure.code, failure.message);
    node.state = 'DELETING';
    const parent = node.name.replace(/\/nodes\/[^/]+$/, '');
    const op = this.newOperation('delete', node.name, parent, this.deleteDelayMs);
    this.advance();
    return this.operationMessage(op.name);
  }

  private listNodes(request: Record<string, unknown>): unknown {
    const parent = String(request.parent ?? '');
    const match = PARENT.exec(parent);
    if (match === null) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid parent "${parent}"`);
    const [, project, zone] = match;
    const all = [...this.nodes.values()].filter((n) => n.project === project && (zone === '-' || n.zone === zone)).sort((a, b) => a.name.localeCompare(b.name));
    const pageSize = Number(request.pageSize ?? 0) || all.length || 1;
    const offset = Number(request.pageToken || 0);
    const page = all.slice(offset, offset + pageSize);
    const next = offset + pageSize < all.length ? String(offset + pageSize) : '';
    return { nodes: page.map((n) => this.nodeMessage(n)), nextPageToken: next, unreachable: [] };
  }

  private guestAttributes(request: Record<string, unknown>): unknown {
    const node = this.getExisting(String(request.name ?? ''));
    const queryPath = String(request.queryPath ?? '');
    const ids = ((request.workerIds ?? []) as string[]).map(Number);
    const workers = ids.length > 0 ? ids : node.workers.map((_w, i) => i);
    return {
      guestAttributes: workers.map((i) => {
        const worker = node.workers[i];
        if (worker === undefined) throw new RpcError(grpc.status.INVALID_ARGUMENT, `no worker ${i} on ${node.name}`);
        const items =
          this.hostKeysWithheld || !(queryPath === '' || queryPath.startsWith('hostkeys'))
            ? []
            : worker.hostKeys.map((key) => ({ namespace: 'hostkeys', key: key.split(' ')[0]!, value: key }));
        return { queryPath, queryValue: { items } };
      }),
    };
  }

  // ---- model -------------------------------------------------------------------------

  private getExisting(name: string): FakeNode {
    if (!NODE_NAME.test(name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid node name "${name}"`);
    const node = this.nodes.get(name);
    if (node === undefined) throw new RpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return node;
  }

  private newNode(parent: string, nodeId: string, spec: Record<string, unknown>): FakeNode {
    const [, project, zone] = PARENT.exec(parent) ?? [];
    const now = this.now();
    const name = `${parent}/nodes/${nodeId}`;
    this.nodeIndex.set(name, ++this.nodeCounter);
    const scheduling = (spec.schedulingConfig ?? {}) as Record<string, unknown>;
    const network = (spec.networkConfig ?? {}) as Record<string, unknown>;
    return {
      name,
      project: project ?? '',
      zone: zone ?? '',
      nodeId,
      acceleratorType: String(spec.acceleratorType ?? ''),
      runtimeVersion: String(spec.runtimeVersion ?? ''),
      state: 'CREATING',
      labels: { ...((spec.labels ?? {}) as Record<string, string>) },
      metadata: { ...((spec.metadata ?? {}) as Record<string, string>) },
      description: String(spec.description ?? ''),
      spot: scheduling.spot === true,
      enableExternalIps: network.enableExternalIps === true,
      createdAt: now,
      readyAt: now + this.createDelayMs,
      workers: [],
    };
  }

  private materializeWorkers(node: FakeNode): void {
    if (node.workers.length > 0) return;
    const count = fakeWorkerCount(node.acceleratorType) ?? 1;
    node.workers = Array.from({ length: count }, (_v, i) => ({ ...this.addressFor(node, i), hostKeys: [fakeHostKey(node.name, i)] }));
  }

  private newOperation(verb: 'create' | 'delete', target: string, parent: string, delayMs: number): FakeOperation {
    const now = this.now();
    const op: FakeOperation = { name: `${parent}/operations/operation-${now}-${++this.opCounter}`, verb, target, createdAt: now, doneAt: now + delayMs };
    this.operations.set(op.name, op);
    return op;
  }

  private nodeMessage(node: FakeNode): Record<string, unknown> {
    const hasEndpoints = node.state !== 'CREATING' && node.workers.length > 0;
    return {
      name: node.name,
      description: node.description,
      acceleratorType: node.acceleratorType,
      runtimeVersion: node.runtimeVersion,
      state: node.state,
      ...(node.health !== undefined ? { health: node.health } : {}),
      labels: node.labels,
      metadata: node.metadata,
      schedulingConfig: { spot: node.spot },
      networkConfig: { enableExternalIps: node.enableExternalIps },
      networkEndpoints: hasEndpoints
        ? node.workers.map((w) => ({ ipAddress: w.ipAddress, port: 8470, ...(w.externalIp !== undefined ? { accessConfig: { externalIp: w.externalIp } } : {}) }))
        : [],
      createTime: timestamp(node.createdAt),
      id: String(this.nodeIndex.get(node.name) ?? 0),
      apiVersion: 'V2',
    };
  }

  private operationMessage(name: string): Record<string, unknown> {
    const op = this.operations.get(name);
    if (op === undefined) throw new RpcError(grpc.status.NOT_FOUND, `Operation '${name}' was not found`);
    const protos = loadTpuProtos();
    const done = op.outcome !== undefined;
    const metadata = {
      typeUrl: 'type.googleapis.com/google.cloud.tpu.v2.OperationMetadata',
      value: protos.encode('google.cloud.tpu.v2.OperationMetadata', {
        createTime: timestamp(op.createdAt),
        ...(done ? { endTime: timestamp(op.doneAt) } : {}),
        target: op.target,
        verb: op.verb,
        apiVersion: 'v2',
      }),
    };
    const message: Record<string, unknown> = { name: op.name, metadata, done };
    if (op.outcome?.error !== undefined) message.error = { code: op.outcome.error.code, message: op.outcome.error.message, details: [] };
    else if (op.outcome?.node !== undefined) {
      message.response = { typeUrl: 'type.googleapis.com/google.cloud.tpu.v2.Node', value: protos.encode('google.cloud.tpu.v2.Node', this.nodeMessage(op.outcome.node)) };
    } else if (op.outcome?.empty) message.response = { typeUrl: 'type.googleapis.com/google.protobuf.Empty', value: Buffer.alloc(0) };
    return message;
  }
}
