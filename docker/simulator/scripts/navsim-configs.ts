/**
 * The hydra configs of the navsim scripts: the upstream primaries their @hydra.main names, composed
 * from the generated data (upstream/hydra-configs.ts) with every key, group option and default
 * upstream has (hydra-config.ts). experiment_uid is `${now:${date_format}}`, resolved once per run.
 */
import { PythonError } from '../errors.ts';
import type { ConfigSchema, HydraConfig } from '../hydra-config.ts';

/** config/training/default_training.yaml: run_training_recogdrive_torchax.py and run_caching_recogdrive_torchax.py. */
export function trainingConfig(): ConfigSchema {
  return { primary: 'default_training', name: 'default_training' };
}

/** config/metric_caching/default_metric_caching.yaml: run_metric_caching.py (output_dir is the cache's metadata folder). */
export function metricCachingConfig(): ConfigSchema {
  return { primary: 'default_metric_caching', name: 'default_metric_caching' };
}

/** config/pdm_scoring/default_run_pdm_score.yaml: run_pdm_score_recogdrive.py (navtest, constant_velocity_agent by default). */
export function pdmScoringConfig(): ConfigSchema {
  return { primary: 'default_run_pdm_score', name: 'default_run_pdm_score' };
}

/**
 * The ReCogDrive scripts reach into ReCogDrive-only attributes of the instantiated agent; any other
 * agent fails there with Python's AttributeError naming the class of the agent's `_target_`.
 */
export function requireRecogDriveAgent(cfg: HydraConfig, attribute: string): void {
  const target = cfg.get('agent._target_');
  const className = typeof target === 'string' ? (target.split('.').at(-1) ?? target) : String(target);
  if (className !== 'ReCogDriveAgent') {
    throw new PythonError('AttributeError', `'${className}' object has no attribute '${attribute}'`);
  }
}
