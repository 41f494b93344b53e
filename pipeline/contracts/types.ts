/** What a stage contract is: the typed description of one pipeline stage. */
import type { PipelineConfig } from '../input.ts';
import type { StageName } from '../stages.ts';

export type ImageKey = 'stage1' | 'unified';

/** How a stage's outputs are checked after the container exited 0. Data, interpreted by activities/verify. */
export type OutputCheck =
  /** orbax checkpoint `<dir>/checkpoint_<N>` committed (no tmp suffix, commit timestamp set). */
  | { kind: 'final-checkpoint'; dir: string }
  /** `<log>/<token>/` folders each holding every file in `files`; their count must equal expectedTokens. */
  | { kind: 'token-cache'; files: readonly string[]; expectedTokens: number | undefined }
  /** One committed checkpoint per epoch: `checkpoint-epoch-<E>.pt/checkpoint_<step>`. */
  | { kind: 'epoch-checkpoints'; epochs: number }
  /** metadata/*.csv rows == metric_cache.pkl files == expectedTokens. */
  | { kind: 'metric-cache'; expectedTokens: number | undefined }
  /** `<timestamp>.csv` with one row per token plus an `average` row, at most maxFailed invalid rows. */
  | { kind: 'eval-csv'; expectedTokens: number | undefined; maxFailedTokens: number };

export interface VerificationSpec {
  outputs: OutputCheck;
  /** Log lines that must appear (the trainer's own completion message). */
  logMustContain: readonly string[];
  /** Log lines that mean the run is bad even with exit code 0 (silent failures). */
  logMustNotContain: readonly string[];
}

/** An upstream artifact a stage reads, and where the container sees it. */
export interface StageInputMount {
  stage: StageName;
  containerPath: string;
}

/** What a contract renders for one configuration. */
export interface RenderedStage {
  /** The trainer's own arguments, in the order of the TPU guide (after `python <script>`). */
  args: string[];
  /** Arguments the orchestrator adds (deterministic output dirs); kept apart so the plan shows them. */
  addedArgs: string[];
  env: Record<string, string>;
  inputs: StageInputMount[];
  /** Extra `docker run` flags this stage needs besides the common ones (e.g. --shm-size). */
  extraDockerFlags: string[];
}

export interface StageContract {
  stage: StageName;
  title: string;
  /** Bump when what the stage runs changes meaning (feeds artifact fingerprints). */
  version: number;
  image: ImageKey;
  /** What the stage needs: TPU chips or only CPU cores. */
  accelerator: 'tpu' | 'cpu';
  script: string;
  /** Commands run in the container before the script: the guide's runtime fixes. */
  runtimeFixes: readonly (readonly string[])[];
  /** Where the container writes this stage's outputs (mounted from the artifact store). */
  outputPath(config: PipelineConfig): string;
  render(config: PipelineConfig): RenderedStage;
  verification(config: PipelineConfig): VerificationSpec;
  /**
   * What a new attempt does with what the failed one left (after a preemption, a hang, a lost
   * host), as the upstream code behaves: no trainer resumes; caches may skip finished files.
   */
  retry: string;
  /** Known gaps of the TPU port that a user planning this stage should read. */
  notes(config: PipelineConfig): string[];
}
