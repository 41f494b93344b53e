/**
 * A local fake of the Compute Engine v1 REST API (the subset the compute-engine provider uses),
 * for the real `@google-cloud/compute` client over its REST transport, without credentials:
 *
 *   new InstancesClient(ComputeEngineComputeProvider.fakeClientOptions(fake.port))
 *   // = { apiEndpoint: '127.0.0.1', port, protocol: 'http', auth: new GoogleAuth({ authClient: new PassThroughClient() }) }
 *
 * Served: instances insert / get / delete / list / aggregatedList / getGuestAttributes,
 * zoneOperations get / wait / list, with list `filter` (filter.ts) and pageToken/maxResults paging.
 * Instances live in memory per project/zone. Insert returns a zone operation that is DONE after
 * `createDelayMs` (the instance is PROVISIONING until then, STAGING for `bootDelayMs`, then
 * RUNNING). State advances lazily on every request from the clock: no timers to leak. `wait`
 * answers at once with the operation as it is (the API may return before DONE; callers loop).
 *
 * Faults are set on the object: stockout per zone (the operation ends with
 * ZONE_RESOURCE_POOL_EXHAUSTED), quota per zone or region (QUOTA_EXCEEDED in the operation, or a
 * 403 at once), machine types a zone does not offer (400), slow creation and deletion (a second
 * delete meanwhile → 400 resourceNotReady), spot preemption at a
 * time (GCE's way: a `compute.instances.preempted` system operation, the VM TERMINATED or
 * deleted per its instanceTerminationAction), host maintenance / host errors / repairs, failing
 * calls, pre-existing instances (insert → 409 alreadyExists), withheld host keys. Every call is
 * counted (`calls`) and logged (`requests`) before any fault or validation.
 *
 * GPUs (gpus.ts): a2/a3/g2 types exist only in zones that offer their GPU, N1 guestAccelerators
 * are checked (type offered in the zone, count, vCPUs), a GPU VM must terminate on host
 * maintenance, A3 needs gVNIC, A3/G2 no pd-standard. Which zone offers which GPU:
 * DEFAULT_ZONE_GPUS, or `zoneGpus`, changed at run time with offerGpu(zone, type, on). A GPU
 * stockout: stockoutOf(zone, machineType or GPU type) fails the create operation of the matching
 * VMs only (ZONE_RESOURCE_POOL_EXHAUSTED, with details of attached GPUs).
 *
 * Guest attributes: the host keys under `hostkeys/<type>` and, when `addressFor` gives a VM a
 * port (tests map VMs onto local sshd), that port under `recogdrive/ssh-port` (what a worker with
 * RECOGDRIVE_CLOUD_SSH_PORT_FROM_ENDPOINT=true reads; real VMs have no such attribute).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FilterSyntaxError, parseFilter } from './filter.ts';
import { checkGpuHardware, checkGpuScheduling, checkGuestAccelerators, DEFAULT_ZONE_GPUS, FAKE_GPU_MACHINES, type FakeGpus } from './gpus.ts';
import { HttpError, alreadyExists, internalError, invalidField, notFound, notReady, quotaHttpError, quotaOperationFailure, regionOf, stockoutOperationFailure, type HttpFailure } from './messages.ts';
import { API, fakeHostKey, instanceJson, instanceKey as key, operationJson, type FakeInstance, type FakeOperation, type InstanceStatus, type SystemEvent } from './resources.ts';
import { NAME, checkDisks, checkLabels, checkMachineType, checkMetadata, checkScheduling, defaultOffers } from './validate.ts';

export type { FakeInstance, InstanceStatus, SystemEvent } from './resources.ts';
export { defaultOffers } from './validate.ts';
export { DEFAULT_ZONE_GPUS, FAKE_GPU_MACHINES } from './gpus.ts';

/** Addresses of a new VM (and, for tests, where its SSH really is). */
export interface FakeAddress {
  ipAddress?: string;
  natIP?: string;
  /** Where the VM's SSH listens; published as the guest attribute recogdrive/ssh-port. */
  port?: number;
  hostKeys?: string[];
}

