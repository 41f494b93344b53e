/**
 * What the real ReCogDrive code does with our commands, as rules the input is checked against
 * before anything is created: defects that crash a stage (unless the team's checkout fixes them
 * and says so in `upstreamFixes`), overrides hydra or the trainer would refuse or ignore, and
 * typed knobs that change nothing. Facts from the public TPU fork, cited by file and line
 * (../shared/research/upstream-recogdrive.md, "row N" = its table's rows).
 */
import type { StageName } from './stages.ts';

/** How a training stage runs: the TPU port's torchax trainer, or the upstream GPU script under torchrun. */
export type Trainer = 'torchax' | 'gpu';

/** The upstream code the facts below were read from. */
export const UPSTREAM_CODE = 'zorrofox/recogdrive@7ed3135';

/** Known upstream defects a team's checkout may fix; a stage that hits one is refused unless the input declares the fix. */
export const UPSTREAM_FIXES = ['feature-cache-real-scenes', 'torchax-grpo', 'eval-without-torchrun'] as const;
export type UpstreamFix = (typeof UPSTREAM_FIXES)[number];

/**
 * Fixes an input may still name but nothing needs any more: `torch-loads-orbax` (a checkout whose
 * agent loads orbax directories) is replaced by the checkpoint exports, which give the GPU scripts
 * the torch file they load. Accepted, so inputs and runs from before keep working; ignored.
 */
export const RETIRED_FIXES = ['torch-loads-orbax'] as const;

export interface UpstreamDefect {
  /** What fails upstream, with the file and lines that make it fail. */
  fact: string;
  /** What a checkout must change for the stage to run. */
  fix: string;
  /** What works without a patched checkout, when something does. */
  instead?: string;
}

export const UPSTREAM_DEFECTS: Readonly<Record<UpstreamFix, UpstreamDefect>> = {
  // row 8
  'feature-cache-real-scenes': {
    fact:
      'the caching script crashes on the first batch of real scenes: its collate unpacks (features, targets, token) but Dataset.__getitem__ returns (features, targets) ' +
      '(navsim/planning/script/run_caching_recogdrive_torchax.py:61, navsim/planning/training/dataset.py:307), and its SceneLoader is built without load_image_path=True, ' +
      'so every image would be zeros ("Image path not found"); only its +is_dummy_run path works',
    fix: 'return the token from the dataset (or build it in the collate) and pass load_image_path=True to the SceneLoader',
  },
  // row 2
  'torchax-grpo': {
    fact:
      'the torchax trainer cannot run GRPO: it calls the agent with tokens_list=None ("assume grpo=False"), which forward_grpo iterates, ' +
      'and takes .jax() of a loss GRPO does not return (navsim/planning/script/run_training_recogdrive_torchax.py:256-261)',
    fix: 'pass the batch tokens to the agent and support the GRPO loss in the torchax training step',
    instead: 'the upstream GPU script (stage3.trainer "gpu", the default): run_training_recogdrive_rl.py under torchrun on a GPU VM',
  },
  // row 6
  'eval-without-torchrun': {
    fact:
      'the evaluation calls dist.init_process_group("nccl") with env:// rendezvous and torch.cuda.set_device (navsim/planning/script/run_pdm_score_recogdrive.py:184-190): ' +
      'it needs GPUs and torchrun (upstream: scripts/evaluation/run_recogdrive_agent_pdm_score_evaluation_2b.sh), a plain python on a TPU or CPU VM fails',
    fix: 'run as one process without NCCL/CUDA (a gloo/CPU port of the evaluation)',
    instead: 'eval.trainer "gpu" (the default): torchrun on a GPU VM',
  },
};

/** The defects a stage runs into, as its trainer flavour launches it. */
export function defectsOf(stage: StageName, trainer: Trainer | undefined): UpstreamFix[] {
  if (stage === 'featureCache') return ['feature-cache-real-scenes'];
  if (stage === 'stage3' && trainer === 'torchax') return ['torchax-grpo'];
  if (stage === 'eval' && trainer === 'torchax') return ['eval-without-torchrun'];
  return [];
}

/** An input that would fail or be ignored upstream: the field and why, in words a user can act on. */
export interface UpstreamRefusal {
  path: string;
  message: string;
}

const TORCHAX_TRAINER_IGNORES =
  'the torchax trainer reads only trainer.params.max_epochs and trains with plain optax.adamw(agent.lr) (navsim/planning/script/run_training_recogdrive_torchax.py:207-208,271), so this override would change nothing (the GPU trainer, PyTorch Lightning, reads it)';
