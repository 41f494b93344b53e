/** What the `status` queries return: the state of a run and of each of its stages. */
import type { ComputeUsage } from './cost.ts';
import type { Progress } from './progress.ts';
import type { StageDecision } from './plan.ts';
import type { StageName } from './stages.ts';

export type StageState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped' | 'provided' | 'reused';
export type StagePhase = 'acquiring' | 'bringing up' | 'launching' | 'running' | 'verifying' | 'releasing';
export type RunState = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface StageStatus {
  stage: StageName;
  decision: StageDecision;
  state: StageState;
  phase?: StagePhase;
  attempt: number;
  progress?: Progress;
  artifactUri?: string;
  /** What the output depends on, hashed; REUSE: why it was reused. */
  fingerprint?: string;
  reason?: string;
  /** Folder of the stage's per-attempt, per-worker logs in the artifact store. */
  logsUri?: string;
  workflowId?: string;
  computeName?: string;
  /** Every machine the stage held (the cost record). */
  compute?: ComputeUsage[];
  /** Cloud compute: the last failover decision (zone changed, new VM after a preemption...). */
  computeEvent?: string;
  startedAt?: string;
  endedAt?: string;
  error?: string;
}

export interface RunStatus {
  runId: string;
  experiment: string;
  state: RunState;
  startedAt: string;
  endedAt?: string;
  error?: string;
  /** A cancelled run: who asked, as the cancel request in its history names them (added by the clients, workers/cancel-request.ts). */
  cancelledBy?: string;
  /** The run this one reruns. */
  rerunOf?: string;
  stages: StageStatus[];
}

/** What a stage workflow (or its watcher) tells the run about itself. */
export interface StageUpdate {
  stage: StageName;
  attempt: number;
  phase?: StagePhase;
  computeName?: string;
  progress?: Progress;
  /** A machine acquired or released (matched by name and attempt). */
  usage?: ComputeUsage;
  computeEvent?: string;
}

/** What a successful run returns: every artifact with its producer stage. */
export interface RunSummary {
  runId: string;
  rerunOf?: string;
  /** True when every stage was reused or provided: nothing ran and no compute was acquired. */
  nothingChanged?: boolean;
  experiment: string;
  startedAt: string;
  endedAt: string;
  stages: Array<{
    stage: StageName;
    decision: StageDecision;
    reason?: string;
    artifactUri?: string;
    fingerprint?: string;
    attempts?: number;
    computeName?: string;
    outputs?: Record<string, number | string>;
    /** Machines held and the TPU-hours they make (cloud TPUs; 0 elsewhere). */
    compute?: ComputeUsage[];
    tpuHours?: number;
    gpuHours?: number;
    /** Wall time of the stage's process, as the watcher saw it. */
    workMs?: number;
    /** Epoch milliseconds the stage's process started and exited. */
    processStartedAt?: number;
    processExitedAt?: number;
  }>;
}