export interface FakeComputeEngineOptions {
  /** Insert → operation DONE. Default 50 ms. */
  createDelayMs?: number;
  /** Operation DONE → RUNNING (STAGING meanwhile). Default 0. */
  bootDelayMs?: number;
  /** Delete → operation DONE (and the VM gone). Default 0. */
  deleteDelayMs?: number;
  /** Default: 10.128.<n>.2 internal, 34.<n>.0.2 external when asked for, a derived ssh-ed25519 key. */
  addressFor?: (vm: FakeInstance, index: number) => FakeAddress;
  /** Host key guest attributes: the base64 part only (what the guest agent writes, default) or "type base64". */
  hostKeyValue?: 'base64' | 'type base64';
  /** Machine types offered (default: a well-formed type of a known family; ct6e only 1t/4t/8t; GPU types in their sizes). */
  offers?: (zone: string, machineType: string) => boolean;
  /** GPU types a zone offers (accelerator types; a2/a3/g2 types exist only where their GPU is). Default DEFAULT_ZONE_GPUS. */
  zoneGpus?: (zone: string) => readonly string[];
  /** The clock (ms since epoch). Default Date.now. */
  now?: () => number;
}

export type FakeMethod =
  | 'instances.insert'
  | 'instances.get'
  | 'instances.delete'
  | 'instances.list'
  | 'instances.aggregatedList'
  | 'instances.getGuestAttributes'
  | 'zoneOperations.get'
  | 'zoneOperations.wait'
  | 'zoneOperations.list'
  | 'unknown';

const PROJECT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const ZONE = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;

export class FakeComputeEngine {
  /** Calls per method, counted when they arrive (before any fault or validation). */
  readonly calls: Record<FakeMethod, number> = {
    'instances.insert': 0,
    'instances.get': 0,
    'instances.delete': 0,
    'instances.list': 0,
    'instances.aggregatedList': 0,
    'instances.getGuestAttributes': 0,
    'zoneOperations.get': 0,
    'zoneOperations.wait': 0,
    'zoneOperations.list': 0,
    unknown: 0,
  };
  /** Every request as received, in order (body parsed when JSON). */
  readonly requests: Array<{ method: FakeMethod; httpMethod: string; path: string; query: Record<string, string>; body?: unknown }> = [];
  createDelayMs: number;
  bootDelayMs: number;
  deleteDelayMs: number;
  port = 0;

  private readonly instances = new Map<string, FakeInstance>();
  private readonly operations = new Map<string, FakeOperation>();
  private readonly stockoutZones = new Set<string>();
  private readonly quotas = new Map<string, { metric: string; limit: number; sync: boolean }>();
  private readonly unoffered = new Set<string>();
  /** zone/type → offered (true) or withdrawn (false), over zoneGpus. */
  private readonly gpuOffers = new Map<string, boolean>();
  /** zone/(machine type or GPU type) stocked out. */
  private readonly gpuStockouts = new Set<string>();
  private readonly failures = new Map<FakeMethod, HttpFailure[]>();
  private hostKeysWithheld = false;
  private counter = 0;
  private readonly options: FakeComputeEngineOptions;
  private readonly now: () => number;
  private server: http.Server | undefined;

