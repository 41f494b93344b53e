/**
 * What the real ReCogDrive code does with our commands, as rules the input is checked against
 * before anything is created: defects that crash a stage (unless the team's checkout fixes them
 * and says so in `upstreamFixes`), overrides hydra or the trainer would refuse or ignore, and
 * typed knobs that change nothing. Facts from the public TPU fork, cited by file and line
 * (../shared/research/upstream-recogdrive.md, "row N" = its table's rows).
 */
import type { StageName } from './stages.ts';

/** The upstream code the facts below were read from. */
export const UPSTREAM_CODE = 'zorrofox/recogdrive@7ed3135';

/** Known upstream defects a team's checkout may fix; a stage that hits one is refused unless the input declares the fix. */
export const UPSTREAM_FIXES = ['feature-cache-real-scenes', 'torchax-grpo', 'torch-loads-orbax', 'eval-without-torchrun'] as const;
export type UpstreamFix = (typeof UPSTREAM_FIXES)[number];

export interface UpstreamDefect {
  /** What fails upstream, with the file and lines that make it fail. */
  fact: string;
  /** What a checkout must change for the stage to run. */
  fix: string;
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
  },
  // rows 1 and 3
  'torch-loads-orbax': {
    fact:
      'the agent loads checkpoints with torch.load(path)["state_dict"] and keys prefixed "agent.action_head." ' +
      '(recogdrive_diffusion_planner.py:279-294 for agent.reference_policy_checkpoint, catching only FileNotFoundError; recogdrive_agent.py:90-99 for agent.checkpoint_path), ' +
      'while the torchax trainer writes orbax checkpoint directories with "action_head." keys: IsADirectoryError while the agent is built',
    fix: 'load torchax/orbax checkpoint directories (or convert them to a torch state dict under "state_dict" with "agent."-prefixed keys)',
  },
  // row 6
  'eval-without-torchrun': {
    fact:
      'the evaluation calls dist.init_process_group("nccl") with env:// rendezvous and torch.cuda.set_device (navsim/planning/script/run_pdm_score_recogdrive.py:184-190): ' +
      'it needs GPUs and torchrun (upstream: scripts/evaluation/run_recogdrive_agent_pdm_score_evaluation_2b.sh), a plain python on a TPU or CPU VM fails',
    fix: 'run as one process without NCCL/CUDA (a gloo/CPU port of the evaluation)',
  },
};

/** The defects each stage runs into, in the pipeline as the contracts launch it (torchax on TPU, plain python). */
export const STAGE_DEFECTS: Readonly<Record<StageName, readonly UpstreamFix[]>> = {
  stage1: [],
  featureCache: ['feature-cache-real-scenes'],
  stage2: [],
  metricCache: [],
  stage3: ['torchax-grpo', 'torch-loads-orbax'],
  eval: ['eval-without-torchrun', 'torch-loads-orbax'],
};

/** An input that would fail or be ignored upstream: the field and why, in words a user can act on. */
export interface UpstreamRefusal {
  path: string;
  message: string;
}

const TORCHAX_TRAINER_IGNORES =
  'the torchax trainer reads only trainer.params.max_epochs and trains with plain optax.adamw(agent.lr) (navsim/planning/script/run_training_recogdrive_torchax.py:207-208,271), so this override would change nothing';

/** Overrides each stage accepts: keys that exist upstream and change what runs. */
export const OVERRIDES_ALLOWED: Readonly<Record<StageName, readonly string[]>> = {
  stage1: [
    'save_steps',
    'max_steps',
    'dataloader_num_workers',
    'freeze_llm',
    'freeze_backbone',
    'freeze_mlp',
    'unfreeze_vit_layers',
    'use_llm_lora',
    'vision_select_layer',
    'seed',
  ],
  featureCache: ['experiment_uid'],
  stage2: ['seed'],
  metricCache: ['cache.force_feature_computation', 'worker.threads_per_node'],
  stage3: ['seed'],
  eval: [],
};

/** Overrides someone may reach for that upstream refuses or ignores, with the reason given back. */
export const OVERRIDES_REFUSED: Readonly<Record<StageName, Readonly<Record<string, string>>>> = {
  stage1: {
    tensorboard_id:
      "internvl_chat_finetune_torchax.py:1081-1090 calls aiplatform.init(project='grhuang-02', location='us-east5', ...), the fork author's Vertex AI project: anywhere else it fails, is logged as a warning and the run goes on without TensorBoard, so this override would change nothing",
  },
  featureCache: {
    seed: 'run_caching_recogdrive_torchax.py never reads cfg.seed (it seeds nothing), so this override would change nothing',
  },
  stage2: {
    'trainer.params.accumulate_grad_batches': TORCHAX_TRAINER_IGNORES,
    'trainer.params.gradient_clip_val': TORCHAX_TRAINER_IGNORES,
    'trainer.params.precision': TORCHAX_TRAINER_IGNORES,
  },
  metricCache: {
    seed: "config/metric_caching/default_metric_caching.yaml has no seed key: hydra fails with \"Could not override 'seed'. ... Key 'seed' is not in struct\"",
  },
  stage3: {
    'trainer.params.accumulate_grad_batches': TORCHAX_TRAINER_IGNORES,
    'trainer.params.gradient_clip_val': TORCHAX_TRAINER_IGNORES,
    'trainer.params.precision': TORCHAX_TRAINER_IGNORES,
    'agent.grpo_cfg.bc_coeff':
      "config/common/agent/recogdrive_agent.yaml has no grpo_cfg node: hydra fails with \"Could not override 'agent.grpo_cfg.bc_coeff'. ... Key 'grpo_cfg' is not in struct\"",
    'agent.grpo_cfg.sample_time':
      "config/common/agent/recogdrive_agent.yaml has no grpo_cfg node: hydra fails with \"Could not override 'agent.grpo_cfg.sample_time'. ... Key 'grpo_cfg' is not in struct\"",
  },
  eval: {
    seed: "config/pdm_scoring/default_run_pdm_score.yaml has no seed key: hydra fails with \"Could not override 'seed'. ... Key 'seed' is not in struct\"",
    'worker.threads_per_node':
      'the evaluation scores its tokens in its own process (run_pdm_score(data_points), run_pdm_score_recogdrive.py:255); the Ray worker it builds runs nothing, so this override would change nothing',
  },
};

/** Every override key the input schema lets through to the refusal step (allowed, or refused with a reason). */
export function overrideKeysKnown(stage: StageName): string[] {
  return [...OVERRIDES_ALLOWED[stage], ...Object.keys(OVERRIDES_REFUSED[stage])];
}
