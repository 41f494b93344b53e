/**
 * Which trainer flavour runs a stage, and what compute it needs. `torchax`: the TPU port's scripts
 * on a TPU VM (Stage 1, the feature cache and Stage 2, as the TPU guide runs them). `gpu`: the
 * upstream GPU scripts (PyTorch Lightning, NCCL) under torchrun on GPU VMs: the only place GRPO
 * and the evaluation run upstream.
 */
import type { ComputeSpec, PipelineConfig } from './input.ts';
import { gpusOf } from './gpu-machines.ts';
import type { StageName } from './stages.ts';
import type { Trainer } from './upstream.ts';

export type { Trainer } from './upstream.ts';

/** The flavour a stage runs with; undefined for the stages that train nothing (metric cache, exports). */
export function trainerOf(config: PipelineConfig, stage: StageName): Trainer | undefined {
  switch (stage) {
    case 'stage1':
    case 'featureCache':
      return 'torchax';
    case 'stage2':
    case 'stage3':
    case 'eval':
      // Inputs of runs started before the flavours existed carry none: they ran the TPU port.
      return config[stage].trainer ?? 'torchax';
    default:
      return undefined;
  }
}

/** CUDA GPUs on each machine of a compute spec (0: none). */
export function gpusPerMachine(compute: ComputeSpec): number {
  switch (compute.backend) {
    case 'local':
      return compute.simulate.gpus ?? 0;
    case 'static':
      return Math.min(...compute.hosts.map((h) => h.gpus ?? 0));
    case 'compute-engine':
      return gpusOf(compute.machineType, compute.gpus)?.count ?? 0;
    case 'tpu-api':
      return 0;
  }
}

/** GPUs the local simulator plays for a stage whose trainer is `gpu` when its input says none. */
export const DEFAULT_LOCAL_GPUS = 1;

/**
 * The config with the local simulator's GPUs made explicit: a local stage whose trainer is `gpu`
 * plays a machine with DEFAULT_LOCAL_GPUS GPUs unless `simulate.gpus` says how many.
 */
export function withDefaultLocalGpus(config: PipelineConfig): PipelineConfig {
  const next = { ...config };
  for (const stage of ['stage2', 'stage3', 'eval'] as const) {
    const compute = config[stage].compute;
    if (compute.backend !== 'local' || compute.simulate.gpus !== undefined || trainerOf(config, stage) !== 'gpu') continue;
    (next as Record<string, unknown>)[stage] = { ...config[stage], compute: { ...compute, simulate: { ...compute.simulate, gpus: DEFAULT_LOCAL_GPUS } } };
  }
  return next;
}

/** Machines a stage's compute spans (torchrun --nnodes). */
export function machinesOf(compute: ComputeSpec): number {
  return compute.backend === 'static' ? compute.hosts.length : 1;
}

const WHY: Readonly<Record<'stage2' | 'stage3' | 'eval', Record<Trainer, string>>> = {
  stage2: {
    torchax: "the TPU guide's run_training_recogdrive_torchax.py on the TPU VM",
    gpu: "the upstream run_training_recogdrive.py (PyTorch Lightning) under torchrun",
  },
  stage3: {
    torchax: 'the torchax trainer on the TPU VM, which runs GRPO only on a checkout that fixes it (torchax-grpo)',
    gpu: 'the upstream run_training_recogdrive_rl.py (PyTorch Lightning) under torchrun: GRPO cannot run on the torchax trainer, which passes tokens_list=None',
  },
  eval: {
    torchax: 'run_pdm_score_recogdrive.py as one python process, which needs a checkout without its NCCL init (eval-without-torchrun)',
    gpu: 'the upstream run_pdm_score_recogdrive.py under torchrun: it is an NCCL job',
  },
};

/** The plan's word on how a training stage runs and why; undefined for the other stages. */
export function trainerNote(config: PipelineConfig, stage: StageName): string | undefined {
  if (stage !== 'stage2' && stage !== 'stage3' && stage !== 'eval') return undefined;
  const trainer = trainerOf(config, stage) ?? 'torchax';
  const compute = config[stage].compute;
  const where = trainer === 'gpu' ? ` (${machinesOf(compute)} machine(s) × ${gpusPerMachine(compute)} GPU(s))` : '';
  return `Trainer "${trainer}": ${WHY[stage][trainer]}${where}.`;
}

/** Why this compute cannot run the stage's trainer; undefined when it can. */
export function computeProblem(stage: StageName, trainer: Trainer | undefined, compute: ComputeSpec): string | undefined {
  if (trainer === 'gpu') {
    if (compute.backend === 'tpu-api') return `${stage} runs the upstream GPU script (trainer "gpu"), which needs CUDA GPUs: a TPU VM has none. Give it a GPU VM (compute-engine with a GPU machine type such as a2-highgpu-1g or g2-standard-8)`;
    if (gpusPerMachine(compute) === 0) {
      const how =
        compute.backend === 'local'
          ? 'set compute.simulate.gpus'
          : compute.backend === 'static'
            ? 'give every host its gpus'
            : 'use a GPU machine type (a2-*, a3-*, g2-*) or an N1 type with compute.gpus';
      return `${stage} runs the upstream GPU script (trainer "gpu") under torchrun with NCCL, which needs CUDA GPUs: this compute has none (${how})`;
    }
  }
  if (trainer === 'torchax' && gpusPerMachine(compute) > 0 && compute.backend === 'compute-engine') {
    return `${stage} runs the torchax trainer (trainer "torchax"), which needs TPUs: ${compute.machineType} is a GPU VM. Use a TPU (tpu-api, or a ct6e-standard-*t machine type), or trainer "gpu"`;
  }
  return undefined;
}
