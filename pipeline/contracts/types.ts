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
  /** PyTorch Lightning's `lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt`, at least one in the newest version. */
  | { kind: 'lightning-checkpoints' }
  /** `<timestamp>.csv` with one row per token plus an `average` row, at most maxFailed invalid rows. */
  | { kind: 'eval-csv'; expectedTokens: number | undefined; maxFailedTokens: number }
  /** docker/bridge/orbax_to_torch.py's output: `file` non-empty, its `manifest` lists >= 1 tensor, every key starts with `prefix`, count matches (paths relative to the output root). */
  | { kind: 'torch-state-dict'; file: string; manifest: string; prefix: string };

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
  /** Extra `docker run` flags this stage needs besides the common ones (e.g. --shm-size, --gpus all). */
  extraDockerFlags: string[];
  /** The script, when the flavour runs another than the contract's `script` (the GPU scripts). */
  script?: string;
  /** What runs the script: `python` when absent, or torchrun with its rendezvous flags. */
  launcher?: string[];
  /** Several machines under one torchrun: each worker's node rank and the master's address come from the executor. */
  rendezvous?: { nodes: number; masterPort: number };
}

export interface StageContract {
  stage: StageName;
  title: string;
  /** Bump when what the stage runs changes meaning (feeds artifact fingerprints). */
  version: number;
  image: ImageKey;
  /** The TPU port's script (torchax) or, for stages that train nothing, the one script. */
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
