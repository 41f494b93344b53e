/**
 * The hydra configs of the navsim scripts, reduced to the keys the simulator reads, with the
 * upstream defaults (navsim/planning/script/config/...). Built per run: experiment_uid is the
 * start time, resolved once like hydra's cached `${now:...}`.
 */
import { SPLITS, dataSplitOf } from '../dataset.ts';
import { PythonError } from '../errors.ts';
import { interpolation, MISSING, type ConfigSchema, type HydraConfig } from '../hydra-config.ts';
import { timestamp } from '../log.ts';

const AGENTS = ['recogdrive_agent', 'ego_status_mlp_agent', 'transfuser_agent', 'constant_velocity_agent', 'human_agent'];
const WORKERS = ['ray_distributed_no_torch', 'ray_distributed', 'single_machine_thread_pool', 'sequential'];
/** Sub-keys of these exist in the yaml files even though the simulator does not list them. */
const OPEN = ['agent.', 'trainer.', 'dataloader.', 'train_test_split.', 'worker.', 'hydra.'];

type GroupSpec = ConfigSchema['groups'][string];
const splitGroup = (fallback: string | typeof MISSING): GroupSpec => ({ default: fallback, options: SPLITS });

/** `${oc.env:OPENSCENE_DATA_ROOT}/<kind>/${train_test_split.data_split}`. */
const dataPath = (kind: 'navsim_logs' | 'sensor_blobs') =>
  interpolation(`\${oc.env:OPENSCENE_DATA_ROOT}/${kind}/\${train_test_split.data_split}`, (cfg: HydraConfig) =>
    `${cfg.env('OPENSCENE_DATA_ROOT')}/${kind}/${dataSplitOf(cfg.group('train_test_split'))}`,
  );

/** default_evaluation.yaml: `${oc.env:NAVSIM_EXP_ROOT}/${experiment_name}/${experiment_uid}`. */
const runDir = interpolation('${oc.env:NAVSIM_EXP_ROOT}/${experiment_name}/${experiment_uid}', (cfg: HydraConfig) =>
  `${cfg.env('NAVSIM_EXP_ROOT')}/${cfg.str('experiment_name')}/${cfg.str('experiment_uid')}`,
);

const underExpRoot = (name: string) =>
  interpolation(`\${oc.env:NAVSIM_EXP_ROOT}/${name}`, (cfg: HydraConfig) => `${cfg.env('NAVSIM_EXP_ROOT')}/${name}`);

/** config/training/default_training.yaml: the caching and training scripts. */
export function trainingConfig(): ConfigSchema {
  return {
    name: 'default_training',
    groups: { agent: { default: 'ego_status_mlp_agent', options: AGENTS }, train_test_split: splitGroup(MISSING) },
    values: {
      experiment_name: MISSING,
      experiment_uid: timestamp(),
      output_dir: runDir,
      navsim_log_path: dataPath('navsim_logs'),
      sensor_blobs_path: dataPath('sensor_blobs'),
      cache_path: underExpRoot('training_cache'),
      use_cache_without_dataset: false,
      force_cache_computation: true,
      // Upstream defaults to the 13,180 standard train logs; None here means "every log" (see README).
      train_logs: null,
      val_logs: null,
      seed: 0,
      'trainer.params.max_epochs': 100,
      'dataloader.params.batch_size': 16,
      'dataloader.params.num_workers': 4,
      'agent.vlm_path': '',
      'agent.grpo': false,
      'agent.lr': 1e-4,
      'agent.metric_cache_path': '',
      'agent.reference_policy_checkpoint': '',
      'agent.checkpoint_path': '',
    },
    open: OPEN,
  };
}

/** config/metric_caching/default_metric_caching.yaml. output_dir is the cache's metadata folder. */
export function metricCachingConfig(): ConfigSchema {
  return {
    name: 'default_metric_caching',
    groups: { train_test_split: splitGroup(MISSING), worker: { default: 'ray_distributed_no_torch', options: WORKERS } },
    values: {
      'cache.cache_path': underExpRoot('metric_cache'),
      'cache.force_feature_computation': false,
      output_dir: interpolation('${cache.cache_path}/metadata', (cfg: HydraConfig) => `${cfg.str('cache.cache_path')}/metadata`),
      navsim_log_path: dataPath('navsim_logs'),
      seed: 0,
    },
    open: [...OPEN, 'cache.'],
  };
}

/** config/pdm_scoring/default_run_pdm_score.yaml (navtest by default). */
export function pdmScoringConfig(): ConfigSchema {
  return {
    name: 'default_run_pdm_score',
    groups: {
      agent: { default: 'constant_velocity_agent', options: AGENTS },
      train_test_split: splitGroup('navtest'),
      worker: { default: 'ray_distributed', options: WORKERS },
    },
    values: {
      experiment_name: MISSING,
      experiment_uid: timestamp(),
      output_dir: runDir,
      navsim_log_path: dataPath('navsim_logs'),
      sensor_blobs_path: dataPath('sensor_blobs'),
      metric_cache_path: underExpRoot('metric_cache'),
      cache_path: null,
      use_cache_without_dataset: false,
      seed: 0,
      'agent.checkpoint_path': '',
      'agent.vlm_path': '',
      'agent.grpo': false,
    },
    open: OPEN,
  };
}

const AGENT_CLASSES: Readonly<Record<string, string>> = {
  recogdrive_agent: 'ReCogDriveAgent',
  ego_status_mlp_agent: 'EgoStatusMLPAgent',
  transfuser_agent: 'TransfuserAgent',
  constant_velocity_agent: 'ConstantVelocityAgent',
  human_agent: 'HumanAgent',
};

/** The ReCogDrive scripts reach into ReCogDrive-only attributes; any other agent fails there. */
export function requireRecogDriveAgent(cfg: HydraConfig, attribute: string): void {
  const agent = cfg.group('agent');
  if (agent !== 'recogdrive_agent') {
    throw new PythonError('AttributeError', `'${AGENT_CLASSES[agent] ?? agent}' object has no attribute '${attribute}'`);
  }
}