/** PyTorch Lightning Trainer arguments (config/training/default_training.yaml trainer.params) the GPU scripts pass to pl.Trainer. */
const LIGHTNING_KNOBS = ['trainer.params.accumulate_grad_batches', 'trainer.params.gradient_clip_val', 'trainer.params.precision'];
/** What torchrun and Lightning must agree on: the orchestrator sets both from the stage's compute (contracts/torchrun.ts). */
const DEVICE_KNOBS = ['trainer.params.devices', 'trainer.params.num_nodes'];
const SET_FROM_COMPUTE =
  "set from the stage's compute (its GPUs per machine and its machines), as torchrun's --nproc_per_node and --nnodes: Lightning raises ValueError when devices × num_nodes is not torchrun's world size, so change the compute instead";
const NO_GRPO_CFG = (key: string) =>
  `config/common/agent/recogdrive_agent.yaml has no grpo_cfg node: hydra fails with "Could not override '${key}'. ... Key 'grpo_cfg' is not in struct"`;

export interface OverrideRules {
  /** Keys that exist upstream and change what this stage runs. */
  allowed: readonly string[];
  /** Keys someone may reach for that upstream refuses or ignores here, with the reason given back. */
  refused: Readonly<Record<string, string>>;
}

/** The overrides a stage takes with a given trainer flavour (a hydra key or, for stage1, an HfArgumentParser field). */
export function overrideRules(stage: StageName, trainer: Trainer | undefined): OverrideRules {
  switch (stage) {
    case 'stage1':
      return {
        allowed: ['save_steps', 'max_steps', 'dataloader_num_workers', 'freeze_llm', 'freeze_backbone', 'freeze_mlp', 'unfreeze_vit_layers', 'use_llm_lora', 'vision_select_layer', 'seed'],
        refused: {
          tensorboard_id:
            "internvl_chat_finetune_torchax.py:1081-1090 calls aiplatform.init(project='grhuang-02', location='us-east5', ...), the fork author's Vertex AI project: anywhere else it fails, is logged as a warning and the run goes on without TensorBoard, so this override would change nothing",
        },
      };
    case 'featureCache':
      return { allowed: ['experiment_uid'], refused: { seed: 'run_caching_recogdrive_torchax.py never reads cfg.seed (it seeds nothing), so this override would change nothing' } };
    case 'stage2':
    case 'stage3': {
      const grpo: Record<string, string> =
        stage === 'stage3' ? { 'agent.grpo_cfg.bc_coeff': NO_GRPO_CFG('agent.grpo_cfg.bc_coeff'), 'agent.grpo_cfg.sample_time': NO_GRPO_CFG('agent.grpo_cfg.sample_time') } : {};
      if (trainer === 'gpu') return { allowed: ['seed', ...LIGHTNING_KNOBS], refused: { ...Object.fromEntries(DEVICE_KNOBS.map((k) => [k, SET_FROM_COMPUTE])), ...grpo } };
      return { allowed: ['seed'], refused: { ...Object.fromEntries(LIGHTNING_KNOBS.map((k) => [k, TORCHAX_TRAINER_IGNORES])), ...grpo } };
    }
    case 'metricCache':
      return {
        allowed: ['cache.force_feature_computation', 'worker.threads_per_node'],
        refused: { seed: "config/metric_caching/default_metric_caching.yaml has no seed key: hydra fails with \"Could not override 'seed'. ... Key 'seed' is not in struct\"" },
      };
    case 'eval':
      return {
        allowed: [],
        refused: {
          seed: "config/pdm_scoring/default_run_pdm_score.yaml has no seed key: hydra fails with \"Could not override 'seed'. ... Key 'seed' is not in struct\"",
          'worker.threads_per_node':
            'the evaluation scores its tokens in its own process (run_pdm_score(data_points), run_pdm_score_recogdrive.py:255); the Ray worker it builds runs nothing, so this override would change nothing',
        },
      };
    case 'stage2Export':
    case 'stage3Export':
      return { allowed: [], refused: {} };
  }
}

const TRAINERS: readonly (Trainer | undefined)[] = ['torchax', 'gpu'];

/** The override keys some trainer flavour of the stage takes. */
export function overrideKeysAllowed(stage: StageName): string[] {
  return [...new Set(TRAINERS.flatMap((trainer) => overrideRules(stage, trainer).allowed))];
}

/** Every override key the input schema lets through to the refusal step (allowed, or refused with a reason, under some trainer). */
export function overrideKeysKnown(stage: StageName): string[] {
  const rules = TRAINERS.map((trainer) => overrideRules(stage, trainer));
  return [...new Set(rules.flatMap((r) => [...r.allowed, ...Object.keys(r.refused)]))];
}
