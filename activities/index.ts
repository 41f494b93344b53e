/**
 * The activities the workflows call. Each delegates to the backend named by its request
 * (compute provider, stage executor, artifact store); this module only adds Temporal's
 * context: heartbeats, cancellation, progress signals and typed failures.
 */
import { Context, getClient } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { FailureType } from '../pipeline/failures.ts';
import { isCloudBackend, type ComputeBackend } from '../pipeline/input.ts';
import { hostPathsOutsideRoots } from '../pipeline/host-roots.ts';
import { attemptLogName, bringUpLogName } from '../pipeline/naming.ts';
import type { Progress } from '../pipeline/progress.ts';
import { stageUpdateSignal } from '../workflows/messages.ts';
import { schemeOf, type ArtifactStore } from './artifacts/store.ts';
import { IncompleteListing, type ComputeProvider } from './compute/provider.ts';
import type { StageExecutor, StageLogs, WatchContext } from './execution/executor.ts';
import type {
  ComputeLease,
  ComputeRequest,
  BringUpRequest,
  BringUpResult,
  LaunchRequest,
  LaunchResult,
  LookupRequest,
  PreflightRequest,
  RecordArtifactRequest,
  RecordFailureRequest,
  RecordRunRequest,
  ReleaseResult,
  ResolveImagesRequest,
  VerifyProvidedRequest,
  StopRequest,
  VerifyReport,
  VerifyRequest,
  WatchRequest,
  WatchResult,
  WorkerEndpoint,
} from './types.ts';
import { verifyFromMarkers, verifyProvidedOutput } from './verify/index.ts';
import { nodeLossFailure, watchWithHealth } from './compute/health-watch.ts';
import { LineageStore, MalformedRecordError, MissingSourceError, UnknownRunError } from './lineage/lineage-store.ts';
import { pinnedDigest, treeDigest } from './images/tree-digest.ts';
import { DEFAULT_REGISTRY_ACCESS, resolveTag, type RegistryAccess } from './images/registry-access.ts';
import { ImageNotFound, RegistryAuthFailed, RegistryUnavailable } from './images/registry-client.ts';
import { InvalidRegistryCredentials } from './images/registry-credentials.ts';
import { markerFiles, type VerdictClaim } from '../pipeline/markers.ts';
import { markerLocationsToTry, markerReaders } from './artifacts/marker-readers.ts';
import { parseVerdictClaim } from './artifacts/markers.ts';
import type { PlanContext } from '../pipeline/plan.ts';
import { WorkflowNotFoundError } from '@temporalio/common';
import { BringUpFailed } from './bring-up/run.ts';
import { decideLeaks, runStateOf, workflowsToCheck, type DeleteOutcome, type LeaseRecord, type RunStateInfo } from '../pipeline/janitor.ts';

export interface ActivityDependencies {
  compute: Partial<Record<ComputeBackend, ComputeProvider>>;
  executors: Partial<Record<WorkerEndpoint['kind'], StageExecutor>>;
  artifactStores: readonly ArtifactStore[];
  /** What the local backend runs instead of an image (simulator, wrapper, pipeline code): its digest stands for the image's. */
  localImage: { base: string; dirs: readonly string[] };
  /** Google Cloud projects the cloud backends of this worker may create machines in. */
  cloudProjects?: readonly string[];
  /** Absolute folders of this host a run may read and write (RECOGDRIVE_ALLOWED_ROOTS; pipeline/host-roots.ts). None when absent. */
  allowedRoots?: readonly string[];
  /** How tags on cloud compute are resolved to digests; docker's defaults when absent. */
  registry?: RegistryAccess;
}

