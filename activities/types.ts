import type { BringUpSpec } from '../pipeline/bring-up.ts';
/** Requests and results of the activities: the contract between workflows and side effects. */
import type { ComputeBackend, ComputeSpec } from '../pipeline/input.ts';
import type { LaunchSpec } from '../pipeline/launch.ts';
import type { VerificationSpec } from '../pipeline/contracts/index.ts';
import type { ProgressHints } from '../pipeline/progress.ts';
import type { ExitOutcome } from '../pipeline/failures.ts';
import type { StageName } from '../pipeline/stages.ts';
import type { WorkerHostPath } from '../pipeline/host-roots.ts';
import type { ArtifactRecord, ConsumerRecord, RunRecord, SampledFile } from '../pipeline/lineage.ts';
import type { FailedMarker, MarkerLocation } from '../pipeline/markers.ts';
import type { PipelineConfig } from '../pipeline/input.ts';

/** One machine of a stage's compute (a TPU slice has several). */
export type WorkerEndpoint =
  | { kind: 'local'; dir: string }
  | { kind: 'ssh'; host: string; port: number; user: string; hostKeys: string[] };

export interface ComputeLease {
  name: string;
  backend: ComputeBackend;
  workers: WorkerEndpoint[];
  /** Cloud backends: where the machine is and what it is (health checks, the cost record). */
  cloud?: CloudPlacement & {
    project: string;
    /** v6e-8, or a Compute Engine machine type. */
    machine: string;
    /** TPU chips (0 for a CPU VM). */
    chips: number;
    /** GPUs (compute-engine GPU VMs); absent or 0 for others. */
    gpus?: number;
    /** e.g. nvidia-tesla-a100, when gpus > 0. */
    gpuType?: string;
  };
}

/** Where a cloud attempt provisions: chosen by the stage workflow's zone failover. */
export interface CloudPlacement {
  zone: string;
  spot: boolean;
}

/** Identifies one attempt's compute; everything else is derived from it. */
export interface ComputeRequest {
  runId: string;
  stage: StageName;
  attempt: number;
  compute: ComputeSpec;
  /** Cloud backends: the zone (one of compute.zones) and capacity type of this try; default the first zone and compute.spot. */
  placement?: CloudPlacement;
  /** Cloud backends: the run's gcp.project. */
  project?: string;
}

/** A running stage's machine, as its cloud sees it. */
export type LeaseHealth =
  | { state: 'ok' }
  /** Gone under the stage: preempted (spot taken back) or maintenance (terminated, repairing, deleted, unhealthy). */
  | { state: 'lost'; failureClass: 'preemption' | 'maintenance'; detail: string };

export interface PreflightRequest {
  backends: ComputeBackend[];
  artifactRoot: string;
  /** gcp.project of the run: cloud backends must serve it. */
  project?: string;
  /** The run's paths on the worker host (pipeline/host-roots.ts); absent from runs started before roots were checked. */
  hostPaths?: WorkerHostPath[];
}

export interface LaunchRequest {
  lease: ComputeLease;
  launch: LaunchSpec;
  attempt: number;
  /** The exact run id, labelled on the containers for the janitor; absent from launches scheduled before it was passed. */
  runId?: string;
  compute: ComputeSpec;
  /** The stage's hang timeout: the executor has the wrapper report output growth often enough for it (absent: every 30 s). */
  hangTimeoutMs?: number;
}

/** A bare cloud VM made ready for its stage (pipeline/bring-up.ts; activities/bring-up/). */
export interface BringUpRequest {
  lease: ComputeLease;
  spec: BringUpSpec;
  attempt: number;
  /** The stage's logs folder: each worker's steps go to attempt-N-worker-K-bring-up.log there. */
  logsUri: string;
  /** Cloud compute: a failed step is checked against the machine's health (a preempted VM is a node loss, not a bring-up failure). */
  health?: { request: ComputeRequest };
}

export interface BringUpResult {
  /** Seconds each step took on each worker (the benchmark and the log). */
  steps: Array<{ worker: number; step: string; ms: number }>;
}

export interface LaunchResult {
  containerName: string;
  /** True when a container of this name was already there (a retried launch) and was adopted. */
  adopted: boolean;
}

export interface WatchRequest {
  lease: ComputeLease;
  launch: LaunchSpec;
  attempt: number;
  /** Folder of the stage's logs in the artifact store (see pipeline/naming.ts attemptLogName). */
  logsUri: string;
  hangTimeoutMs: number;
  pollIntervalMs: number;
  progressIntervalMs: number;
  progressHints: ProgressHints;
  /** Log lines to look for anywhere in the output (completion and silent-failure markers). */
  logPatterns: string[];
  /** The run workflow that shows this stage's progress in its `status` query. */
  reportTo?: { workflowId: string; stage: StageName };
  /** Cloud compute: check the machine (the acquire request, with its placement) this often for preemption or maintenance. */
  health?: { request: ComputeRequest; intervalMs: number };
}

export type WatchResult = ExitOutcome;

export interface VerifyRequest {
  stage: StageName;
  outputUri: string;
  /** Where the output's completion markers are (pipeline/launch.ts launchMarkers); absent in requests of older workflows: inside the output. */
  markers?: MarkerLocation;
  verification: VerificationSpec;
  /** Log patterns the watcher saw; undefined when no watcher saw the log (an earlier attempt's DONE.json). */
  seenPatterns?: string[];
}

export interface VerifyProvidedRequest {
  artifacts: Array<{ stage: StageName; uri: string; verification: VerificationSpec }>;
}

export interface ResolveImagesRequest {
  images: Array<{ stage: StageName; image: string; compute: ComputeSpec }>;
}

export interface LookupRequest {
  config: PipelineConfig;
  imageDigests: Record<string, string>;
}

export interface RecordRunRequest {
  artifactRoot: string;
  run: RunRecord;
  consumers: ConsumerRecord[];
}

export interface RecordArtifactRequest {
  artifactRoot: string;
  record: ArtifactRecord;
}

export interface RecordFailureRequest {
  outputUri: string;
  /** Where the output's completion markers are; absent in requests of older workflows: inside the output. */
  markers?: MarkerLocation;
  marker: FailedMarker;
}

export interface VerifyReport {
  ok: boolean;
  /** Each missing or wrong thing, in words a user can act on. */
  problems: string[];
  /** Counts found (tokens, checkpoints, rows...). */
  summary: Record<string, number | string>;
  /** From the completion markers: the output's manifest, the files sampled from it, the attempt that wrote DONE.json. */
  manifest?: { files: number; bytes: number; digest: string };
  samples?: SampledFile[];
  doneAttempt?: number;
  /** A DONE.json that does not count: its attempt had been declared failed first (FAILED.json is final). */
  ignoredDoneAttempt?: number;
}

export interface StopRequest {
  lease: ComputeLease;
  launch: LaunchSpec;
  attempt: number;
  /** Where the attempt's logs are saved before the container is removed. */
  logsUri: string;
}

export interface ReleaseResult {
  name: string;
  /** False when there was nothing to release (never created, or already gone). */
  released: boolean;
}
