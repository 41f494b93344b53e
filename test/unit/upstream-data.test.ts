/**
 * The data generated from upstream (docker/simulator/upstream/*.ts) states the upstream facts the
 * simulator relies on. Each test names the fact and the upstream file it comes from
 * (zorrofox/recogdrive @ 7ed3135, transformers 4.37.2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GROUP_OPTIONS,
  OVERRIDE_PATHS,
  PRIMARY_CONFIGS,
  UPSTREAM_COMMIT,
  type DefaultValue,
  type GroupPath,
  type PrimaryName,
} from '../../docker/simulator/upstream/hydra-configs.ts';
import { SCENE_FILTERS, TEST_LOGS, TRAIN_LOGS, VAL_LOGS } from '../../docker/simulator/upstream/log-splits.ts';
import { HF_FIELDS, HF_PARSER, TRANSFORMERS_VERSION, type HfField } from '../../docker/simulator/upstream/hf-arguments.ts';

const CONFIG = 'navsim/planning/script/config';
const PRIMARIES: readonly PrimaryName[] = ['default_training', 'default_metric_caching', 'default_run_pdm_score'];

const optionKeys = (group: GroupPath, option: string): Readonly<Record<string, DefaultValue>> => {
  const data = GROUP_OPTIONS[group].options[option];
  assert.ok(data, `${group}/${option} exists`);
  return data.keys;
};
const hfField = (name: string): HfField => {
  const found = HF_FIELDS.find((f) => f.name === name);
  assert.ok(found, `HfArgumentParser has --${name}`);
  return found;
};
const isMandatory = (value: unknown): boolean =>
  typeof value === 'object' && value !== null && 'kind' in value && value.kind === 'mandatory';

test('the data names the upstream commit and transformers version it was generated from', () => {
  assert.equal(UPSTREAM_COMMIT, '7ed3135666b19705154ad5750b2edcf51bb1d62c');
  assert.equal(TRANSFORMERS_VERSION, '4.37.2');
});

test('common/agent/recogdrive_agent.yaml has no grpo_cfg node, and has the keys the stages override', () => {
  const recog = GROUP_OPTIONS.agent.options.recogdrive_agent;
  assert.ok(recog);
  assert.equal(recog.file, `${CONFIG}/common/agent/recogdrive_agent.yaml`);
  assert.ok(!recog.nodes.includes('grpo_cfg'));
  assert.ok(!Object.keys(recog.keys).some((k) => k === 'grpo_cfg' || k.startsWith('grpo_cfg.')));
  for (const key of ['cam_type', 'vlm_type', 'cache_hidden_state', 'lr', 'grpo', 'metric_cache_path', 'reference_policy_checkpoint', 'checkpoint_path']) {
    assert.ok(key in recog.keys, `agent.${key}`);
  }
  assert.equal(recog.keys.grpo, false);
  assert.equal(recog.keys.cache_hidden_state, true);
  // `lr: 1e-4` is a float for OmegaConf's YAML loader (PyYAML alone would read a string).
  assert.equal(recog.keys.lr, 1e-4);
  assert.ok(recog.floatKeys.includes('lr'));
  assert.deepEqual(recog.nodes, ['trajectory_sampling']);
});

test('default_metric_caching.yaml and default_run_pdm_score.yaml have no seed; default_training.yaml has seed: 0', () => {
  for (const name of ['default_metric_caching', 'default_run_pdm_score'] as const) {
    assert.ok(!('seed' in PRIMARY_CONFIGS[name].keys), `${name} has no seed`);
    assert.ok(!OVERRIDE_PATHS[name].includes('seed'), `seed=... is not an override path of ${name}`);
  }
  assert.equal(PRIMARY_CONFIGS.default_training.keys.seed, 0);
  assert.equal(PRIMARY_CONFIGS.default_training.keySources.seed, `${CONFIG}/training/default_training.yaml`);
  assert.ok(OVERRIDE_PATHS.default_training.includes('seed'));
});

test('threads_per_node exists only in the Ray worker options (common/worker/*.yaml)', () => {
  const withThreads = Object.entries(GROUP_OPTIONS.worker.options)
    .filter(([, option]) => 'threads_per_node' in option.keys)
    .map(([name]) => name)
    .sort();
  assert.deepEqual(withThreads, ['ray_distributed', 'ray_distributed_no_torch']);
  assert.equal(optionKeys('worker', 'ray_distributed').threads_per_node, null);
  assert.deepEqual(Object.keys(GROUP_OPTIONS.worker.options).sort(), ['ray_distributed', 'ray_distributed_no_torch', 'sequential', 'single_machine_thread_pool']);
  assert.ok('max_workers' in optionKeys('worker', 'single_machine_thread_pool'));
  assert.deepEqual(Object.keys(optionKeys('worker', 'sequential')).sort(), ['_convert_', '_target_']);
});

test('default_run_pdm_score.yaml: worker defaults to ray_distributed_no_torch and `override train_test_split: navtest` makes navtest the split', () => {
  const pdm = PRIMARY_CONFIGS.default_run_pdm_score;
  assert.equal(pdm.groups.worker?.default, 'ray_distributed_no_torch');
  assert.equal(pdm.groups.train_test_split?.default, 'navtest');
  assert.ok(isMandatory(pdm.groups.train_test_split?.declaredDefault), 'default_common.yaml declares train_test_split: ???');
  assert.equal(pdm.groups.train_test_split?.override, 'override train_test_split: navtest');
  assert.equal(pdm.groups['train_test_split/scene_filter']?.default, 'navtest');
  assert.equal(pdm.groups.agent?.default, 'constant_velocity_agent');
  assert.equal(pdm.defaultComposition.keys['train_test_split.data_split'], 'test');
  assert.equal(pdm.defaultComposition.keys['train_test_split.scene_filter.frame_interval'], 1);
  assert.ok(OVERRIDE_PATHS.default_run_pdm_score.includes('train_test_split.scene_filter.max_scenes'));
});

test('default_training.yaml: agent defaults to ego_status_mlp_agent and train_test_split is ??? (must be given)', () => {
  const training = PRIMARY_CONFIGS.default_training;
  assert.equal(training.groups.agent?.default, 'ego_status_mlp_agent');
  assert.ok(isMandatory(training.groups.train_test_split?.default));
  assert.equal(training.groups['train_test_split/scene_filter']?.default, null);
  assert.equal(training.groups['train_test_split/scene_filter']?.parent, 'train_test_split');
  assert.ok(isMandatory(training.keys.experiment_name), 'default_evaluation.yaml: experiment_name: ???');
  assert.deepEqual(training.keys.experiment_uid, { kind: 'interpolation', text: '${now:${date_format}}' });
  assert.equal(training.keys.date_format, '%Y.%m.%d.%H.%M.%S');
  assert.equal(training.keys['trainer.params.precision'], '16-mixed');
  // Group subtrees are not part of the primary's own keys.
  assert.ok(!Object.keys(training.keys).some((k) => k.startsWith('agent.') || k.startsWith('worker.')));
  assert.deepEqual(training.defaultComposition.mergeOrder, [
    'worker/ray_distributed_no_torch',
    'default_common',
    'default_evaluation',
    'default_train_val_test_log_split',
    'agent/ego_status_mlp_agent',
    '<primary>',
  ]);
});

test('metric_caching/default_metric_caching.yaml: output_dir is ${cache.cache_path}/metadata and cache_path sits under NAVSIM_EXP_ROOT', () => {
  const mc = PRIMARY_CONFIGS.default_metric_caching;
  assert.deepEqual(mc.keys.output_dir, { kind: 'interpolation', text: '${cache.cache_path}/metadata' });
  assert.deepEqual(mc.keys['cache.cache_path'], { kind: 'interpolation', text: '${oc.env:NAVSIM_EXP_ROOT}/metric_cache' });
  assert.ok(!('agent' in mc.groups), 'metric caching composes no agent');
  assert.ok(!('experiment_name' in mc.keys), 'metric caching does not include default_evaluation');
});

test('every primary carries the hydra node it writes (run.dir, output_subdir, job.chdir, searchpath)', () => {
  for (const name of PRIMARIES) {
    const keys = PRIMARY_CONFIGS[name].keys;
    assert.deepEqual(keys['hydra.run.dir'], { kind: 'interpolation', text: '${output_dir}' });
    assert.deepEqual(keys['hydra.output_subdir'], { kind: 'interpolation', text: '${output_dir}/code/hydra' });
    assert.equal(keys['hydra.job.chdir'], false);
    assert.deepEqual(keys['hydra.searchpath'], ['pkg://navsim.planning.script.config.common']);
    for (const path of ['hydra', 'hydra.run', 'hydra.job', 'hydra.run.dir', 'hydra.searchpath']) {
      assert.ok(OVERRIDE_PATHS[name].includes(path), `${name}: ${path}`);
    }
  }
});

test('override paths hold every leaf and every intermediate node of the default composition, sorted, without duplicates', () => {
  for (const name of PRIMARIES) {
    const paths = OVERRIDE_PATHS[name];
    assert.deepEqual([...paths].sort(), paths);
    assert.equal(new Set(paths).size, paths.length);
    for (const key of Object.keys(PRIMARY_CONFIGS[name].defaultComposition.keys)) {
      assert.ok(paths.includes(key), `${name}: leaf ${key}`);
      const parts = key.split('.');
      for (let i = 1; i < parts.length; i++) assert.ok(paths.includes(parts.slice(0, i).join('.')), `${name}: node of ${key}`);
    }
  }
  assert.ok(OVERRIDE_PATHS.default_training.includes('dataloader.params'));
  assert.ok(OVERRIDE_PATHS.default_training.includes('agent.trajectory_sampling.time_horizon'));
  assert.ok(!OVERRIDE_PATHS.default_training.includes('agent.grpo'), 'grpo is a recogdrive_agent key, not ego_status_mlp_agent');
});

test('train_test_split options nest a scene_filter default (common/train_test_split/*.yaml)', () => {
  const splits = GROUP_OPTIONS.train_test_split.options;
  assert.deepEqual(Object.keys(splits).sort(), ['mini', 'navmini', 'navtest', 'navtrain', 'private_test_e2e', 'test', 'trainval', 'warmup_test_e2e']);
  assert.deepEqual(splits.navtrain?.defaults, { scene_filter: 'navtrain' });
  assert.equal(splits.navtrain?.keys.data_split, 'trainval');
  assert.deepEqual(splits.trainval?.defaults, { scene_filter: 'all_scenes' });
  assert.equal(GROUP_OPTIONS['train_test_split/scene_filter'].package, 'train_test_split.scene_filter');
  const navtrain = optionKeys('train_test_split/scene_filter', 'navtrain');
  assert.deepEqual(navtrain.tokens, {
    kind: 'long-list',
    count: TRAIN_TOKENS_COUNT,
    sample: SCENE_FILTERS.navtrain.tokens?.sample.slice(0, 8),
    source: `${CONFIG}/common/train_test_split/scene_filter/navtrain.yaml#tokens`,
  });
});

const TRAIN_TOKENS_COUNT = 103288;

test('training/default_train_val_test_log_split.yaml: 13180 train_logs, 1381 val_logs, 1349 test_logs', () => {
  assert.equal(TRAIN_LOGS.count, 13180);
  assert.equal(VAL_LOGS.count, 1381);
  assert.equal(TEST_LOGS.count, 1349);
  const own = PRIMARY_CONFIGS.default_training.keys.train_logs;
  assert.ok(typeof own === 'object' && own !== null && 'kind' in own && own.kind === 'long-list');
  assert.equal(own.count, 13180);
  assert.equal(VAL_LOGS.sample.length, 16);
});

test('common/train_test_split/scene_filter/navtrain.yaml has 103288 tokens and 1192 log names; navtest 12146 tokens and 136 logs', () => {
  assert.equal(SCENE_FILTERS.navtrain.tokens?.count, TRAIN_TOKENS_COUNT);
  assert.equal(SCENE_FILTERS.navtrain.tokens?.distinct, TRAIN_TOKENS_COUNT);
  assert.equal(SCENE_FILTERS.navtrain.logNames?.count, 1192);
  assert.equal(SCENE_FILTERS.navtest.tokens?.count, 12146);
  assert.equal(SCENE_FILTERS.navtest.logNames?.count, 136);
  assert.equal(SCENE_FILTERS.navmini.tokens?.count, 396);
  assert.equal(SCENE_FILTERS.navmini.logNames?.count, 62);
});

test('scene filters: navtrain/navtest step one frame (frame_interval 1), navmini does not overlap (null); all need a route and 4 history frames', () => {
  assert.equal(SCENE_FILTERS.navtrain.keys.frame_interval, 1);
  assert.equal(SCENE_FILTERS.navtest.keys.frame_interval, 1);
  assert.equal(SCENE_FILTERS.navmini.keys.frame_interval, null);
  for (const f of Object.values(SCENE_FILTERS)) {
    assert.equal(f.keys.num_history_frames, 4);
    assert.equal(f.keys.num_future_frames, 10);
    assert.equal(f.keys.has_route, true);
    assert.equal(f.keys.max_scenes, null);
    assert.equal(f.keys._target_, 'navsim.common.dataclasses.SceneFilter');
  }
});

test('log samples: 64 navtrain logs that are also train_logs then 16 that are val_logs (navtrain order), 64 navtest logs, 1024/512 tokens, all distinct', () => {
  const navtrainLogs = SCENE_FILTERS.navtrain.logNames;
  const navtestLogs = SCENE_FILTERS.navtest.logNames;
  assert.ok(navtrainLogs && navtestLogs);
  assert.equal(navtrainLogs.sample.length, 64 + 16);
  // The generator samples navtrain ∩ train_logs, then navtrain ∩ val_logs; the same names are exported as train_logs' and val_logs' samples.
  assert.deepEqual(navtrainLogs.sample, [...TRAIN_LOGS.sample, ...VAL_LOGS.sample]);
  const trainSample = new Set(TRAIN_LOGS.sample);
  for (const log of navtrainLogs.sample.slice(0, 64)) assert.ok(trainSample.has(log), `${log} is in train_logs`);
  assert.match(navtrainLogs.sampleRule, /also in train_logs.*also in val_logs/);
  assert.match(VAL_LOGS.sampleRule, /navtrain's scene_filter\.log_names .* also in val_logs/);
  assert.equal(navtestLogs.sample.length, 64);
  assert.equal(SCENE_FILTERS.navtrain.tokens?.sample.length, 1024);
  assert.equal(SCENE_FILTERS.navtest.tokens?.sample.length, 512);
  // navtest's logs are test logs: none of them is a train or val log sample name.
  const valSample = new Set(VAL_LOGS.sample);
  for (const log of navtestLogs.sample) assert.ok(!trainSample.has(log) && !valSample.has(log));
  for (const list of [navtrainLogs, navtestLogs, SCENE_FILTERS.navtrain.tokens, SCENE_FILTERS.navtest.tokens, VAL_LOGS, TEST_LOGS]) {
    assert.ok(list);
    assert.equal(new Set(list.sample).size, list.sample.length);
    assert.match(list.sha256, /^[0-9a-f]{64}$/);
  }
  for (const token of SCENE_FILTERS.navtrain.tokens?.sample ?? []) assert.match(token, /^[0-9a-f]{16}$/);
  for (const log of navtrainLogs.sample) assert.match(log, /^\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}_veh-\d+_\d{5}_\d{5}$/);
});

test('HfArgumentParser (transformers 4.37.2 training_args.py + the Stage 1 dataclasses) has the fields the Stage 1 command uses', () => {
  for (const name of ['save_steps', 'max_steps', 'seed', 'dataloader_num_workers', 'tensorboard_id', 'freeze_llm', 'ps_version', 'output_dir']) {
    hfField(name);
  }
  assert.equal(hfField('save_steps').kind, 'float');
  assert.equal(hfField('save_steps').default, 500);
  assert.equal(hfField('max_steps').kind, 'int');
  assert.equal(hfField('max_steps').default, -1);
  assert.equal(hfField('seed').default, 42);
  assert.equal(hfField('dataloader_num_workers').default, 0);
  assert.equal(hfField('tensorboard_id').dataclass, 'DataTrainingArguments');
  assert.equal(hfField('tensorboard_id').kind, 'str');
  assert.equal(hfField('tensorboard_id').default, null);
  assert.equal(HF_FIELDS.length, 160);
  assert.equal(HF_PARSER.allowAbbrev, true);
});

test('internvl_chat_finetune_torchax.py: ps_version is Literal[v1, v2] (choices), freeze_llm is a bool taking an optional value', () => {
  const ps = hfField('ps_version');
  assert.equal(ps.kind, 'choice');
  assert.deepEqual(ps.choices, ['v1', 'v2']);
  assert.equal(ps.default, 'v2');
  const freeze = hfField('freeze_llm');
  assert.equal(freeze.kind, 'bool');
  assert.equal(freeze.nargs, '?');
  assert.equal(freeze.const, true);
  assert.equal(freeze.default, false);
  assert.equal(freeze.negation, null);
  assert.equal(hfField('grad_checkpoint').negation, '--no_grad_checkpoint');
  assert.equal(hfField('meta_path').default, null, 'meta_path: str = field(default=None)');
});

test('training_args.py: output_dir is required; enum and metadata choices are argparse choices; lists take nargs +', () => {
  const out = hfField('output_dir');
  assert.equal(out.required, true);
  assert.deepEqual(out.default, { kind: 'required' });
  assert.equal(HF_FIELDS.filter((f) => f.required).map((f) => f.name).join(), 'output_dir');
  assert.deepEqual(hfField('evaluation_strategy').choices, ['no', 'steps', 'epoch']);
  assert.deepEqual(hfField('save_strategy').choices, ['no', 'steps', 'epoch']);
  assert.deepEqual(hfField('log_level').choices, ['detail', 'debug', 'info', 'warning', 'error', 'critical', 'passive']);
  assert.equal(hfField('report_to').nargs, '+');
  assert.equal(hfField('lr_scheduler_kwargs').typeName, 'Dict');
  assert.deepEqual(hfField('lr_scheduler_kwargs').default, { kind: 'factory', factory: 'dict', value: {} });
  // Optional[bool] = None takes exactly one value.
  assert.equal(hfField('tf32').nargs, null);
  assert.equal(hfField('per_gpu_train_batch_size').deprecated, true);
  assert.ok(!HF_FIELDS.some((f) => f.name === '_n_gpu'), 'init=False fields are not arguments');
});

test('no two HfArgumentParser fields share an option string (argparse would refuse the parser)', () => {
  const strings = HF_FIELDS.flatMap((f) => [...f.optionStrings, ...(f.negation ? [f.negation] : [])]);
  assert.equal(new Set(strings).size, strings.length);
});