/** The digest of a tag from its registry: a missing image or refused credentials fail the run, an unreachable registry is retried. */
async function registryDigest(image: string, access: RegistryAccess): Promise<string> {
  try {
    return await resolveTag(image, access);
  } catch (error) {
    if (error instanceof ImageNotFound || error instanceof RegistryAuthFailed) {
      throw ApplicationFailure.create({ type: FailureType.InvalidPipelineInput, message: error.message, nonRetryable: true });
    }
    if (error instanceof InvalidRegistryCredentials) throw ApplicationFailure.create({ type: FailureType.BackendUnavailable, message: error.message, nonRetryable: true });
    if (error instanceof RegistryUnavailable) throw ApplicationFailure.create({ type: 'RegistryUnavailable', message: error.message, nonRetryable: false });
    throw error;
  }
}

const BACKEND_HINTS: Record<ComputeBackend, string> = {
  local: 'every worker has it',
  static: 'start the worker with RECOGDRIVE_SSH_KEY_FILE (or RECOGDRIVE_SSH_KEY) and RECOGDRIVE_KNOWN_HOSTS',
  'tpu-api': 'start the worker with an SSH key (RECOGDRIVE_SSH_KEY_FILE) and RECOGDRIVE_GCP_PROJECTS (the projects it may create TPUs in); credentials: Application Default Credentials',
  'compute-engine': 'start the worker with an SSH key (RECOGDRIVE_SSH_KEY_FILE) and RECOGDRIVE_GCP_PROJECTS (the projects it may create VMs in); credentials: Application Default Credentials',
};

