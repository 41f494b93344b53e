/**
 * `torchrun [options] <script> [args]` (torch.distributed.run) as the GPU stages use it: one
 * process per GPU on each of `--nnodes` machines. Options may also come from torchrun's own
 * environment (PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT:
 * the orchestrator sets them per worker). The simulator runs the script once, as this machine's
 * local rank 0 with the rendezvous environment torchrun gives its children (RANK, LOCAL_RANK,
 * WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); the other ranks do the same work. A
 * local rank beyond the machine's GPUs (RECOGDRIVE_SIM_GPUS) fails as torch.cuda.set_device does,
 * and torchrun reports its child's failure.
 */
import path from 'node:path';
import { err } from './log.ts';
import { runPython } from './python.ts';

const OPTIONS: Readonly<Record<string, string>> = {
  nnodes: 'PET_NNODES',
  nproc_per_node: 'PET_NPROC_PER_NODE',
  node_rank: 'PET_NODE_RANK',
  master_addr: 'PET_MASTER_ADDR',
  master_port: 'PET_MASTER_PORT',
  rdzv_backend: 'PET_RDZV_BACKEND',
  rdzv_endpoint: 'PET_RDZV_ENDPOINT',
  rdzv_id: 'PET_RDZV_ID',
  max_restarts: 'PET_MAX_RESTARTS',
};
const USAGE = 'usage: torchrun [-h] [--nnodes NNODES] [--nproc-per-node NPROC_PER_NODE] [--node-rank NODE_RANK] [--master-addr MASTER_ADDR] [--master-port MASTER_PORT] ... training_script ...';

export async function runTorchrun(argv: readonly string[]): Promise<number> {
  const given = new Map<string, string>();
  let i = 0;
  for (; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) break;
    if (arg === '--standalone') {
      given.set('standalone', 'true');
      continue;
    }
    const eq = arg.indexOf('=');
    const name = (eq < 0 ? arg.slice(2) : arg.slice(2, eq)).replaceAll('-', '_');
    if (!(name in OPTIONS)) return usageError(`unrecognized arguments: ${arg}`);
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) return usageError(`argument --${name.replaceAll('_', '-')}: expected one argument`);
    given.set(name, value);
  }
  const [script, ...scriptArgs] = argv.slice(i);
  if (script === undefined) return usageError('the following arguments are required: training_script, training_script_args');

  const option = (name: string, fallback: string) => given.get(name) ?? process.env[OPTIONS[name]!] ?? fallback;
  const nnodes = Number(option('nnodes', '1'));
  const nprocText = option('nproc_per_node', '1');
  const gpus = Number(process.env.RECOGDRIVE_SIM_GPUS ?? '0');
  const nproc = nprocText === 'gpu' || nprocText === 'auto' ? Math.max(gpus, 1) : Number(nprocText);
  const nodeRank = Number(option('node_rank', '0'));
  if (![nnodes, nproc, nodeRank].every(Number.isInteger) || nnodes < 1 || nproc < 1 || nodeRank < 0 || nodeRank >= nnodes) {
    return usageError(`invalid rendezvous: --nnodes ${nnodes} --nproc-per-node ${nprocText} --node-rank ${nodeRank}`);
  }
  const masterAddr = given.get('standalone') === undefined ? option('master_addr', '127.0.0.1') : '127.0.0.1';
  const masterPort = option('master_port', '29500');

  if (nproc > 1 && nproc > gpus && gpus > 0) {
    // torch.cuda.set_device(local_rank) in the child whose local rank has no GPU.
    const rank = nodeRank * nproc + gpus;
    err(`[rank${rank}]: RuntimeError: CUDA error: invalid device ordinal`);
    return childFailed(script, rank, gpus);
  }
  Object.assign(process.env, {
    LOCAL_RANK: '0',
    RANK: String(nodeRank * nproc),
    GROUP_RANK: String(nodeRank),
    WORLD_SIZE: String(nnodes * nproc),
    LOCAL_WORLD_SIZE: String(nproc),
    MASTER_ADDR: masterAddr,
    MASTER_PORT: masterPort,
    TORCHELASTIC_RUN_ID: 'none',
  });
  const code = await runPython([script, ...scriptArgs]);
  return code === 0 ? 0 : childFailed(script, nodeRank * nproc, 0, code);
}

function usageError(message: string): number {
  err(USAGE);
  err(`torchrun: error: ${message}`);
  return 2;
}

/** torch.distributed.elastic's report of a failed child: exit 1. */
function childFailed(script: string, rank: number, localRank: number, exitcode = 1): number {
  err(
    [
      'torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ',
      '============================================================',
      `${path.posix.basename(script)} FAILED`,
      '------------------------------------------------------------',
      'Failures:',
      '  <NO_OTHER_FAILURES>',
      '------------------------------------------------------------',
      'Root Cause (first observed failure):',
      '[0]:',
      `  rank      : ${rank} (local_rank: ${localRank})`,
      `  exitcode  : ${exitcode} (pid: ${process.pid})`,
      '  error_file: <N/A>',
      '  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html',
      '============================================================',
    ].join('\n'),
  );
  return 1;
}
