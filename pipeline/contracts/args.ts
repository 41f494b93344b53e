/** Building trainer arguments the way the upstream scripts and the TPU guide write them. */
import { formatNumber, hydraValue, type OverrideValue } from '../overrides.ts';
import type { PipelineConfig } from '../input.ts';

/** The DiT planner settings Stage 2, Stage 3 and evaluation share. */
type PlannerSettings = PipelineConfig['stage2'] | PipelineConfig['stage3'] | PipelineConfig['eval'];

/** The container path where the host repo checkout is mounted, and the workdir of every stage. */
export const REPO_MOUNT = '/recogdrive';

/** `key=value` for a hydra override whose value the orchestrator controls (no quoting needed). */
export function hydra(key: string, value: string | number | boolean): string {
  if (typeof value === 'boolean') return `${key}=${value ? 'True' : 'False'}`;
  return `${key}=${typeof value === 'number' ? formatNumber(value) : value}`;
}

/** HuggingFace-style boolean argument value. */
export function hfBool(value: boolean): string {
  return value ? 'True' : 'False';
}

/** HuggingFace-style float: always with a fraction or exponent, as the guide writes them (0.0, 0.5, 4e-5). */
export function hfFloat(value: number): string {
  const text = formatNumber(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** User overrides (already allow-listed by the input schema) as hydra arguments with quoted strings. */
export function hydraOverrides(overrides: Record<string, OverrideValue>): string[] {
  return Object.entries(overrides).map(([key, value]) => `${key}=${hydraValue(value)}`);
}

/**
 * User overrides for an HfArgumentParser script: one `--key=value` element each, so argparse takes
 * the whole rest of the element as the value and no value can become an option of its own.
 */
export function hfOverrides(overrides: Record<string, OverrideValue>): string[] {
  return Object.entries(overrides).map(
    ([key, value]) => `--${key}=${typeof value === 'boolean' ? hfBool(value) : typeof value === 'number' ? formatNumber(value) : value}`,
  );
}

/** A container path as an absolute path (relative paths are relative to the repo mount). */
export function absoluteInContainer(path: string): string {
  return path.startsWith('/') ? path : `${REPO_MOUNT}/${path}`;
}

/**
 * PYTHONPATH as the guide sets it. The guide appends `:$PYTHONPATH`, which the VM host's shell
 * expands (to nothing on a fresh TPU VM) before docker sees it, so it is left out here.
 */
export const PYTHONPATH_INTERNVL = `${REPO_MOUNT}/internvl_chat`;
export const PYTHONPATH_NAVSIM = `${REPO_MOUNT}:${REPO_MOUNT}/internvl_chat`;

/** The NAVSIM environment a hydra script reads. */
export function navsimEnv(
  config: PipelineConfig,
  parts: { data?: boolean; maps?: boolean },
): Record<string, string> {
  const env: Record<string, string> = {
    PYTHONPATH: PYTHONPATH_NAVSIM,
    NAVSIM_EXP_ROOT: config.paths.navsimExpRoot,
  };
  if (parts.data) env.OPENSCENE_DATA_ROOT = config.paths.openSceneDataRoot;
  if (parts.maps) {
    env.NUPLAN_MAPS_ROOT = config.paths.mapsRoot;
    env.NUPLAN_MAP_VERSION = config.paths.mapVersion;
  }
  env.HYDRA_FULL_ERROR = '1';
  return env;
}

/** Container path of the last checkpoint an epoch-checkpointing trainer writes. */
export function lastEpochCheckpoint(outputDir: string, epochs: number): string {
  return `${outputDir}/checkpoint-epoch-${epochs - 1}.pt`;
}

/** The recogdrive_agent arguments of the DiT planner, in the TPU guide's order (Stage 2 command). */
export function plannerAgentArgs(config: PipelineConfig, s: PlannerSettings, grpo: boolean): string[] {
  return [
    'agent=recogdrive_agent',
    hydra('agent.lr', s.learningRate),
    hydra('agent.grpo', grpo),
    hydra('agent.vlm_path', config.paths.model),
    hydra('agent.cam_type', s.camType),
    hydra('agent.cache_hidden_state', s.cacheHiddenState),
    hydra('agent.vlm_type', s.vlmType),
    hydra('agent.dit_type', s.ditType),
    hydra('agent.vlm_size', s.vlmSize),
    hydra('agent.sampling_method', s.samplingMethod),
  ];
}

/** Training/evaluation on the hidden-state cache only (no scene loading), as the guide's Stage 2 runs. */
export function cachedDatasetArgs(s: PipelineConfig['stage2'] | PipelineConfig['stage3'], cachePath: string): string[] {
  return [
    hydra('train_test_split', s.split),
    hydra('cache_path', cachePath),
    hydra('use_cache_without_dataset', true),
    hydra('force_cache_computation', false),
    hydra('dataloader.params.num_workers', s.numWorkers),
  ];
}