export function createActivities(deps: ActivityDependencies) {
  const provider = (backend: ComputeBackend): ComputeProvider => {
    const found = deps.compute[backend];
    if (found === undefined) {
      throw ApplicationFailure.create({
        type: FailureType.BackendUnavailable,
        message: `compute backend "${backend}" is not available on this worker (available: ${Object.keys(deps.compute).join(', ')}): ${BACKEND_HINTS[backend]}`,
        nonRetryable: true,
      });
    }
    return found;
  };
  const executorFor = (lease: ComputeLease): StageExecutor => {
    const kind = lease.workers[0]?.kind;
    const found = kind === undefined ? undefined : deps.executors[kind];
    if (found === undefined) {
      throw ApplicationFailure.create({
        type: FailureType.BackendUnavailable,
        message: `no executor for ${kind ?? 'a lease without workers'} on this worker`,
        nonRetryable: true,
      });
    }
    return found;
  };
  const storeFor = (uri: string): ArtifactStore => {
    const store = deps.artifactStores.find((s) => s.schemes.includes(schemeOf(uri)));
    if (store === undefined) {
      throw ApplicationFailure.create({
        type: FailureType.BackendUnavailable,
        message: `no artifact store for ${schemeOf(uri)}:// URIs on this worker`,
        nonRetryable: true,
      });
    }
    return store;
  };

  const lineage = new LineageStore(storeFor);
  let localImageDigest: Promise<string> | undefined;

  return {
    /** Fails the run before anything is created when a backend or the artifact root is unusable. */
    async preflight(request: PreflightRequest): Promise<void> {
      for (const backend of request.backends) provider(backend);
      const cloud = request.backends.filter(isCloudBackend);
      if (cloud.length > 0 && (request.project === undefined || !(deps.cloudProjects ?? []).includes(request.project))) {
        throw ApplicationFailure.create({
          type: FailureType.BackendUnavailable,
          message: `${cloud.join(' and ')} on this worker serve${cloud.length === 1 ? 's' : ''} the projects ${(deps.cloudProjects ?? []).join(', ') || '(none)'}, not ${request.project ?? '(no gcp.project given)'}: add it to RECOGDRIVE_GCP_PROJECTS or run in one of those`,
          nonRetryable: true,
        });
      }
      // Runs started before roots were checked send no hostPaths: their artifact root is still checked.
      const hostPaths = request.hostPaths ?? (request.artifactRoot.startsWith('file://') ? [{ field: 'artifactRoot', path: request.artifactRoot.slice('file://'.length) }] : []);
      const outside = hostPathsOutsideRoots(hostPaths, deps.allowedRoots ?? []);
      if (outside.length > 0) {
        throw ApplicationFailure.create({
          type: FailureType.InvalidPipelineInput,
          message: `invalid pipeline input:\n  - ${outside.map((r) => `${r.path}: ${r.message}`).join('\n  - ')}`,
          nonRetryable: true,
          details: [outside.map((r) => `${r.path}: ${r.message}`)],
        });
      }
      if (request.backends.includes('local') && !request.artifactRoot.startsWith('file://')) {
        throw ApplicationFailure.create({
          type: FailureType.BackendUnavailable,
          message: `the local backend reads and writes artifacts on this machine: artifactRoot must be file://, not ${request.artifactRoot}`,
          nonRetryable: true,
        });
      }
      try {
        await storeFor(request.artifactRoot).checkWritable(request.artifactRoot);
      } catch (error) {
        if (error instanceof ApplicationFailure) throw error;
        throw ApplicationFailure.create({ type: FailureType.BackendUnavailable, message: (error as Error).message, nonRetryable: true });
      }
    },

    /** Image reference → digest, so fingerprints name what runs, not a tag that may move. */
    async resolveImages(request: ResolveImagesRequest): Promise<Record<string, string>> {
      const digests: Record<string, string> = {};
      for (const { stage, image, compute } of request.images) {
        if (digests[image] !== undefined) continue;
        const pinned = pinnedDigest(image);
        if (pinned !== undefined) digests[image] = pinned;
        else if (compute.backend === 'local') digests[image] = await (localImageDigest ??= treeDigest(deps.localImage.base, deps.localImage.dirs));
        else if (compute.backend === 'static') {
          const lease = await provider('static').acquire({ runId: 'resolve-image', stage, attempt: 0, compute }, () => {});
          const worker = lease.workers[0]!;
          const executor = executorFor(lease);
          if (executor.imageDigest === undefined) throw ApplicationFailure.create({ type: FailureType.BackendUnavailable, message: 'this executor cannot resolve image digests', nonRetryable: true });
          digests[image] = await executor.imageDigest(worker, image);
        } else {
          // Cloud VMs pull by digest: the registry says what the tag names now.
          digests[image] = await registryDigest(image, deps.registry ?? DEFAULT_REGISTRY_ACCESS);
        }
      }
      return digests;
    },

    /** Verified outputs this run may reuse, records of provided artifacts, the source run of a rerun. */
    async lookupArtifacts(request: LookupRequest): Promise<PlanContext> {
      try {
        return await lineage.lookup(request.config, request.imageDigests);
      } catch (error) {
        if (error instanceof UnknownRunError || error instanceof MalformedRecordError || error instanceof MissingSourceError) {
          throw ApplicationFailure.create({ type: FailureType.InvalidPipelineInput, message: error.message, nonRetryable: true });
        }
        throw storeUnavailable('looking up lineage', error);
      }
    },

    /** Outputs given by URI that a stage of the run reads: they must satisfy their stage's contract before anything starts. */
    async verifyProvided(request: VerifyProvidedRequest): Promise<Array<{ stage: string; uri: string; problems: string[] }>> {
      return Promise.all(
        request.artifacts.map(async ({ stage, uri, verification }) => {
          const candidates = markerLocationsToTry(uri).map((markers) => markerReaders(storeFor, uri, markers));
          const report = await verifyProvidedOutput(candidates, storeFor(uri).reader(uri), verification).catch((error: unknown) => {
            throw storeUnavailable(`verifying ${uri}`, error);
          });
          return { stage, uri, problems: report.problems };
        }),
      );
    },

    /** The run's plan and which artifacts it reads or reuses (lineage). */
    async recordRun(request: RecordRunRequest): Promise<void> {
      await lineage.recordRun(request.artifactRoot, request.run, request.consumers);
    },

    /** A verified output: its lineage record and its entry in the fingerprint index. */
    async recordArtifact(request: RecordArtifactRequest): Promise<{ indexed: boolean }> {
      return lineage.recordArtifact(request.artifactRoot, request.record);
    },

    /** Records the failure of an attempt that its wrapper could not record (lost host, hang, kill); first verdict stands. */
    async recordAttemptFailure(request: RecordFailureRequest): Promise<boolean> {
      const { uri, layout } = request.markers ?? { layout: 'inside', uri: request.outputUri };
      const files = markerFiles(layout);
      const store = storeFor(uri);
      // One attempt, one verdict: a DONE.json its wrapper claimed first stands (and this one is refused).
      const claim: VerdictClaim = { verdict: 'failed', writer: 'orchestrator', at: new Date().toISOString() };
      const claimUri = `${uri}/${files.verdict(request.marker.attempt)}`;
      if (!(await store.createIfAbsent(claimUri, `${JSON.stringify(claim)}\n`))) {
        const existing = parseVerdictClaim((await store.readText(claimUri)) ?? '');
        // Refused: the next attempt's look for an earlier verdict finds that DONE.json.
        if (existing.ok && existing.value.verdict !== 'failed') return false;
      }
      return store.createIfAbsent(`${uri}/${files.failed(request.marker.attempt)}`, `${JSON.stringify(request.marker, null, 2)}\n`);
    },

    /** Cloud quota and capacity are the failover's business (workflows/stage.ts); this is one try in one placement. */
    async acquireCompute(request: ComputeRequest): Promise<ComputeLease> {
      const context = Context.current();
      const acquiring = provider(request.compute.backend).acquire(request, (details) => context.heartbeat(details));
      // The provider's polls do not watch for cancellation: answer it at once (the workflow then releases).
      // A create already sent stays sent; the release that follows deletes what it made.
      acquiring.catch(() => {});
      return Promise.race([acquiring, context.cancelled]);
    },

    /** Where the artifact root's data lives (a bucket's location): cloud compute prefers zones there. */
    async artifactLocation(request: { uri: string }): Promise<string | undefined> {
      const store = storeFor(request.uri);
      if (store.location === undefined) return undefined;
      try {
        return await store.location(request.uri);
      } catch (error) {
        // Only an ordering preference: without it zones are tried in the order given.
        Context.current().log.warn('bucket location unknown', { uri: request.uri, error: (error as Error).message });
        return undefined;
      }
    },

    /**
     * Heartbeats while it waits (a host of the slice may take the whole connect deadline) and stops
     * once it loses its lease; a try overtaken by a Temporal retry is fenced out on the hosts.
     */
    async launchStage(request: LaunchRequest): Promise<LaunchResult> {
      const context = Context.current();
      const executor = executorFor(request.lease);
      try {
        return await executor.launch(request, { heartbeat: () => context.heartbeat(), cancelled: context.cancellationSignal, tryNumber: context.info.attempt });
      } catch (error) {
        if (context.cancellationSignal.aborted) throw new CancelledFailure('stage launch cancelled');
        throw error;
      }
    },

    /**
     * Makes the slice's bare machines ready (activities/bring-up/). A step that can heal (a
     * registry or bucket outage, a lost connection) fails the try and Temporal retries it, resuming
     * where it stopped; one that cannot (StageBringUpFailed) fails the stage at once.
     */
    async bringUpStage(request: BringUpRequest): Promise<BringUpResult> {
      const context = Context.current();
      const executor = executorFor(request.lease);
      if (executor.bringUp === undefined) {
        throw ApplicationFailure.create({ type: FailureType.BackendUnavailable, message: `the ${request.lease.workers[0]?.kind ?? 'unknown'} executor cannot bring up machines`, nonRetryable: true });
      }
      const store = storeFor(request.logsUri);
      const beating = setInterval(() => context.heartbeat(), 1_000);
      try {
        return await executor.bringUp(request, {
          cancelled: context.cancellationSignal,
          log: (worker, text) => store.appendText(`${request.logsUri}/${bringUpLogName(request.attempt, worker)}`, text),
        });
      } catch (error) {
        if (context.cancellationSignal.aborted) throw new CancelledFailure('bring-up cancelled');
        // A VM taken away mid-bring-up (SSH lost) is a node loss: the stage reprovisions without using an attempt.
        const health = request.health;
        const machines = health === undefined ? undefined : provider(health.request.compute.backend);
        if (health !== undefined && machines?.health !== undefined && !(error instanceof BringUpFailed && error.permanent)) {
          const found = await machines.health(health.request).catch(() => undefined);
          if (found?.state === 'lost') throw nodeLossFailure(request.lease.name, found);
        }
        if (error instanceof BringUpFailed) {
          throw ApplicationFailure.create({ type: error.permanent ? FailureType.StageBringUpFailed : 'BringUpStepFailed', message: error.message, nonRetryable: error.permanent });
        }
        throw error;
      } finally {
        clearInterval(beating);
      }
    },

    async watchStage(request: WatchRequest): Promise<WatchResult> {
      const context = Context.current();
      const watchContext: WatchContext = {
        heartbeat: (details) => context.heartbeat(details),
        cancelled: context.cancellationSignal,
        reportProgress: (progress: Progress) => reportProgress(request, progress),
        logs: stageLogs(storeFor(request.logsUri), request.logsUri, request.attempt),
        resumeFrom: context.info.heartbeatDetails,
      };
      const health = request.health;
      const machines = health === undefined ? undefined : provider(health.request.compute.backend);
      try {
        if (health === undefined || machines?.health === undefined) return await executorFor(request.lease).watch(request, watchContext);
        return await watchWithHealth((signal) => executorFor(request.lease).watch(request, { ...watchContext, cancelled: signal }), {
          cancelled: context.cancellationSignal,
          check: () => machines.health!(health.request),
          intervalMs: health.intervalMs,
          name: request.lease.name,
          note: (message) => context.log.warn(message),
        });
      } catch (error) {
        if (context.cancellationSignal.aborted) throw new CancelledFailure('stage watch cancelled');
        throw error;
      }
    },

    /** A verdict only from what was read: a failed read is retried (ArtifactStoreUnavailable), never a "missing output". */
    async verifyStage(request: VerifyRequest): Promise<VerifyReport> {
      const readers = markerReaders(storeFor, request.outputUri, request.markers ?? { layout: 'inside', uri: request.outputUri });
      return verifyFromMarkers(readers, request.verification, request.seenPatterns).catch((error: unknown) => {
        throw storeUnavailable(`verifying ${request.outputUri}`, error);
      });
    },

    async stopStage(request: StopRequest): Promise<void> {
      // Stopping waits for hosts that may not answer (and `docker stop`'s grace): stay alive meanwhile.
      const context = Context.current();
      const beating = setInterval(() => context.heartbeat(), 1_000);
      try {
        await executorFor(request.lease).stop(request, stageLogs(storeFor(request.logsUri), request.logsUri, request.attempt));
      } finally {
        clearInterval(beating);
      }
    },

    async releaseCompute(request: ComputeRequest): Promise<ReleaseResult> {
      return provider(request.compute.backend).release(request);
    },

    // The janitor (workflows/janitor.ts): leaked compute of closed or unknown runs.
    /**
     * Every machine of every backend that can list its own (all backends, or those named), with
     * its labels. A backend that cannot be listed (no credentials, API down) is reported, not
     * fatal: the others are still cleaned. Fails only when no backend could be listed.
     */
    async listLeakCandidates(request: { backends?: ComputeBackend[] }): Promise<{ leases: LeaseRecord[]; unlisted: Array<{ backend: ComputeBackend; error: string }> }> {
      const leases: LeaseRecord[] = [];
      const unlisted: Array<{ backend: ComputeBackend; error: string }> = [];
      let listed = 0;
      for (const [backend, found] of Object.entries(deps.compute) as Array<[ComputeBackend, ComputeProvider | undefined]>) {
        if (request.backends !== undefined && !request.backends.includes(backend)) continue;
        if (found?.listLeases === undefined) continue;
        try {
          leases.push(...(await found.listLeases()));
          listed++;
        } catch (error) {
          // Part listed (some static hosts did not answer): clean that part, report the rest.
          if (error instanceof IncompleteListing) {
            leases.push(...error.leases);
            listed++;
          }
          unlisted.push({ backend, error: (error as Error).message });
        }
      }
      if (listed === 0 && unlisted.length > 0) throw new Error(`no compute backend could be listed: ${unlisted.map((u) => `${u.backend}: ${u.error}`).join('; ')}`);
      return { leases, unlisted };
    },

    /** Per workflow id its Temporal state: 'unknown' when Temporal has no such workflow, 'unreadable' when describing it failed. */
    async runStates(request: { runIds: string[] }): Promise<Record<string, RunStateInfo>> {
      return workflowStates(request.runIds);
    },

    /**
     * Deletes each lease, after reading its run's state once more (a run seen closed may have
     * been started again under the same id): a lease whose run now runs is spared. Per lease
     * deleted / already-gone / spared / error; one failure does not stop the others.
     */
    async deleteLeases(request: { leases: LeaseRecord[] }): Promise<DeleteOutcome[]> {
      const outcomes: DeleteOutcome[] = [];
      for (const lease of request.leases) {
        Context.current().heartbeat(lease.name);
        const { name, backend } = lease;
        try {
          const found = deps.compute[backend];
          if (found?.deleteLease === undefined) throw new Error(`backend ${backend} on this worker cannot delete leases`);
          const [decision] = decideLeaks([lease], await workflowStates(workflowsToCheck([lease])), Date.now(), 0);
          if (decision!.action !== 'delete') {
            outcomes.push({ name, backend, outcome: 'spared', reason: decision!.reason });
            continue;
          }
          outcomes.push({ name, backend, outcome: (await found.deleteLease(lease)) ? 'deleted' : 'already-gone' });
        } catch (error) {
          outcomes.push({ name, backend, outcome: 'error', error: (error as Error).message });
        }
      }
      return outcomes;
    },
  };
}

