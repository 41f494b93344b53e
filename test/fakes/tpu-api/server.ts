/**
 * A local fake of the Cloud TPU API v2 over gRPC (`google.cloud.tpu.v2.Tpu` +
 * `google.longrunning.Operations`), built from the client's own .proto files, for the real
 * `v2.TpuClient` pointed at it with insecure credentials:
 *
 *   new v2.TpuClient({ apiEndpoint: '127.0.0.1', port: fake.port, sslCreds: grpc.credentials.createInsecure() })
 *
 * Nodes and queued resources live in memory per project/zone. State advances lazily, on every
 * request, from the clock: no timers to leak.
 *
 * - CreateNode returns an operation that completes after `createDelayMs` (node CREATING → READY,
 *   networkEndpoints appear at READY, one per worker VM).
 * - CreateQueuedResource returns an operation that completes at once (the request is accepted);
 *   the queued resource is ACCEPTED, then WAITING_FOR_RESOURCES until capacity arrives
 *   (`queueDelayMs` after creation, and only while its zone is not stocked out), then PROVISIONING
 *   with its node CREATING, then ACTIVE when the node is READY (`createDelayMs` later). Still
 *   waiting at its queueingPolicy's valid-until time → FAILED. A repeated create with the same
 *   requestId returns the first operation; another requestId gets ALREADY_EXISTS.
 *   DeleteQueuedResource with `force` deletes its node too; without it, a resource whose node
 *   exists (and that is not ACCEPTED/FAILED/SUSPENDED) is refused (FAILED_PRECONDITION).
 *
 * Faults are set on the object (not over the wire): stockout per zone (a direct create's
 * operation fails with code 8 and the capacity message; a queued resource keeps waiting), quota
 * per zone (the create call itself fails, code 8 + the quota message), slow creation, slow
 * queues, preemption at a time (a queued resource's node → PREEMPTED and the resource SUSPENDED
 * by the SERVICE), maintenance, a failed queued resource, failing deletes or any other call, pre-existing nodes
 * (CreateNode → ALREADY_EXISTS), withheld host keys, a page-size cap. Every call is counted
 * (`calls`) and kept (`requests`).
 */
import * as grpc from '@grpc/grpc-js';
import { loadTpuProtos } from './protos.ts';
import {
  NODE_NAME,
  PARENT,
  QR_NAME,
  RESOURCE_ID,
  RPC_METHODS,
  RpcError,
  durationMs,
  fakeHostKey,
  fakeWorkerCount,
  page,
  quotaMessage,
  stockoutMessage,
  timestamp,
  type FakeNode,
  type FakeOperation,
  type FakeQueuedResource,
  type FakeWorkerAddress,
  type NodeState,
  type RpcMethod,
} from './model.ts';

export * from './model.ts';

export interface FakeTpuOptions {
  /** Time from CreateNode (or from a queued resource's provisioning) to READY. Default 50 ms. */
  createDelayMs?: number;
  /** Time a DeleteNode / DeleteQueuedResource operation takes. Default 0. */
  deleteDelayMs?: number;
  /** Time a queued resource waits for capacity. Default 0. */
  queueDelayMs?: number;
  /**
   * Per worker: addresses (default 10.<n>.0.<worker+2> internal, 34.<n>.0.<worker+2> external
   * when enabled) and optionally the endpoint's port (default 8470, as the real API) and the host
   * keys the guest attributes publish (default a key derived from the node and worker).
   */
  addressFor?: (node: FakeNode, worker: number) => FakeWorkerAddress;
  /** The clock (ms since epoch). Default Date.now. */
  now?: () => number;
}

type Handler = (request: Record<string, unknown>) => unknown;

export class FakeTpuApi {
  /** Calls per method, counted when they arrive (before any fault or validation). */
  readonly calls = Object.fromEntries(RPC_METHODS.map((m) => [m, 0])) as Record<RpcMethod, number>;
  /** Every request as received, in order. */
  readonly requests: Array<{ method: RpcMethod; request: unknown }> = [];
  createDelayMs: number;
  deleteDelayMs: number;
  queueDelayMs: number;
  /** The most items a List call returns per page, whatever pageSize asks (the real API caps it too). */
  maxPageSize = Number.POSITIVE_INFINITY;

