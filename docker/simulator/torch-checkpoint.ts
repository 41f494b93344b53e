/**
 * torch.save / torch.load of a checkpoint file, as the agent loads them upstream:
 * `torch.load(path, map_location="cpu")["state_dict"]` (recogdrive_diffusion_planner.py:279-294 for
 * the GRPO reference policy, recogdrive_agent.py:90-99 for agent.checkpoint_path). torch.load opens
 * a FILE: an orbax checkpoint directory, which the torchax trainers write, raises IsADirectoryError
 * (row 1 of the upstream audit: the pipeline's exports turn it into a file first). A simulated
 * torch file is JSON: `{"torch_save": 1, "state_dict": {key: {shape, dtype}}}` (a Lightning .ckpt
 * adds epoch and global_step).
 */
import type { ContainerFs } from './container-fs.ts';
import { fileNotFound, PythonError, pyRepr } from './errors.ts';

export interface TensorInfo {
  shape: number[];
  dtype: string;
}

export interface LoadedCheckpoint {
  /** The state_dict: parameter name → tensor (its shape and dtype). */
  stateDict: Map<string, TensorInfo>;
  /** Other top-level entries (a Lightning .ckpt's epoch, global_step, ...). */
  extra: Record<string, unknown>;
}

export function torchLoad(fs: ContainerFs, path: string): LoadedCheckpoint {
  if (path === '' || !fs.exists(path)) throw fileNotFound(path === '' ? '' : fs.absolute(path));
  if (fs.isDir(path)) throw new PythonError('IsADirectoryError', `[Errno 21] Is a directory: ${pyRepr(fs.absolute(path))}`);
  const bytes = fs.readBytes(path);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new PythonError('_pickle.UnpicklingError', `invalid load key, ${pyRepr(bytes.subarray(0, 1).toString('latin1'))}.`);
  }
  if (parsed.torch_save !== 1) throw new PythonError('_pickle.UnpicklingError', `invalid load key, '{'.`);
  const { state_dict: stateDict, ...rest } = parsed;
  const extra = Object.fromEntries(Object.entries(rest).filter(([key]) => key !== 'torch_save'));
  if (typeof stateDict !== 'object' || stateDict === null) throw new PythonError('KeyError', "'state_dict'");
  const tensors = new Map<string, TensorInfo>();
  for (const [key, value] of Object.entries(stateDict as Record<string, Partial<TensorInfo>>)) {
    tensors.set(key, { shape: Array.isArray(value?.shape) ? value.shape : [], dtype: value?.dtype ?? 'float32' });
  }
  return { stateDict: tensors, extra };
}

/** torch.save({"state_dict": ..., **extra}, path). */
export function torchSave(fs: ContainerFs, path: string, stateDict: ReadonlyMap<string, TensorInfo>, extra: Record<string, unknown> = {}): void {
  const body = { torch_save: 1, ...extra, state_dict: Object.fromEntries(stateDict) };
  fs.writeFile(path, JSON.stringify(body));
}
