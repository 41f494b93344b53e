/**
 * torch.distributed as the GPU scripts start it: `dist.init_process_group(backend="nccl",
 * world_size=WORLD_SIZE, rank=RANK)` with the default env:// rendezvous, then
 * `torch.cuda.set_device(LOCAL_RANK)`. The simulated machine's GPUs: RECOGDRIVE_SIM_GPUS (default 0).
 */
import { PythonError } from './errors.ts';

export interface ProcessGroup {
  rank: number;
  localRank: number;
  worldSize: number;
  /** GPUs this machine has. */
  gpus: number;
}

export function initNcclProcessGroup(env: NodeJS.ProcessEnv): ProcessGroup {
  const rank = Number(env.RANK ?? '0');
  const localRank = Number(env.LOCAL_RANK ?? '0');
  const worldSize = Number(env.WORLD_SIZE ?? '1');
  for (const name of ['MASTER_ADDR', 'MASTER_PORT']) {
    if (env[name] === undefined || env[name] === '') {
      throw new PythonError('ValueError', `Error initializing torch.distributed using env:// rendezvous: environment variable ${name} expected, but not set`);
    }
  }
  const gpus = gpusOf(env);
  if (gpus < 1) throw new PythonError('RuntimeError', 'ProcessGroupNCCL is only supported with GPUs, no GPUs found!');
  if (localRank >= gpus) throw new PythonError('RuntimeError', 'CUDA error: invalid device ordinal');
  return { rank, localRank, worldSize, gpus };
}

export function gpusOf(env: NodeJS.ProcessEnv): number {
  const gpus = Number(env.RECOGDRIVE_SIM_GPUS ?? '0');
  return Number.isInteger(gpus) && gpus > 0 ? gpus : 0;
}
