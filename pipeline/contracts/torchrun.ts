/**
 * The upstream GPU scripts run under torchrun with NCCL (scripts/training/run_recogdrive_train_multi_node_rl_2b.sh,
 * scripts/evaluation/run_recogdrive_agent_pdm_score_evaluation_2b.sh): one process per GPU of a
 * machine, `--nnodes` machines. On several machines each one's node rank and the master's address
 * differ per worker: the executor gives them as torchrun's environment (PET_NODE_RANK,
 * PET_MASTER_ADDR), so the launch spec stays one for all workers.
 */
import type { PipelineConfig } from '../input.ts';
import type { StageName } from '../stages.ts';
import { gpusPerMachine, machinesOf } from '../trainers.ts';
import { hydra } from './args.ts';
import type { RenderedStage } from './types.ts';

/** torchrun's default rendezvous port (c10d). */
export const TORCHRUN_MASTER_PORT = 29500;

/** Docker flags of any container on a GPU machine (pipeline/launch.ts): every GPU of the VM (NVIDIA container toolkit). */
export const GPU_DOCKER_FLAGS = ['--gpus', 'all'] as const;
/** torchrun jobs also need shared memory for NCCL and the DataLoader workers (Docker's default /dev/shm is 64 MB). */
const TORCHRUN_DOCKER_FLAGS = ['--shm-size=16g'] as const;

/** The launcher, rendezvous and docker flags of a stage run by torchrun on its compute's GPUs. */
export function torchrunLaunch(config: PipelineConfig, stage: StageName): Pick<RenderedStage, 'launcher' | 'rendezvous' | 'extraDockerFlags'> {
  const compute = config[stage].compute;
  const gpus = gpusPerMachine(compute);
  const nodes = machinesOf(compute);
  return {
    launcher: ['torchrun', `--nnodes=${nodes}`, `--nproc_per_node=${gpus}`, `--master_port=${TORCHRUN_MASTER_PORT}`],
    ...(nodes > 1 ? { rendezvous: { nodes, masterPort: TORCHRUN_MASTER_PORT } } : {}),
    extraDockerFlags: [...TORCHRUN_DOCKER_FLAGS],
  };
}

/**
 * PyTorch Lightning's Trainer must agree with torchrun: default_training.yaml says devices: 8,
 * num_nodes: 1 (the shell scripts override them), so they are set from the compute.
 */
export function lightningDeviceArgs(config: PipelineConfig, stage: StageName): string[] {
  const compute = config[stage].compute;
  return [hydra('trainer.params.devices', gpusPerMachine(compute)), hydra('trainer.params.num_nodes', machinesOf(compute))];
}
