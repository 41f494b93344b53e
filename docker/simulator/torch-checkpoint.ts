/**
 * Checkpoint loading as the agent does it upstream: `torch.load(path, map_location="cpu")["state_dict"]`
 * (recogdrive_diffusion_planner.py:279-294 for the GRPO reference policy, recogdrive_agent.py:90-99
 * for agent.checkpoint_path). torch.load opens a FILE: an orbax checkpoint directory, which the
 * torchax trainers write, raises IsADirectoryError, unless the checkout fixes that
 * (`torch-loads-orbax`, checkout.ts). A simulated torch file is JSON: `{"torch_save": 1, "state_dict": {key: {shape, dtype}}}`.
 */
import type { ContainerFs } from './container-fs.ts';
import { fileNotFound, PythonError, pyRepr } from './errors.ts';
import { committedCheckpoint } from './orbax.ts';

export interface LoadedCheckpoint {
  /** Parameter names as stored. */
  keys: string[];
  format: 'torch' | 'orbax';
}

export function torchLoad(fs: ContainerFs, path: string, options: { orbaxDirectories: boolean }): LoadedCheckpoint {
  if (path === '' || !fs.exists(path)) throw fileNotFound(path === '' ? '' : fs.absolute(path));
  if (fs.isDir(path)) {
    if (!options.orbaxDirectories) throw new PythonError('IsADirectoryError', `[Errno 21] Is a directory: ${pyRepr(fs.absolute(path))}`);
    const checkpoint = committedCheckpoint(fs, path);
    if (checkpoint === undefined) throw new PythonError('FileNotFoundError', `No committed orbax checkpoint in ${pyRepr(fs.absolute(path))}`);
    return { keys: checkpoint.params, format: 'orbax' };
  }
  const bytes = fs.readBytes(path);
  let parsed: { torch_save?: unknown; state_dict?: unknown };
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
  } catch {
    throw new PythonError('_pickle.UnpicklingError', `invalid load key, ${pyRepr(bytes.subarray(0, 1).toString('latin1'))}.`);
  }
  if (parsed.torch_save !== 1) throw new PythonError('_pickle.UnpicklingError', `invalid load key, '{'.`);
  if (typeof parsed.state_dict !== 'object' || parsed.state_dict === null) throw new PythonError('KeyError', "'state_dict'");
  return { keys: Object.keys(parsed.state_dict), format: 'torch' };
}