export type RecogdriveActivities = ReturnType<typeof createActivities>;

/**
 * A read of the artifact store that failed (not a definite not-found) as a retryable failure:
 * Temporal retries it with back-off, and nothing is decided from it meanwhile.
 */
function storeUnavailable(what: string, error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const message = error instanceof Error ? error.message : String(error);
  return ApplicationFailure.create({ type: FailureType.ArtifactStoreUnavailable, message: `${what}: the artifact store could not be read: ${message}`, nonRetryable: false });
}

/** A stage attempt's logs in the artifact store, one object per worker. */
function stageLogs(store: ArtifactStore, logsUri: string, attempt: number): StageLogs {
  const uri = (worker: number) => `${logsUri}/${attemptLogName(attempt, worker)}`;
  return {
    append: (worker, chunk) => store.appendText(uri(worker), chunk),
    save: (worker, content) => store.writeText(uri(worker), content),
  };
}

/** Temporal's state of each workflow id (describe; not found → 'unknown'), 8 at a time. */
async function workflowStates(ids: readonly string[]): Promise<Record<string, RunStateInfo>> {
  const client = getClient();
  const unique = [...new Set(ids)];
  const states: Record<string, RunStateInfo> = {};
  for (let i = 0; i < unique.length; i += 8) {
    await Promise.all(
      unique.slice(i, i + 8).map(async (id) => {
        try {
          states[id] = runStateOf((await client.workflow.getHandle(id).describe()).status.name);
        } catch (error) {
          states[id] = error instanceof WorkflowNotFoundError ? { state: 'unknown' } : { state: 'unreadable', detail: (error as Error).message };
        }
      }),
    );
  }
  return states;
}

/** Progress goes to the run's `status` query as a signal; losing one only delays the display. */
async function reportProgress(request: WatchRequest, progress: Progress): Promise<void> {
  if (request.reportTo === undefined) return;
  try {
    await getClient()
      .workflow.getHandle(request.reportTo.workflowId)
      .signal(stageUpdateSignal, { stage: request.reportTo.stage, attempt: request.attempt, progress });
  } catch (error) {
    Context.current().log.warn('progress report failed', { error: (error as Error).message });
  }
}
