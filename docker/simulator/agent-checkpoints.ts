/**
 * How the ReCogDrive agent loads the checkpoints it is given, as upstream does it:
 * - agent.initialize() with agent.checkpoint_path (recogdrive_agent.py:90-99): keys lose an
 *   `agent.` prefix, those the agent has with the same shape are loaded with strict=False: a
 *   checkpoint whose keys all miss loads NOTHING, silently.
 * - the GRPO reference policy (recogdrive_diffusion_planner.py:279-294): keys lose
 *   `agent.action_head.`, the rest is printed as skipped, then load_state_dict(strict=True), which
 *   raises on every planner parameter left missing; only FileNotFoundError is caught (a warning,
 *   and RL starts from random weights).
 */
import type { ContainerFs } from './container-fs.ts';
import { PythonError } from './errors.ts';
import { out } from './log.ts';
import { parameterShape, PLANNER_MODULE_KEYS, PLANNER_PARAMS } from './planner-params.ts';
import { torchLoad } from './torch-checkpoint.ts';

/** agent.initialize(): the number of parameters loaded (0 is not an error upstream). */
export function initializeAgent(fs: ContainerFs, checkpointPath: string): number {
  if (checkpointPath === '') return 0;
  const { stateDict } = torchLoad(fs, checkpointPath);
  let loaded = 0;
  for (const [key, tensor] of stateDict) {
    const name = key.startsWith('agent.') ? key.slice('agent.'.length) : key;
    if (PLANNER_PARAMS.includes(name) && sameShape(tensor.shape, parameterShape(name))) loaded += 1;
  }
  return loaded;
}

/** ReCogDriveDiffusionPlanner._init_grpo's reference policy; false when the file does not exist (upstream's warning path). */
export function loadReferencePolicy(fs: ContainerFs, path: string): boolean {
  let stateDict;
  try {
    ({ stateDict } = torchLoad(fs, path));
  } catch (error) {
    if (!(error instanceof PythonError) || error.type !== 'FileNotFoundError') throw error;
    out(`Warning: GRPO checkpoint not found at ${path}. Skipping loading.`);
    return false;
  }
  const loaded = new Set<string>();
  for (const [key, tensor] of stateDict) {
    const name = key.startsWith('agent.action_head.') ? key.slice('agent.action_head.'.length) : key;
    const modelShape = PLANNER_MODULE_KEYS.includes(name) ? parameterShape(`action_head.${name}`) : undefined;
    if (modelShape !== undefined && sameShape(tensor.shape, modelShape)) {
      loaded.add(name);
    } else {
      out(`Skip loading '${key}' → '${name}' (checkpoint shape ${pyShape(tensor.shape)} vs model shape ${pyShape(modelShape ?? tensor.shape)})`);
    }
  }
  const missing = PLANNER_MODULE_KEYS.filter((name) => !loaded.has(name));
  if (missing.length > 0) {
    throw new PythonError(
      'RuntimeError',
      `Error(s) in loading state_dict for ReCogDriveDiffusionPlanner:\n\tMissing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}. `,
    );
  }
  return true;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** Python's repr of a tuple of ints. */
function pyShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}