  private readonly nodes = new Map<string, FakeNode>();
  private readonly queued = new Map<string, FakeQueuedResource>();
  private readonly operations = new Map<string, FakeOperation>();
  private readonly stockoutZones = new Set<string>();
  private readonly quotaZones = new Set<string>();
  private deleteFailures: Array<{ code: grpc.status; message: string }> = [];
  private readonly callFailures = new Map<RpcMethod, Array<{ code: grpc.status; message: string }>>();
  private hostKeysWithheld = false;
  private opCounter = 0;
  private nodeCounter = 0;
  private readonly nodeIndex = new Map<string, number>();
  private readonly addressFor: (node: FakeNode, worker: number) => FakeWorkerAddress;
  private readonly now: () => number;
  private server: grpc.Server | undefined;
  port = 0;

  constructor(options: FakeTpuOptions = {}) {
    this.createDelayMs = options.createDelayMs ?? 50;
    this.deleteDelayMs = options.deleteDelayMs ?? 0;
    this.queueDelayMs = options.queueDelayMs ?? 0;
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
      CreateQueuedResource: this.unary('CreateQueuedResource', (r) => this.createQueuedResource(r)),
      GetQueuedResource: this.unary('GetQueuedResource', (r) => this.queuedMessage(this.getQueued(String(r.name)))),
      ListQueuedResources: this.unary('ListQueuedResources', (r) => this.listQueuedResources(r)),
      DeleteQueuedResource: this.unary('DeleteQueuedResource', (r) => this.deleteQueuedResource(r)),
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

  /**
   * No capacity in this zone: a direct CreateNode is accepted, then its operation fails with code 8;
   * a queued resource stays WAITING_FOR_RESOURCES (until its valid-until time, then FAILED).
   * Turning it off lets waiting queued resources provision.
   */
  stockout(zone: string, on = true): void {
    if (on) this.stockoutZones.add(zone);
    else this.stockoutZones.delete(zone);
  }

  /** CreateNode / CreateQueuedResource in this zone fails at once with code 8 and the quota message. */
  quotaExceeded(zone: string, on = true): void {
    if (on) this.quotaZones.add(zone);
    else this.quotaZones.delete(zone);
  }

  /** The next `times` DeleteNode / DeleteQueuedResource calls fail (default INTERNAL). */
  failDeletes(times: number, code: grpc.status = grpc.status.INTERNAL, message = 'an internal error has occurred'): void {
    for (let i = 0; i < times; i++) this.deleteFailures.push({ code, message });
  }

  /** The next `times` calls of `method` fail before doing anything (default UNAVAILABLE: a transient error). */
  failNext(method: RpcMethod, times = 1, code: grpc.status = grpc.status.UNAVAILABLE, message = 'The service is currently unavailable.'): void {
    const queue = this.callFailures.get(method) ?? [];
    for (let i = 0; i < times; i++) queue.push({ code, message });
    this.callFailures.set(method, queue);
  }

  /**
   * The node becomes PREEMPTED at `atMs` (clock time; now when omitted) if it is READY then; a
   * queued resource's node also takes its resource to SUSPENDED, initiated by the SERVICE.
   */
  preemptAt(name: string, atMs: number = this.now()): void {
    this.getExisting(name).preemptAt = atMs;
    this.advance();
  }

  /** Maintenance: health UNHEALTHY_MAINTENANCE, and state TERMINATED when `terminate`. */
  maintenance(name: string, terminate = false): void {
    const node = this.getExisting(name);
    node.health = 'UNHEALTHY_MAINTENANCE';
    if (terminate) node.state = 'TERMINATED';
  }

  /** Sets a node's state as the service would (REPAIRING, STOPPED...). */
  setNodeState(name: string, state: NodeState): void {
    this.getExisting(name).state = state;
  }

  /** Removes a node at once, as if deleted by someone else (no operation). */
  removeNode(name: string): void {
    this.nodes.delete(name);
  }

  /** The queued resource FAILS now (its node, if any, is gone), with `error` as its failedData when given. */
  failQueuedResource(name: string, error?: { code: number; message: string }): void {
    const qr = this.getQueued(name);
    qr.state = 'FAILED';
    qr.error = error;
    this.nodes.delete(`${qr.nodeParent}/nodes/${qr.nodeId}`);
  }

  /** GetGuestAttributes answers without host keys (as before the guest agent has run). */
  withholdHostKeys(on = true): void {
    this.hostKeysWithheld = on;
  }

  /** A node that already exists (made by someone else, or an earlier try): CreateNode of it → ALREADY_EXISTS. */
  seedNode(
    parent: string,
    nodeId: string,
    acceleratorType: string,
    state: NodeState = 'READY',
    extra: { labels?: Record<string, string>; metadata?: Record<string, string>; spot?: boolean } = {},
  ): FakeNode {
    const node = this.newNode(parent, nodeId, {
      acceleratorType,
      runtimeVersion: 'v2-alpha-tpuv6e',
      labels: extra.labels ?? {},
      metadata: extra.metadata ?? {},
      schedulingConfig: { spot: extra.spot === true },
      networkConfig: { enableExternalIps: true },
    });
    node.state = state;
    node.readyAt = this.now();
    if (state === 'READY') node.health = 'HEALTHY';
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

  queuedResource(name: string): FakeQueuedResource | undefined {
    this.advance();
    return this.queued.get(name);
  }

  allQueuedResources(): FakeQueuedResource[] {
    this.advance();
    return [...this.queued.values()];
  }

  totalCalls(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  // ---- the clock ---------------------------------------------------------------------

  private advance(): void {
    const now = this.now();
    for (const op of this.operations.values()) {
      if (op.outcome !== undefined || now < op.doneAt) continue;
      if (op.kind === 'queuedResource') this.completeQueuedOperation(op);
      else this.completeNodeOperation(op);
    }
    for (const qr of this.queued.values()) this.advanceQueued(qr, now);
    for (const node of this.nodes.values()) {
      if (node.queuedResource !== undefined && node.state === 'CREATING' && now >= node.readyAt) this.becomeReady(node);
      if (node.preemptAt !== undefined && now >= node.preemptAt && node.state === 'READY') {
        node.state = 'PREEMPTED';
        const qr = node.queuedResource === undefined ? undefined : this.queued.get(node.queuedResource);
        if (qr !== undefined && qr.state !== 'DELETING') {
          qr.state = 'SUSPENDED';
          qr.initiator = 'SERVICE';
        }
      }
    }
    // a provisioning resource whose node became READY above is ACTIVE now, not on the next call.
    for (const qr of this.queued.values()) this.advanceQueued(qr, now);
  }

  private completeNodeOperation(op: FakeOperation): void {
    const node = this.nodes.get(op.target);
    if (op.verb === 'create') {
      if (node === undefined) op.outcome = { error: { code: grpc.status.ABORTED, message: `node ${op.target} was deleted while being created` } };
      else if (node.createError !== undefined) {
        op.outcome = { error: node.createError };
        this.nodes.delete(node.name);
      } else {
        if (node.state === 'CREATING') this.becomeReady(node);
        op.outcome = { node };
      }
    } else {
      this.nodes.delete(op.target);
      op.outcome = { empty: true };
    }
  }

  private completeQueuedOperation(op: FakeOperation): void {
    const qr = this.queued.get(op.target);
    if (op.verb === 'create') {
      op.outcome = qr === undefined ? { error: { code: grpc.status.ABORTED, message: `queued resource ${op.target} was deleted while being created` } } : { queuedResource: qr };
    } else {
      if (qr !== undefined) {
        this.queued.delete(qr.name);
        this.nodes.delete(`${qr.nodeParent}/nodes/${qr.nodeId}`);
      }
      op.outcome = { empty: true };
    }
  }

  private advanceQueued(qr: FakeQueuedResource, now: number): void {
    if (qr.state === 'ACCEPTED' && now > qr.createdAt) qr.state = 'WAITING_FOR_RESOURCES';
    if (qr.state === 'ACCEPTED' || qr.state === 'WAITING_FOR_RESOURCES') {
      const capacityInTime = qr.validUntil === undefined || qr.capacityAt < qr.validUntil;
      if (now >= qr.capacityAt && capacityInTime && !this.stockoutZones.has(qr.zone)) {
        const node = this.newNode(qr.nodeParent, qr.nodeId, qr.nodeSpec);
        node.spot = qr.spot;
        node.queuedResource = qr.name;
        node.readyAt = now + this.createDelayMs;
        this.nodes.set(node.name, node);
        qr.state = 'PROVISIONING';
      } else if (qr.validUntil !== undefined && now >= qr.validUntil) {
        // the timing constraint expired without capacity: FAILED, no error data (as the proto describes).
        qr.state = 'FAILED';
      }
    }
    if (qr.state === 'PROVISIONING' && this.nodes.get(`${qr.nodeParent}/nodes/${qr.nodeId}`)?.state === 'READY') qr.state = 'ACTIVE';
  }

  private becomeReady(node: FakeNode): void {
    node.state = 'READY';
    node.health = 'HEALTHY';
    this.materializeWorkers(node);
  }

  // ---- handlers ----------------------------------------------------------------------

  private unary(method: RpcMethod, handle: Handler): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
    return (call, callback) => {
      this.calls[method]++;
      this.requests.push({ method, request: call.request });
      try {
        const injected = this.callFailures.get(method)?.shift();
        if (injected !== undefined) throw new RpcError(injected.code, injected.message);
        this.advance();
        callback(null, handle(call.request));
      } catch (error) {
        if (error instanceof RpcError) callback({ code: error.code, details: error.message });
        else callback({ code: grpc.status.INTERNAL, details: `fake: ${String(error)}` });
      }
    };
  }

  /** Checks a create's parent, id and node spec; returns the zone. */
  private checkCreate(parent: string, id: string, spec: Record<string, unknown>, what: string): string {
    const match = PARENT.exec(parent);
    if (match === null || match[2] === '-') throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid parent "${parent}"`);
    if (!RESOURCE_ID.test(id)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid ${what} id "${id}"`);
    const acceleratorType = String(spec.acceleratorType ?? '');
    if (fakeWorkerCount(acceleratorType) === undefined) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `CloudTpu received an invalid AcceleratorType "${acceleratorType}"`);
    }
    if (!spec.runtimeVersion) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'runtime_version is required');
    return match[2]!;
  }

  private createNode(request: Record<string, unknown>): unknown {
    const parent = String(request.parent ?? '');
    const nodeId = String(request.nodeId ?? '');
    const spec = (request.node ?? {}) as Record<string, unknown>;
    const zone = this.checkCreate(parent, nodeId, spec, 'node');
    const name = `${parent}/nodes/${nodeId}`;
    if (this.nodes.has(name)) throw new RpcError(grpc.status.ALREADY_EXISTS, `Resource '${name}' already exists`);
    if (this.quotaZones.has(zone)) throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, quotaMessage(zone));

    const node = this.newNode(parent, nodeId, spec);
    if (this.stockoutZones.has(zone)) node.createError = { code: grpc.status.RESOURCE_EXHAUSTED, message: stockoutMessage(zone) };
    this.nodes.set(name, node);
    const op = this.newOperation('create', 'node', name, parent, this.createDelayMs);
    return this.operationMessage(op.name);
  }

  private createQueuedResource(request: Record<string, unknown>): unknown {
    const parent = String(request.parent ?? '');
    const id = String(request.queuedResourceId ?? '');
    const requestId = String(request.requestId ?? '');
    const body = (request.queuedResource ?? {}) as Record<string, unknown>;
    const specs = (((body.tpu ?? {}) as Record<string, unknown>).nodeSpec ?? []) as Array<Record<string, unknown>>;
    if (specs.length !== 1) throw new RpcError(grpc.status.INVALID_ARGUMENT, `the fake supports exactly one tpu.nodeSpec, got ${specs.length}`);
    const nodeSpec = specs[0]!;
    const node = (nodeSpec.node ?? {}) as Record<string, unknown>;
    const zone = this.checkCreate(parent, id, node, 'queued resource');
    if (String(nodeSpec.parent ?? '') !== parent) throw new RpcError(grpc.status.INVALID_ARGUMENT, `nodeSpec.parent "${String(nodeSpec.parent)}" is not the request's parent`);
    const nodeId = String(nodeSpec.nodeId ?? '');
    if (!RESOURCE_ID.test(nodeId)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid node id "${nodeId}"`);
    const name = `${parent}/queuedResources/${id}`;
    const existing = this.queued.get(name);
    if (existing !== undefined) {
      // idempotency: the same request again gets the first answer.
      if (requestId !== '' && existing.requestId === requestId) return this.operationMessage(existing.createOperation);
      throw new RpcError(grpc.status.ALREADY_EXISTS, `Resource '${name}' already exists`);
    }
    if (this.quotaZones.has(zone)) throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, quotaMessage(zone));

    const now = this.now();
    const policy = (body.queueingPolicy ?? {}) as Record<string, unknown>;
    const validFor = durationMs(policy.validUntilDuration);
    const validUntilTime = durationMs(policy.validUntilTime);
    const op = this.newOperation('create', 'queuedResource', name, parent, 0);
    const [, project] = PARENT.exec(parent) ?? [];
    const qr: FakeQueuedResource = {
      name,
      project: project ?? '',
      zone,
      queuedResourceId: id,
      nodeParent: parent,
      nodeId,
      nodeSpec: node,
      spot: body.spot !== undefined && body.spot !== null,
      guaranteed: body.guaranteed !== undefined && body.guaranteed !== null,
      requestId,
      createdAt: now,
      capacityAt: now + this.queueDelayMs,
      ...(validFor !== undefined ? { validUntil: now + validFor } : validUntilTime !== undefined ? { validUntil: validUntilTime } : {}),
      state: 'ACCEPTED',
      createOperation: op.name,
    };
    this.queued.set(name, qr);
    this.advance();
    return this.operationMessage(op.name);
  }

  private deleteNode(request: Record<string, unknown>): unknown {
    const node = this.getExisting(String(request.name ?? ''));
    const failure = this.deleteFailures.shift();
    if (failure !== undefined) throw new RpcError(failure.code, failure.message);
    node.state = 'DELETING';
    const parent = node.name.replace(/\/nodes\/[^/]+$/, '');
    const op = this.newOperation('delete', 'node', node.name, parent, this.deleteDelayMs);
    this.advance();
    return this.operationMessage(op.name);
  }

  private deleteQueuedResource(request: Record<string, unknown>): unknown {
    const qr = this.getQueued(String(request.name ?? ''));
    const failure = this.deleteFailures.shift();
    if (failure !== undefined) throw new RpcError(failure.code, failure.message);
    const node = this.nodes.get(`${qr.nodeParent}/nodes/${qr.nodeId}`);
    if (request.force !== true && node !== undefined && !['ACCEPTED', 'FAILED', 'SUSPENDED'].includes(qr.state)) {
      throw new RpcError(grpc.status.FAILED_PRECONDITION, `Queued resource '${qr.name}' has nodes in state ${node.state}; delete them first or use force`);
    }
    qr.state = 'DELETING';
    if (node !== undefined) node.state = 'DELETING';
    const op = this.newOperation('delete', 'queuedResource', qr.name, qr.nodeParent, this.deleteDelayMs);
    this.advance();
    return this.operationMessage(op.name);
  }

  private listNodes(request: Record<string, unknown>): unknown {
    const [project, zone] = this.listParent(request);
    const all = [...this.nodes.values()].filter((n) => n.project === project && (zone === '-' || n.zone === zone)).sort((a, b) => a.name.localeCompare(b.name));
    const { items, next } = page(all, Number(request.pageSize ?? 0), String(request.pageToken ?? ''), this.maxPageSize);
    return { nodes: items.map((n) => this.nodeMessage(n)), nextPageToken: next, unreachable: [] };
  }

  private listQueuedResources(request: Record<string, unknown>): unknown {
    const [project, zone] = this.listParent(request);
    const all = [...this.queued.values()].filter((q) => q.project === project && (zone === '-' || q.zone === zone)).sort((a, b) => a.name.localeCompare(b.name));
    const { items, next } = page(all, Number(request.pageSize ?? 0), String(request.pageToken ?? ''), this.maxPageSize);
    return { queuedResources: items.map((q) => this.queuedMessage(q)), nextPageToken: next, unreachable: [] };
  }

  private listParent(request: Record<string, unknown>): [string, string] {
    const parent = String(request.parent ?? '');
    const match = PARENT.exec(parent);
    if (match === null) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid parent "${parent}"`);
    return [match[1]!, match[2]!];
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

  private getQueued(name: string): FakeQueuedResource {
    if (!QR_NAME.test(name)) throw new RpcError(grpc.status.INVALID_ARGUMENT, `invalid queued resource name "${name}"`);
    const qr = this.queued.get(name);
    if (qr === undefined) throw new RpcError(grpc.status.NOT_FOUND, `Resource '${name}' was not found`);
    return qr;
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
      ...(typeof (spec.serviceAccount as { email?: unknown } | undefined)?.email === 'string' && (spec.serviceAccount as { email: string }).email !== ''
        ? { serviceAccount: (spec.serviceAccount as { email: string }).email }
        : {}),
      createdAt: now,
      readyAt: now + this.createDelayMs,
      workers: [],
    };
  }

  private materializeWorkers(node: FakeNode): void {
    if (node.workers.length > 0) return;
    const count = fakeWorkerCount(node.acceleratorType) ?? 1;
    node.workers = Array.from({ length: count }, (_v, i) => {
      const { hostKeys, ...address } = this.addressFor(node, i);
      return { ...address, hostKeys: hostKeys ?? [fakeHostKey(node.name, i)] };
    });
  }

  private newOperation(verb: 'create' | 'delete', kind: 'node' | 'queuedResource', target: string, parent: string, delayMs: number): FakeOperation {
    const now = this.now();
    const op: FakeOperation = { name: `${parent}/operations/operation-${now}-${++this.opCounter}`, verb, kind, target, createdAt: now, doneAt: now + delayMs };
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
        ? node.workers.map((w) => ({ ipAddress: w.ipAddress, port: w.port ?? 8470, ...(w.externalIp !== undefined ? { accessConfig: { externalIp: w.externalIp } } : {}) }))
        : [],
      createTime: timestamp(node.createdAt),
      id: String(this.nodeIndex.get(node.name) ?? 0),
      apiVersion: 'V2',
      ...(node.queuedResource !== undefined ? { queuedResource: node.queuedResource } : {}),
    };
  }

  private queuedMessage(qr: FakeQueuedResource): Record<string, unknown> {
    const state: Record<string, unknown> = { state: qr.state };
    if (qr.initiator !== undefined) state.stateInitiator = qr.initiator;
    if (qr.state === 'FAILED') state.failedData = qr.error === undefined ? {} : { error: { code: qr.error.code, message: qr.error.message, details: [] } };
    return {
      name: qr.name,
      createTime: timestamp(qr.createdAt),
      tpu: { nodeSpec: [{ parent: qr.nodeParent, nodeId: qr.nodeId, node: qr.nodeSpec }] },
      ...(qr.spot ? { spot: {} } : qr.guaranteed ? { guaranteed: {} } : {}),
      ...(qr.validUntil !== undefined ? { queueingPolicy: { validUntilTime: timestamp(qr.validUntil) } } : {}),
      state,
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
    const outcome = op.outcome;
    if (outcome?.error !== undefined) message.error = { code: outcome.error.code, message: outcome.error.message, details: [] };
    else if (outcome?.node !== undefined) {
      message.response = { typeUrl: 'type.googleapis.com/google.cloud.tpu.v2.Node', value: protos.encode('google.cloud.tpu.v2.Node', this.nodeMessage(outcome.node)) };
    } else if (outcome?.queuedResource !== undefined) {
      message.response = {
        typeUrl: 'type.googleapis.com/google.cloud.tpu.v2.QueuedResource',
        value: protos.encode('google.cloud.tpu.v2.QueuedResource', this.queuedMessage(outcome.queuedResource)),
      };
    } else if (outcome?.empty) message.response = { typeUrl: 'type.googleapis.com/google.protobuf.Empty', value: Buffer.alloc(0) };
    return message;
  }
}