  constructor(options: FakeComputeEngineOptions = {}) {
    this.options = options;
    this.createDelayMs = options.createDelayMs ?? 50;
    this.bootDelayMs = options.bootDelayMs ?? 0;
    this.deleteDelayMs = options.deleteDelayMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Starts on a free loopback port; returns it. */
  async start(): Promise<number> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    // The client keeps connections alive: close them, or close() waits for them.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- fault injection and inspection ------------------------------------------------

  /** Inserts in this zone are accepted; their operation ends with ZONE_RESOURCE_POOL_EXHAUSTED and no VM is left. */
  stockout(zone: string, on = true): void {
    if (on) this.stockoutZones.add(zone);
    else this.stockoutZones.delete(zone);
  }

  /**
   * Quota used up in a zone or a region (us-east5): the create operation ends with
   * QUOTA_EXCEEDED, or with `sync` the insert itself is refused with 403.
   */
  quotaExceeded(scope: string, on = true, options: { metric?: string; limit?: number; sync?: boolean } = {}): void {
    if (on) this.quotas.set(scope, { metric: options.metric ?? 'CPUS', limit: options.limit ?? 24, sync: options.sync === true });
    else this.quotas.delete(scope);
  }

  /** The zone does not offer this machine type: insert → 400 "Machine type with name … does not exist in zone …". */
  withdrawMachineType(zone: string, machineType: string, on = true): void {
    if (on) this.unoffered.add(`${zone}/${machineType}`);
    else this.unoffered.delete(`${zone}/${machineType}`);
  }

  /**
   * The zone has no capacity for this machine type or GPU type (nvidia-tesla-t4, a2-highgpu-8g...):
   * inserts of matching VMs are accepted and their operation ends with ZONE_RESOURCE_POOL_EXHAUSTED
   * (…_WITH_DETAILS naming the accelerators of an N1 VM); other VMs in the zone are created.
   */
  stockoutOf(zone: string, machineOrGpuType: string, on = true): void {
    if (on) this.gpuStockouts.add(`${zone}/${machineOrGpuType}`);
    else this.gpuStockouts.delete(`${zone}/${machineOrGpuType}`);
  }

  /** Offer (or withdraw, on=false) a GPU type in a zone, over the catalogue. */
  offerGpu(zone: string, gpuType: string, on = true): void {
    this.gpuOffers.set(`${zone}/${gpuType}`, on);
  }

  /** Whether the zone offers this GPU type now. */
  zoneOffersGpu(zone: string, gpuType: string): boolean {
    const override = this.gpuOffers.get(`${zone}/${gpuType}`);
    if (override !== undefined) return override;
    return (this.options.zoneGpus?.(zone) ?? DEFAULT_ZONE_GPUS[zone] ?? []).includes(gpuType);
  }

  /** The next `times` calls of `method` fail with this HTTP error (default 500 internal error). */
  failNext(method: FakeMethod, times: number, failure?: HttpFailure): void {
    const queue = this.failures.get(method) ?? [];
    const error = failure ?? { status: internalError().status, reason: internalError().reason, message: internalError().message };
    for (let i = 0; i < times; i++) queue.push(error);
    this.failures.set(method, queue);
  }

  /** The next `times` instances.delete calls fail (default 500 internal error). */
  failDeletes(times: number, failure?: HttpFailure): void {
    this.failNext('instances.delete', times, failure);
  }

  /**
   * A spot VM is preempted at `atMs` (clock time; now when omitted) if it is RUNNING then: GCE
   * records a `compute.instances.preempted` system operation ("Instance was preempted.") and
   * the VM becomes TERMINATED (instanceTerminationAction STOP) or is deleted (DELETE).
   */
  preemptAt(instance: string, atMs: number = this.now()): void {
    const vm = this.find(instance);
    if (vm.scheduling.provisioningModel !== 'SPOT' && !vm.scheduling.preemptible) throw new Error(`${vm.name} is not a spot VM: GCE does not preempt it`);
    vm.preemptAt = atMs;
    this.advance();
  }

  /**
   * Host trouble, each with GCE's system operation: 'terminate' (terminateOnHostMaintenance,
   * TERMINATED), 'host-error' (hostError: TERMINATED, or restarted in place when automaticRestart
   * is on), 'repair' (REPAIRING, no operation).
   */
  maintenance(instance: string, kind: 'terminate' | 'host-error' | 'repair' = 'terminate'): void {
    this.advance();
    const vm = this.find(instance);
    const now = this.now();
    if (kind === 'repair') {
      vm.status = 'REPAIRING';
      return;
    }
    this.systemEvent(vm, kind === 'terminate' ? 'compute.instances.terminateOnHostMaintenance' : 'compute.instances.hostError', now);
    if (kind === 'host-error' && vm.scheduling.automaticRestart) {
      vm.lastStartAt = now;
      return;
    }
    this.stopVm(vm, now);
  }

  /** The guest agent has not published host keys: getGuestAttributes → 404. */
  withholdHostKeys(on = true): void {
    this.hostKeysWithheld = on;
  }

  /** A VM that already exists (someone else's, or an earlier try's): insert of its name → 409. */
  seedInstance(spec: {
    project: string;
    zone: string;
    name: string;
    machineType?: string;
    status?: InstanceStatus;
    labels?: Record<string, string>;
    metadata?: Record<string, string>;
    spot?: boolean;
    /** GCE's default is true for a standard VM (a host error restarts it in place). */
    automaticRestart?: boolean;
    createdAt?: number;
  }): FakeInstance {
    const now = this.now();
    const vm = this.newInstance(spec.project, spec.zone, spec.name, {
      machineType: `zones/${spec.zone}/machineTypes/${spec.machineType ?? 'n2-standard-8'}`,
      labels: spec.labels ?? {},
      metadata: { items: Object.entries(spec.metadata ?? {}).map(([k, v]) => ({ key: k, value: v })) },
      scheduling: {
        ...(spec.spot === true ? { provisioningModel: 'SPOT', instanceTerminationAction: 'STOP' } : {}),
        ...(spec.automaticRestart !== undefined ? { automaticRestart: spec.automaticRestart } : {}),
      },
      disks: [{ boot: true, initializeParams: { sourceImage: 'projects/cos-cloud/global/images/family/cos-stable', diskSizeGb: '50' } }],
      networkInterfaces: [{ accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }] }],
    });
    vm.createdAt = spec.createdAt ?? now;
    vm.createdDoneAt = now;
    vm.runningAt = now;
    vm.status = spec.status ?? 'RUNNING';
    if (vm.status === 'RUNNING') vm.lastStartAt = now;
    if (vm.status === 'TERMINATED' || vm.status === 'STOPPED') delete vm.natIP;
    this.instances.set(key(vm.project, vm.zone, vm.name), vm);
    return vm;
  }

  /** A VM by name (unique across projects and zones) or by `projects/P/zones/Z/instances/N`. */
  instance(instance: string): FakeInstance | undefined {
    this.advance();
    try {
      return this.find(instance);
    } catch {
      return undefined;
    }
  }

  allInstances(): FakeInstance[] {
    this.advance();
    return [...this.instances.values()];
  }

  /** The operations GCE would list for a zone (inserts, deletes, system events). */
  operationsOf(instance: string): Array<{ name: string; operationType: string; status: string; user: string }> {
    this.advance();
    const [project, zone, name] = this.parseInstanceRef(instance);
    return [...this.operations.values()]
      .filter((op) => op.targetName === name && (project === undefined || op.project === project) && (zone === undefined || op.zone === zone))
      .map((op) => ({ name: op.name, operationType: op.operationType, status: op.completed ? 'DONE' : 'RUNNING', user: op.user }));
  }

  /** Where the VM's SSH listens: addressFor's port on its external (else internal) address. */
  sshEndpointOf(instance: string): { host: string; port: number } {
    const vm = this.find(instance);
    return { host: vm.natIP ?? vm.ipAddress, port: vm.sshPort ?? 22 };
  }

  totalCalls(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  // ---- the clock ---------------------------------------------------------------------

  private advance(): void {
    const now = this.now();
    for (const op of this.operations.values()) {
      if (op.completed || now < op.doneAt) continue;
      op.completed = true;
      const k = key(op.project, op.zone, op.targetName);
      const vm = this.instances.get(k);
      if (vm === undefined || vm.id !== op.targetId) continue;
      if (op.operationType === 'insert' && vm.createFailure !== undefined) {
        // A failed create leaves no VM behind.
        op.failure = vm.createFailure;
        this.instances.delete(k);
      } else if (op.operationType === 'delete') {
        this.instances.delete(k);
      }
    }
    for (const vm of this.instances.values()) {
      if (vm.status === 'PROVISIONING' && now >= vm.createdDoneAt && vm.createFailure === undefined) vm.status = 'STAGING';
      if (vm.status === 'STAGING' && now >= vm.runningAt) {
        vm.status = 'RUNNING';
        vm.lastStartAt = vm.runningAt;
      }
      if (vm.preemptAt !== undefined && now >= vm.preemptAt && vm.status === 'RUNNING') {
        const at = vm.preemptAt;
        vm.preemptAt = undefined;
        this.systemEvent(vm, 'compute.instances.preempted', at, 'Instance was preempted.');
        if (vm.scheduling.instanceTerminationAction === 'DELETE') {
          const op = this.newOperation(vm, 'delete', at, 0, 'system');
          op.completed = true;
          this.instances.delete(key(vm.project, vm.zone, vm.name));
        } else {
          this.stopVm(vm, at);
        }
      }
    }
  }

  private stopVm(vm: FakeInstance, at: number): void {
    vm.status = 'TERMINATED';
    vm.lastStopAt = at;
    delete vm.natIP; // an ephemeral external address goes with the stop
  }

  private systemEvent(vm: FakeInstance, type: SystemEvent, at: number, statusMessage?: string): void {
    const op = this.newOperation(vm, type, at, 0, 'system');
    op.completed = true;
    if (statusMessage !== undefined) op.statusMessage = statusMessage;
  }

  // ---- HTTP --------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const httpMethod = req.method ?? 'GET';
    const route = this.route(httpMethod, url.pathname);
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    this.calls[route.method]++;
    this.requests.push({ method: route.method, httpMethod, path: url.pathname, query, ...(body === undefined ? {} : { body }) });
    let status = 200;
    let payload: unknown;
    try {
      const failure = this.failures.get(route.method)?.shift();
      if (failure !== undefined) throw new HttpError(failure);
      this.advance();
      payload = route.handle(query, body);
    } catch (error) {
      const httpError = error instanceof HttpError ? error : new HttpError({ status: 500, reason: 'backendError', message: `fake: ${String(error)}` });
      status = httpError.status;
      payload = httpError.body();
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(payload));
  }

  private route(httpMethod: string, path: string): { method: FakeMethod; handle: (query: Record<string, string>, body: unknown) => unknown } {
    const p = path.replace(/^\/compute\/v1\//, '');
    const parts = p.split('/').map(decodeURIComponent);
    const [projects, project = '', zonesOrAggregated, zone = '', collection, name, verb] = parts;
    const unknown = { method: 'unknown' as const, handle: () => { throw new HttpError({ status: 404, reason: 'notFound', message: `fake: no ${httpMethod} ${path}` }); } };
    if (projects !== 'projects') return unknown;
    if (zonesOrAggregated === 'aggregated' && zone === 'instances' && parts.length === 4 && httpMethod === 'GET') {
      return { method: 'instances.aggregatedList', handle: (q) => this.aggregatedList(project, q) };
    }
    if (zonesOrAggregated !== 'zones') return unknown;
    const checkScope = (): void => {
      if (!PROJECT.test(project)) throw notFound(`projects/${project}`);
      if (!ZONE.test(zone)) throw new HttpError({ status: 400, reason: 'invalid', message: `Invalid value '${zone}'. Values must match the following regular expression: '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?'` });
    };
    const scoped = (method: FakeMethod, handle: (query: Record<string, string>, body: unknown) => unknown) => ({
      method,
      handle: (query: Record<string, string>, body: unknown) => {
        checkScope();
        return handle(query, body);
      },
    });
    if (collection === 'instances') {
      if (parts.length === 5 && httpMethod === 'POST') return scoped('instances.insert', (_q, b) => this.insert(project, zone, b));
      if (parts.length === 5 && httpMethod === 'GET') return scoped('instances.list', (q) => this.list(project, zone, q));
      if (parts.length === 6 && httpMethod === 'GET') return scoped('instances.get', () => instanceJson(this.existing(project, zone, name!)));
      if (parts.length === 6 && httpMethod === 'DELETE') return scoped('instances.delete', () => this.delete(project, zone, name!));
      if (parts.length === 7 && verb === 'getGuestAttributes' && httpMethod === 'GET') return scoped('instances.getGuestAttributes', (q) => this.guestAttributes(project, zone, name!, q));
    }
    if (collection === 'operations') {
      if (parts.length === 5 && httpMethod === 'GET') return scoped('zoneOperations.list', (q) => this.listOperations(project, zone, q));
      if (parts.length === 6 && httpMethod === 'GET') return scoped('zoneOperations.get', () => operationJson(this.existingOperation(project, zone, name!)));
      if (parts.length === 7 && verb === 'wait' && httpMethod === 'POST') return scoped('zoneOperations.wait', () => operationJson(this.existingOperation(project, zone, name!)));
    }
    return unknown;
  }

  // ---- handlers ----------------------------------------------------------------------

  private insert(project: string, zone: string, body: unknown): unknown {
    const spec = (body ?? {}) as Record<string, unknown>;
    const name = String(spec.name ?? '');
    if (!NAME.test(name)) throw invalidField('resource.name', name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19})'");
    const offered = (z: string, type: string): boolean => {
      const builtIn = FAKE_GPU_MACHINES[type];
      return (this.options.offers ?? defaultOffers)(z, type) && !this.unoffered.has(`${z}/${type}`) && (builtIn === undefined || this.zoneOffersGpu(z, builtIn.type));
    };
    const machineType = checkMachineType(zone, String(spec.machineType ?? ''), offered);
    const gpus = checkGuestAccelerators(project, zone, machineType, spec.guestAccelerators, (z, type) => this.zoneOffersGpu(z, type));
    checkLabels(spec.labels);
    checkMetadata(spec.metadata);
    checkDisks(spec.disks);
    if (!Array.isArray(spec.networkInterfaces) || spec.networkInterfaces.length === 0) {
      throw invalidField('resource.networkInterfaces', '', 'At least one network interface is required.');
    }
    checkGpuHardware(machineType, zone, spec.disks, spec.networkInterfaces);
    checkScheduling(spec.scheduling, machineType);
    checkGpuScheduling(spec.scheduling, gpus);
    if (this.instances.has(key(project, zone, name))) throw alreadyExists(key(project, zone, name));
    const quota = this.quotas.get(zone) ?? this.quotas.get(regionOf(zone));
    const quotaScope = this.quotas.has(zone) ? zone : regionOf(zone);
    if (quota?.sync === true) throw quotaHttpError(quota.metric, quota.limit, quotaScope);

    const vm = this.newInstance(project, zone, name, spec);
    if (quota !== undefined) vm.createFailure = quotaOperationFailure(quota.metric, quota.limit, quotaScope);
    else if (this.stockoutZones.has(zone) || this.stockedOut(zone, machineType, gpus)) {
      vm.createFailure = stockoutOperationFailure(project, zone, machineType, FAKE_GPU_MACHINES[machineType] === undefined ? gpus : undefined);
    }
    this.instances.set(key(project, zone, name), vm);
    const op = this.newOperation(vm, 'insert', this.now(), this.createDelayMs, 'recogdrive@fake.iam.gserviceaccount.com');
    return operationJson(op);
  }

  private stockedOut(zone: string, machineType: string, gpus: FakeGpus | undefined): boolean {
    return this.gpuStockouts.has(`${zone}/${machineType}`) || (gpus !== undefined && this.gpuStockouts.has(`${zone}/${gpus.type}`));
  }

  private delete(project: string, zone: string, name: string): unknown {
    const vm = this.existing(project, zone, name);
    const pending = [...this.operations.values()].some((op) => op.operationType === 'delete' && !op.completed && op.targetId === vm.id);
    if (pending) throw notReady(key(project, zone, name));
    vm.status = 'STOPPING';
    const op = this.newOperation(vm, 'delete', this.now(), this.deleteDelayMs, 'recogdrive@fake.iam.gserviceaccount.com');
    this.advance();
    return operationJson(op);
  }

  private list(project: string, zone: string, query: Record<string, string>): unknown {
    const matches = this.filtered(query.filter, [...this.instances.values()].filter((vm) => vm.project === project && vm.zone === zone).map((vm) => instanceJson(vm)));
    const { page, next } = this.paginate(matches, query);
    return {
      kind: 'compute#instanceList',
      id: `projects/${project}/zones/${zone}/instances`,
      ...(page.length > 0 ? { items: page } : {}),
      ...(next !== undefined ? { nextPageToken: next } : {}),
      selfLink: `${API}/projects/${project}/zones/${zone}/instances`,
    };
  }

  private aggregatedList(project: string, query: Record<string, string>): unknown {
    if (!PROJECT.test(project)) throw notFound(`projects/${project}`);
    const vms = [...this.instances.values()].filter((vm) => vm.project === project).sort((a, b) => a.zone.localeCompare(b.zone) || a.name.localeCompare(b.name));
    const matches = this.filtered(query.filter, vms.map((vm) => instanceJson(vm)));
    const { page, next } = this.paginate(matches, query, false);
    const items: Record<string, unknown> = {};
    for (const vm of page) {
      const scope = `zones/${String(vm.zone).split('/').pop()}`;
      const entry = (items[scope] ??= { instances: [] }) as { instances: unknown[] };
      entry.instances.push(vm);
    }
    return { kind: 'compute#instanceAggregatedList', id: `projects/${project}/aggregated/instances`, items, ...(next !== undefined ? { nextPageToken: next } : {}) };
  }

  private listOperations(project: string, zone: string, query: Record<string, string>): unknown {
    const ops = [...this.operations.values()].filter((op) => op.project === project && op.zone === zone).sort((a, b) => a.insertTime - b.insertTime || a.name.localeCompare(b.name));
    const matches = this.filtered(query.filter, ops.map((op) => operationJson(op)));
    const { page, next } = this.paginate(matches, query, false);
    return { kind: 'compute#operationList', id: `projects/${project}/zones/${zone}/operations`, ...(page.length > 0 ? { items: page } : {}), ...(next !== undefined ? { nextPageToken: next } : {}) };
  }

  private guestAttributes(project: string, zone: string, name: string, query: Record<string, string>): unknown {
    const vm = this.existing(project, zone, name);
    const queryPath = query.queryPath ?? '';
    const path = `${key(project, zone, name)}/guestAttributes/${queryPath}`;
    const withType = this.options.hostKeyValue === 'type base64';
    const published = [
      ...(this.hostKeysWithheld ? [] : vm.hostKeys.map((k) => k.trim().split(/\s+/)).map(([type, base64]) => ({ namespace: 'hostkeys', key: type!, value: withType ? `${type} ${base64}` : base64! }))),
      // Emulator only: where the VM's SSH really listens (a real VM has no such attribute).
      ...(vm.sshPort !== undefined ? [{ namespace: 'recogdrive', key: 'ssh-port', value: String(vm.sshPort) }] : []),
    ];
    // '' → everything; 'namespace/' → that namespace; 'namespace/key' → that key. Nothing there → 404.
    const items = published.filter((a) => queryPath === '' || `${a.namespace}/` === queryPath || `${a.namespace}/${a.key}` === queryPath);
    if (items.length === 0) throw notFound(path);
    return { kind: 'compute#guestAttributes', queryPath, queryValue: { items }, selfLink: `${API}/${key(project, zone, name)}/getGuestAttributes` };
  }

  // ---- model -------------------------------------------------------------------------

  private parseInstanceRef(instance: string): [string | undefined, string | undefined, string] {
    const match = /^projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/]+)$/.exec(instance);
    return match === null ? [undefined, undefined, instance] : [match[1], match[2], match[3]!];
  }

  private find(instance: string): FakeInstance {
    const [project, zone, name] = this.parseInstanceRef(instance);
    const found = [...this.instances.values()].filter((vm) => vm.name === name && (project === undefined || vm.project === project) && (zone === undefined || vm.zone === zone));
    if (found.length !== 1) throw new Error(found.length === 0 ? `fake: no instance ${instance}` : `fake: ${instance} is ambiguous, give projects/P/zones/Z/instances/N`);
    return found[0]!;
  }

  private existing(project: string, zone: string, name: string): FakeInstance {
    const vm = this.instances.get(key(project, zone, name));
    if (vm === undefined) throw notFound(key(project, zone, name));
    return vm;
  }

  private existingOperation(project: string, zone: string, name: string): FakeOperation {
    const op = this.operations.get(`${project}/${zone}/${name}`);
    if (op === undefined) throw notFound(`projects/${project}/zones/${zone}/operations/${name}`);
    return op;
  }

  private filtered(filter: string | undefined, resources: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
    try {
      const predicate = parseFilter(filter);
      return resources.filter(predicate);
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw invalidField('filter', filter ?? '', `Invalid list filter expression: ${error.message}.`);
      throw error;
    }
  }

  /** pageToken is opaque to callers (base64 of an offset); maxResults 1..500, default 500. */
  private paginate<T>(items: T[], query: Record<string, string>, sort = true): { page: T[]; next?: string } {
    const sorted = sort ? [...items].sort((a, b) => String((a as { name?: unknown }).name).localeCompare(String((b as { name?: unknown }).name))) : items;
    const max = query.maxResults === undefined ? 500 : Number(query.maxResults);
    if (!Number.isInteger(max) || max < 0 || max > 500) throw invalidField('maxResults', String(query.maxResults), 'Must be between 0 and 500.');
    const size = max === 0 ? 500 : max;
    let offset = 0;
    if (query.pageToken !== undefined && query.pageToken !== '') {
      offset = Number(Buffer.from(query.pageToken, 'base64url').toString('utf8').replace(/^offset:/, ''));
      if (!Number.isInteger(offset) || offset < 0) throw invalidField('pageToken', query.pageToken, 'Invalid page token.');
    }
    const page = sorted.slice(offset, offset + size);
    const nextOffset = offset + size;
    return nextOffset < sorted.length ? { page, next: Buffer.from(`offset:${nextOffset}`).toString('base64url') } : { page };
  }

  private newInstance(project: string, zone: string, name: string, spec: Record<string, unknown>): FakeInstance {
    const now = this.now();
    const n = ++this.counter;
    const scheduling = (spec.scheduling ?? {}) as Record<string, unknown>;
    const spot = scheduling.provisioningModel === 'SPOT';
    const preemptible = scheduling.preemptible === true;
    const disk = ((spec.disks as Array<Record<string, unknown>>).find((d) => d.boot === true)?.initializeParams ?? {}) as Record<string, unknown>;
    const nic = ((spec.networkInterfaces as Array<Record<string, unknown>>)[0] ?? {}) as Record<string, unknown>;
    const external = ((nic.accessConfigs ?? []) as Array<Record<string, unknown>>).some((a) => (a.type ?? 'ONE_TO_ONE_NAT') === 'ONE_TO_ONE_NAT');
    const metadataItems = ((spec.metadata ?? {}) as { items?: Array<{ key?: string; value?: string }> }).items ?? [];
    const machineType = String(spec.machineType ?? '').split('/').pop() ?? '';
    // insert has checked them; a seeded VM takes them as given.
    const attached = ((spec.guestAccelerators ?? []) as Array<{ acceleratorType?: string; acceleratorCount?: number }>).find((a) => Number(a.acceleratorCount ?? 0) > 0);
    const gpus = FAKE_GPU_MACHINES[machineType] ?? (attached === undefined ? undefined : { type: String(attached.acceleratorType ?? '').split('/').pop() ?? '', count: Number(attached.acceleratorCount) });
    const diskType = String(disk.diskType ?? '').split('/').pop() || 'pd-standard';
    const vm: FakeInstance = {
      project,
      zone,
      name,
      id: String(4_000_000_000_000_000_000n + BigInt(n) * 7919n),
      createdAt: now,
      status: 'PROVISIONING',
      machineType,
      description: String(spec.description ?? ''),
      labels: { ...((spec.labels ?? {}) as Record<string, string>) },
      metadata: Object.fromEntries(metadataItems.map((i) => [String(i.key), String(i.value ?? '')])),
      scheduling: {
        provisioningModel: spot ? 'SPOT' : 'STANDARD',
        automaticRestart: typeof scheduling.automaticRestart === 'boolean' ? scheduling.automaticRestart : !(spot || preemptible),
        onHostMaintenance: scheduling.onHostMaintenance === 'TERMINATE' || spot || preemptible ? 'TERMINATE' : 'MIGRATE',
        preemptible,
        ...(spot ? { instanceTerminationAction: scheduling.instanceTerminationAction === 'DELETE' ? 'DELETE' : 'STOP' } : {}),
      },
      sourceImage: String(disk.sourceImage ?? ''),
      bootDiskGb: Number(disk.diskSizeGb ?? 10),
      diskType,
      ...(gpus === undefined ? {} : { gpus: { type: gpus.type, count: gpus.count } }),
      network: String(nic.network ?? 'global/networks/default'),
      nicType: nic.nicType === 'GVNIC' ? 'GVNIC' : 'VIRTIO_NET',
      external,
      serviceAccounts: (spec.serviceAccounts ?? []) as unknown[],
      ipAddress: `10.128.${n % 250}.2`,
      hostKeys: [],
      createdDoneAt: now + this.createDelayMs,
      runningAt: now + this.createDelayMs + this.bootDelayMs,
    };
    const address = this.options.addressFor?.(vm, n) ?? {};
    vm.ipAddress = address.ipAddress ?? vm.ipAddress;
    if (external) vm.natIP = address.natIP ?? `34.${n % 250}.0.2`;
    if (address.port !== undefined) vm.sshPort = address.port;
    vm.hostKeys = address.hostKeys ?? [fakeHostKey(`${key(project, zone, name)}#${vm.id}`)];
    return vm;
  }

  private newOperation(vm: FakeInstance, operationType: FakeOperation['operationType'], at: number, delayMs: number, user: string): FakeOperation {
    const n = ++this.counter;
    const hex = createHash('sha256').update(`${vm.id}/${operationType}/${n}`).digest('hex');
    const op: FakeOperation = {
      name: operationType.startsWith('compute.') ? `systemevent-${at}-${hex.slice(0, 13)}` : `operation-${at}-${hex.slice(0, 13)}-${hex.slice(13, 21)}-${hex.slice(21, 29)}`,
      id: String(7_000_000_000_000_000_000n + BigInt(n)),
      project: vm.project,
      zone: vm.zone,
      operationType,
      targetName: vm.name,
      targetId: vm.id,
      user,
      insertTime: at,
      doneAt: at + delayMs,
      completed: false,
    };
    this.operations.set(`${op.project}/${op.zone}/${op.name}`, op);
    return op;
  }

}
