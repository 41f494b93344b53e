/**
 * The simulator's hydra (docker/simulator/hydra-config.ts, hydra-job.ts) against upstream: each test
 * names the upstream fact it reproduces. The expected texts were printed by the real hydra-core
 * 1.3.2 / omegaconf 2.3.0 (Python 3.11) composing the real config tree of zorrofox/recogdrive
 * @ 7ed3135 (navsim/planning/script/config), with site-packages at /usr/local/lib/python3.11.
 * Failures run the simulator as a process (`node main.ts python <script> ...`), with and without
 * HYDRA_FULL_ERROR=1; composition facts are checked on HydraConfig directly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HydraConfig, HydraFailure } from '../../docker/simulator/hydra-config.ts';
import { metricCachingConfig, pdmScoringConfig, trainingConfig } from '../../docker/simulator/scripts/navsim-configs.ts';
import { PythonError } from '../../docker/simulator/errors.ts';
import { PRIMARY_CONFIGS } from '../../docker/simulator/upstream/hydra-configs.ts';
import { SCENE_FILTERS, TRAIN_LOGS } from '../../docker/simulator/upstream/log-splits.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'docker/simulator/main.ts');
const REPO = '/recogdrive';
const SCRIPTS = `${REPO}/navsim/planning/script`;
const SITE = '/usr/local/lib/python3.11/site-packages';
const HINT = 'Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.';
const METRIC = 'navsim/planning/script/run_metric_caching.py';
const TRAINING = 'navsim/planning/script/run_training_recogdrive_torchax.py';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-sim-hydra-'));
const repoDir = path.join(tmp, 'repo');
fs.mkdirSync(repoDir);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    RECOGDRIVE_SIM_MOUNTS: JSON.stringify([{ target: REPO, source: repoDir, readOnly: false }]),
    RECOGDRIVE_SIM_WORKDIR: REPO,
    RECOGDRIVE_SIM_DURATION_MS: '20',
    RECOGDRIVE_SIM_STATE_DIR: path.join(tmp, 'state'),
    NAVSIM_EXP_ROOT: `${REPO}/exp`,
    OPENSCENE_DATA_ROOT: `${REPO}/tests/dummy_data`,
    NUPLAN_MAPS_ROOT: `${REPO}/tests/dummy_maps`,
    NUPLAN_MAP_VERSION: 'nuplan-maps-v1.0',
  };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}

function run(args: readonly string[], environment: NodeJS.ProcessEnv, nodeArgs: readonly string[] = [MAIN]): Promise<Result> {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `python <script> <overrides>` without and with HYDRA_FULL_ERROR=1. */
async function both(script: string, args: readonly string[], extra: Record<string, string | undefined> = {}): Promise<{ short: Result; full: Result }> {
  const [short, full] = await Promise.all([
    run(['python', script, ...args], env({ ...extra, HYDRA_FULL_ERROR: undefined })),
    run(['python', script, ...args], env({ ...extra, HYDRA_FULL_ERROR: '1' })),
  ]);
  return { short, full };
}

const lines = (text: string) => text.replace(/\n$/, '').split('\n');
const lastLines = (text: string, n: number) => lines(text).slice(-n);

const hydraEnv = { NAVSIM_EXP_ROOT: '/exp', OPENSCENE_DATA_ROOT: '/data' };
const compose = (schema: ReturnType<typeof trainingConfig>, args: string[], environment: NodeJS.ProcessEnv = hydraEnv) =>
  HydraConfig.compose(schema, args, environment, { scriptPath: `${SCRIPTS}/x.py` });
const failure = (fn: () => unknown): HydraFailure => {
  try {
    fn();
  } catch (error) {
    if (error instanceof HydraFailure) return error;
    throw error;
  }
  return assert.fail('expected a HydraFailure');
};

// Printed by hydra-core 1.3.2 for `python navsim/planning/script/run_metric_caching.py seed=7 train_test_split=navtest`
// with HYDRA_FULL_ERROR=1: the OmegaConf cause, then the hydra exception raised from it.
const SEED_OVERRIDE_FULL_ERROR = `Traceback (most recent call last):
  File "${SITE}/hydra/_internal/config_loader_impl.py", line 390, in _apply_overrides_to_config
    OmegaConf.update(cfg, key, value, merge=True)
  File "${SITE}/omegaconf/omegaconf.py", line 741, in update
    root.__setattr__(last_key, value)
  File "${SITE}/omegaconf/dictconfig.py", line 337, in __setattr__
    raise e
  File "${SITE}/omegaconf/dictconfig.py", line 334, in __setattr__
    self.__set_impl(key, value)
  File "${SITE}/omegaconf/dictconfig.py", line 318, in __set_impl
    self._set_item_impl(key, value)
  File "${SITE}/omegaconf/basecontainer.py", line 549, in _set_item_impl
    self._validate_set(key, value)
  File "${SITE}/omegaconf/dictconfig.py", line 180, in _validate_set
    target = self._get_node(key) if key is not None else self
             ^^^^^^^^^^^^^^^^^^^
  File "${SITE}/omegaconf/dictconfig.py", line 475, in _get_node
    self._validate_get(key)
  File "${SITE}/omegaconf/dictconfig.py", line 164, in _validate_get
    self._format_and_raise(
  File "${SITE}/omegaconf/base.py", line 231, in _format_and_raise
    format_and_raise(
  File "${SITE}/omegaconf/_utils.py", line 899, in format_and_raise
    _raise(ex, cause)
  File "${SITE}/omegaconf/_utils.py", line 797, in _raise
    raise ex.with_traceback(sys.exc_info()[2])  # set env var OC_CAUSE=1 for full trace
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
omegaconf.errors.ConfigAttributeError: Key 'seed' is not in struct
    full_key: seed
    object_type=dict

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "${SCRIPTS}/run_metric_caching.py", line 36, in <module>
    main()
  File "${SITE}/hydra/main.py", line 94, in decorated_main
    _run_hydra(
  File "${SITE}/hydra/_internal/utils.py", line 394, in _run_hydra
    _run_app(
  File "${SITE}/hydra/_internal/utils.py", line 457, in _run_app
    run_and_report(
  File "${SITE}/hydra/_internal/utils.py", line 223, in run_and_report
    raise ex
  File "${SITE}/hydra/_internal/utils.py", line 220, in run_and_report
    return func()
           ^^^^^^
  File "${SITE}/hydra/_internal/utils.py", line 458, in <lambda>
    lambda: hydra.run(
            ^^^^^^^^^^
  File "${SITE}/hydra/_internal/hydra.py", line 105, in run
    cfg = self.compose_config(
          ^^^^^^^^^^^^^^^^^^^^
  File "${SITE}/hydra/_internal/hydra.py", line 594, in compose_config
    cfg = self.config_loader.load_configuration(
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "${SITE}/hydra/_internal/config_loader_impl.py", line 142, in load_configuration
    return self._load_configuration_impl(
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "${SITE}/hydra/_internal/config_loader_impl.py", line 276, in _load_configuration_impl
    ConfigLoaderImpl._apply_overrides_to_config(config_overrides, cfg)
  File "${SITE}/hydra/_internal/config_loader_impl.py", line 392, in _apply_overrides_to_config
    raise ConfigCompositionException(
hydra.errors.ConfigCompositionException: Could not override 'seed'.
To append to your config use +seed=7
`;

describe('hydra failures print what hydra-core 1.3.2 prints, exit 1', { concurrency: 4 }, () => {
  test('(a) default_metric_caching.yaml has no seed: `seed=7` fails in OmegaConf.update (config_loader_impl.py _apply_overrides_to_config)', async () => {
    const { short, full } = await both(METRIC, ['seed=7', 'train_test_split=navtest']);
    assert.equal(short.code, 1);
    assert.equal(
      short.stderr,
      `Could not override 'seed'.\nTo append to your config use +seed=7\nKey 'seed' is not in struct\n    full_key: seed\n    object_type=dict\n\n${HINT}\n`,
    );
    assert.equal(full.code, 1);
    assert.equal(full.stderr, SEED_OVERRIDE_FULL_ERROR);
    assert.equal(short.stdout + full.stdout, '');
  });

  test('(a) recogdrive_agent.yaml has no grpo_cfg node: `agent.grpo_cfg.bc_coeff=0.1` names the first missing component (ConfigKeyError)', async () => {
    const args = ['agent=recogdrive_agent', 'train_test_split=navtrain', 'experiment_name=x', 'agent.grpo_cfg.bc_coeff=0.1'];
    const { short, full } = await both(TRAINING, args);
    assert.equal(short.code, 1);
    assert.equal(
      short.stderr,
      `Could not override 'agent.grpo_cfg.bc_coeff'.\nTo append to your config use +agent.grpo_cfg.bc_coeff=0.1\nKey 'grpo_cfg' is not in struct\n    full_key: agent.grpo_cfg\n    object_type=dict\n\n${HINT}\n`,
    );
    assert.equal(full.code, 1);
    assert.match(full.stderr, /^Traceback \(most recent call last\):\n {2}File ".*\/config_loader_impl\.py", line 390, in _apply_overrides_to_config\n/);
    assert.match(full.stderr, /\n {2}File ".*\/omegaconf\/omegaconf\.py", line 716, in update\n {4}root\[key_\] = \{\}\n {4}~~~~\^\^\^\^\^\^\n/);
    assert.match(full.stderr, /\nomegaconf\.errors\.ConfigKeyError: Key 'grpo_cfg' is not in struct\n {4}full_key: agent\.grpo_cfg\n {4}object_type=dict\n\nThe above exception was the direct cause of the following exception:\n\n/);
    assert.match(full.stderr, new RegExp(`File "${SCRIPTS}/run_training_recogdrive_torchax\\.py", line 329, in <module>\\n {4}main\\(\\)\\n`));
    assert.deepEqual(lastLines(full.stderr, 2), [
      "hydra.errors.ConfigCompositionException: Could not override 'agent.grpo_cfg.bc_coeff'.",
      'To append to your config use +agent.grpo_cfg.bc_coeff=0.1',
    ]);
  });

  test('(a) common/worker/single_machine_thread_pool.yaml has no threads_per_node: refused once that worker is chosen', async () => {
    const { short, full } = await both(METRIC, ['train_test_split=navtest', 'worker=single_machine_thread_pool', 'worker.threads_per_node=4']);
    assert.equal(short.code, 1);
    assert.deepEqual(lines(short.stderr).slice(0, 5), [
      "Could not override 'worker.threads_per_node'.",
      'To append to your config use +worker.threads_per_node=4',
      "Key 'threads_per_node' is not in struct",
      '    full_key: worker.threads_per_node',
      '    object_type=dict',
    ]);
    assert.equal(full.code, 1);
    assert.match(full.stderr, /\nomegaconf\.errors\.ConfigAttributeError: Key 'threads_per_node' is not in struct\n/);
  });

  test('(b) common/worker has no foo.yaml: MissingConfigException in default_common.yaml, which declares the worker group', async () => {
    const { short, full } = await both(METRIC, ['worker=foo', 'train_test_split=navtest']);
    assert.equal(short.code, 1);
    assert.equal(
      short.stderr,
      [
        "In 'default_common': Could not find 'worker/foo'",
        '',
        "Available options in 'worker':",
        '\tray_distributed',
        '\tray_distributed_no_torch',
        '\tsequential',
        '\tsingle_machine_thread_pool',
        'Config search path:',
        '\tprovider=hydra, path=pkg://hydra.conf',
        `\tprovider=main, path=file://${SCRIPTS}/config/metric_caching`,
        '\tprovider=hydra.searchpath in main, path=pkg://navsim.planning.script.config.common',
        '\tprovider=schema, path=structured://',
        '',
        HINT,
        '',
      ].join('\n'),
    );
    assert.equal(full.code, 1);
    assert.match(full.stderr, /\n {2}File ".*\/hydra\/_internal\/defaults_list\.py", line 799, in config_not_found_error\n {4}raise MissingConfigException\(\nhydra\.errors\.MissingConfigException: In 'default_common': Could not find 'worker\/foo'\n/);
    // default_common is one level below the primary: two add_child recursions.
    assert.equal(full.stderr.match(/line 520, in add_child/g)?.length, 2);
  });

  test('(b) default_training.yaml itself declares `agent`: `agent=foo` is "In \'default_training\'"', async () => {
    const { short, full } = await both(TRAINING, ['agent=foo', 'train_test_split=navtrain', 'experiment_name=x']);
    assert.equal(short.code, 1);
    assert.equal(lines(short.stderr)[0], "In 'default_training': Could not find 'agent/foo'");
    assert.deepEqual(lines(short.stderr).slice(2, 10), [
      "Available options in 'agent':",
      '\tconstant_velocity_agent',
      '\tego_status_mlp_agent',
      '\thuman_agent',
      '\tinternvl_agent',
      '\tqwen_agent',
      '\trecogdrive_agent',
      '\ttransfuser_agent',
    ]);
    assert.equal(full.stderr.match(/line 520, in add_child/g)?.length, 1);
  });

  test('(c) default_common.yaml leaves train_test_split at ???: "You must specify" (defaults_list.py _check_not_missing)', async () => {
    const { short, full } = await both(TRAINING, ['agent=recogdrive_agent', 'experiment_name=x']);
    assert.equal(short.code, 1);
    assert.equal(
      short.stderr,
      "You must specify 'train_test_split', e.g, train_test_split=<OPTION>\nAvailable options:\n\tmini\n\tnavmini\n\tnavtest\n\tnavtrain\n\tprivate_test_e2e\n\ttest\n\ttrainval\n\twarmup_test_e2e\n\n" +
        `${HINT}\n`,
    );
    assert.equal(full.code, 1);
    assert.match(full.stderr, /line 322, in _check_not_missing\n {4}raise ConfigCompositionException\(msg \+ opt_list\)\nhydra\.errors\.ConfigCompositionException: You must specify 'train_test_split'/);
  });

  test('(c) a missing experiment_name fails resolving hydra.run.dir in run_job, and trips hydra\'s error formatting (AssertionError)', async () => {
    const { short, full } = await both(TRAINING, ['agent=recogdrive_agent', 'train_test_split=navtrain']);
    const ending = [
      `  File "${SITE}/omegaconf/omegaconf.py", line 1150, in _select_one`,
      '    raise MissingMandatoryValue(',
      'omegaconf.errors.InterpolationToMissingValueError: MissingMandatoryValue while resolving interpolation: Missing mandatory value: experiment_name',
      '    full_key: hydra.run.dir',
      '    object_type=dict',
    ];
    assert.equal(short.code, 1);
    assert.deepEqual(lines(short.stderr).slice(0, 5), [
      "An error occurred during Hydra's exception formatting:",
      'AssertionError()',
      'Traceback (most recent call last):',
      `  File "${SCRIPTS}/run_training_recogdrive_torchax.py", line 329, in <module>`,
      '    main()',
    ]);
    assert.match(short.stderr, /line 302, in run_and_report\n {4}raise ex\n/);
    assert.deepEqual(lastLines(short.stderr, 5), ending);
    // hydra.run.dir -> ${output_dir} -> ${oc.env:NAVSIM_EXP_ROOT}/${experiment_name}/${experiment_uid}: 51 frames.
    assert.equal(short.stderr.match(/^ {2}File /gm)?.length, 51);
    assert.equal(full.code, 1);
    assert.equal(lines(full.stderr)[0], 'Traceback (most recent call last):');
    assert.match(full.stderr, /line 223, in run_and_report\n {4}raise ex\n/);
    assert.deepEqual(lastLines(full.stderr, 5), ending);
  });

  test('(c) NAVSIM_EXP_ROOT unset: oc.env fails resolving hydra.run.dir (KeyError raised while resolving interpolation)', async () => {
    const { short } = await both(METRIC, ['train_test_split=navtest'], { NAVSIM_EXP_ROOT: undefined });
    assert.equal(short.code, 1);
    assert.deepEqual(lastLines(short.stderr, 5), [
      `  File "${SITE}/omegaconf/resolvers/oc/__init__.py", line 38, in env`,
      `    raise KeyError(f"Environment variable '{key}' not found")`,
      `omegaconf.errors.InterpolationResolutionError: KeyError raised while resolving interpolation: "Environment variable 'NAVSIM_EXP_ROOT' not found"`,
      '    full_key: hydra.run.dir',
      '    object_type=dict',
    ]);
  });

  test('(d) `+seed=1` on default_training.yaml (seed: 0) is refused: an item is already there', async () => {
    const { short, full } = await both(TRAINING, ['agent=recogdrive_agent', 'train_test_split=navtrain', 'experiment_name=x', '+seed=1']);
    assert.equal(short.code, 1);
    assert.equal(
      short.stderr,
      `Could not append to config. An item is already at 'seed'.\nEither remove + prefix: 'seed=1'\nOr add a second + to add or override 'seed': '++seed=1'\n\n\n${HINT}\n`,
    );
    assert.equal(full.code, 1);
    assert.match(full.stderr, /line 377, in _apply_overrides_to_config\n {4}raise ConfigCompositionException\(\nhydra\.errors\.ConfigCompositionException: Could not append to config\. An item is already at 'seed'\.\n/);
    assert.ok(full.stderr.endsWith("Or add a second + to add or override 'seed': '++seed=1'\n\n"));
  });

  test('(e) an override without `=` is an OverrideParseException (hydra override grammar)', async () => {
    const { short, full } = await both(METRIC, ['train_test_split=navtest', 'foo']);
    const message = "Error parsing override 'foo'\nmissing EQUAL at '<EOF>'\nSee https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details";
    assert.equal(short.code, 1);
    assert.equal(short.stderr, `${message}\n\n${HINT}\n`);
    assert.equal(full.code, 1);
    assert.match(full.stderr, /line 96, in parse_overrides\n {4}raise OverrideParseException\(\n/);
    assert.ok(full.stderr.endsWith(`hydra.errors.OverrideParseException: ${message}\n`));
  });

  test('(e) a character the override lexer has no token for: LexerNoViableAltException with a caret under it', async () => {
    const { short } = await both(TRAINING, ['train_test_split=navtrain', 'experiment_name=a#b']);
    assert.equal(short.code, 1);
    assert.deepEqual(lines(short.stderr).slice(0, 2), ['LexerNoViableAltException: experiment_name=a#b', `${' '.repeat(44)}^`]);
  });

  test('a bare `a,b` value is a sweep: refused without --multirun (config_loader_impl.py validate_sweep_overrides_legal)', async () => {
    const { short } = await both(TRAINING, ['train_test_split=navtrain', 'experiment_name=x', 'agent.lr=1,2']);
    assert.equal(short.code, 1);
    assert.deepEqual(lines(short.stderr).slice(0, 4), [
      "Ambiguous value for argument 'agent.lr=1,2'",
      '1. To use it as a list, use key=[value1,value2]',
      "2. To use it as string, quote the value: key=\\'value1,value2\\'",
      '3. To sweep over it, add --multirun to your command line',
    ]);
  });

  test('default_metric_caching.yaml has no agent group: `agent=...` matches nothing in the defaults list', async () => {
    const { short } = await both(METRIC, ['train_test_split=navtest', 'agent=recogdrive_agent']);
    assert.equal(short.code, 1);
    assert.deepEqual(lines(short.stderr).slice(0, 2), ["Could not override 'agent'. No match in the defaults list.", 'To append to your default list use +agent=recogdrive_agent']);
  });

  test('hydra.* overrides beyond what the stage commands use are refused by the simulator (not silently accepted)', async () => {
    const result = await run(['python', METRIC, 'train_test_split=navtest', 'hydra.run.dir=/tmp/x'], env());
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^recogdrive-sim: hydra override hydra\.run\.dir=\/tmp\/x: overriding hydra's own configuration is not simulated$/m);
  });
});

describe('composition follows the upstream configs (upstream/hydra-configs.ts)', () => {
  test('default_run_pdm_score.yaml: worker ray_distributed_no_torch, `override train_test_split: navtest` (scene_filter navtest), agent constant_velocity_agent, no seed', () => {
    const cfg = compose(pdmScoringConfig(), ['experiment_name=x']);
    assert.deepEqual(cfg.choices(), {
      agent: 'constant_velocity_agent',
      worker: 'ray_distributed_no_torch',
      train_test_split: 'navtest',
      'train_test_split/scene_filter': 'navtest',
    });
    assert.equal(cfg.str('train_test_split.data_split'), 'test');
    assert.equal(cfg.get('worker._target_'), 'navsim.planning.utils.multithreading.worker_ray_no_torch.RayDistributedNoTorch');
    assert.equal(cfg.has('seed'), false);
    assert.throws(
      () => cfg.get('seed'),
      (error: unknown) => error instanceof PythonError && error.type === 'omegaconf.errors.ConfigAttributeError' && error.message === "Key 'seed' is not in struct\n    full_key: seed\n    object_type=dict",
    );
    assert.equal(cfg.listCount('train_test_split.scene_filter.tokens'), 12146);
  });

  test('the default composition of default_run_pdm_score.yaml matches hydra\'s, key for key (defaultComposition.keys)', () => {
    const cfg = compose(pdmScoringConfig(), ['experiment_name=x']);
    for (const [key, value] of Object.entries(PRIMARY_CONFIGS.default_run_pdm_score.defaultComposition.keys)) {
      if (key.startsWith('hydra.')) {
        assert.ok(key.slice('hydra.'.length) !== '' && cfg.hydra(key.slice('hydra.'.length)) !== undefined, key);
        continue;
      }
      assert.ok(cfg.has(key), key);
      if (value === null || typeof value !== 'object') assert.equal(cfg.get(key), value, key);
    }
  });

  test('default_training.yaml: worker ray_distributed_no_torch by default; threads_per_node (common/worker/ray_distributed_no_torch.yaml) may be overridden', () => {
    const cfg = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', 'worker.threads_per_node=4']);
    assert.equal(cfg.group('worker'), 'ray_distributed_no_torch');
    assert.equal(cfg.group('agent'), 'ego_status_mlp_agent');
    assert.equal(cfg.get('worker.threads_per_node'), 4);
    assert.equal(cfg.int('seed'), 0);
    const metric = compose(metricCachingConfig(), ['train_test_split=navtest', 'worker.threads_per_node=4']);
    assert.equal(metric.get('worker.threads_per_node'), 4);
  });

  test('hydra 1.3.2: `+key=value` on a key whose value is null is accepted (common/agent/ego_status_mlp_agent.yaml checkpoint_path: null); `++` forces', () => {
    const cfg = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', '+agent.checkpoint_path=/ckpt', '++seed=3', '+new.nested=1']);
    assert.equal(cfg.get('agent.checkpoint_path'), '/ckpt');
    assert.equal(cfg.get('seed'), 3);
    assert.equal(cfg.get('new.nested'), 1);
  });

  test('OmegaConf 2.3: a scalar replaces a dict node (`trainer.params=5`), a list merged into a dict fails (ConfigTypeError)', () => {
    assert.equal(compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', 'trainer.params=5']).get('trainer.params'), 5);
    const f = failure(() => compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', 'trainer.params=[1,2]']));
    assert.equal(f.message, 'Error merging override trainer.params=[1,2]');
    assert.equal(f.chained?.type, 'omegaconf.errors.ConfigTypeError');
    assert.equal(f.chained?.message, 'Cannot merge DictConfig with ListConfig\n    full_key: trainer.params\n    object_type=dict');
  });

  test('hydra\'s value grammar: quoted strings, lists, True/False, null, ints and floats, escapes, `~key` deletes', () => {
    const cfg = compose(trainingConfig(), [
      'train_test_split=navtrain',
      'experiment_name=x',
      "+a=[x,'b c', 1, 2.50, true, null]",
      '+b="q w"',
      '+c=  sp ace  ',
      "+d='a,b'",
      '+e=1e-4',
      '+f=a\\,b\\ c',
      'use_cache_without_dataset=True',
      '~val_logs',
    ]);
    assert.deepEqual(cfg.get('a'), ['x', 'b c', 1, 2.5, true, null]);
    assert.equal(cfg.get('b'), 'q w');
    assert.equal(cfg.get('c'), 'sp ace');
    assert.equal(cfg.get('d'), 'a,b');
    assert.equal(cfg.get('e'), 1e-4);
    assert.equal(cfg.get('f'), 'a,b c');
    assert.equal(cfg.bool('use_cache_without_dataset'), true);
    assert.equal(cfg.has('val_logs'), false);
    assert.equal(failure(() => compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', '~seed=1'])).message, "Could not delete from config. The value of 'seed' is 0 and not 1.");
  });

  test('interpolations: ${oc.env:...}, ${a.b} and ${now:${date_format}} (resolved once per run); config.yaml keeps them as text', () => {
    const cfg = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=exp']);
    const uid = cfg.str('experiment_uid');
    assert.match(uid, /^\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}$/);
    assert.equal(cfg.str('output_dir'), `/exp/exp/${uid}`);
    assert.equal(cfg.runDir(), `/exp/exp/${uid}`);
    assert.equal(cfg.str('navsim_log_path'), '/data/navsim_logs/trainval');
    assert.equal(cfg.str('trainer.params.default_root_dir'), `/exp/exp/${uid}`);
    const yaml = cfg.toYaml();
    assert.match(yaml, /^output_dir: \$\{oc\.env:NAVSIM_EXP_ROOT\}\/\$\{experiment_name\}\/\$\{experiment_uid\}$/m);
    assert.match(yaml, /^experiment_uid: \$\{now:\$\{date_format\}\}$/m);
    assert.doesNotMatch(yaml, /^hydra:/m);
    const missingEnv = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=exp'], { NAVSIM_EXP_ROOT: '/exp' });
    assert.throws(
      () => missingEnv.str('navsim_log_path'),
      (error: unknown) =>
        error instanceof PythonError &&
        error.type === 'omegaconf.errors.InterpolationResolutionError' &&
        error.message === `KeyError raised while resolving interpolation: "Environment variable 'OPENSCENE_DATA_ROOT' not found"\n    full_key: navsim_log_path\n    object_type=dict`,
    );
  });

  test('long lists: cfg.list() is the curated SAMPLE (log-splits.ts), listCount() the upstream count (train_logs: 13180)', () => {
    const cfg = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x']);
    assert.deepEqual(cfg.list('train_logs'), [...TRAIN_LOGS.sample]);
    assert.equal(cfg.listCount('train_logs'), 13180);
    assert.equal(cfg.isSampled('train_logs'), true);
    assert.deepEqual(cfg.list('train_test_split.scene_filter.log_names'), [...(SCENE_FILTERS.navtrain.logNames?.sample ?? [])]);
    assert.equal(cfg.listCount('train_test_split.scene_filter.log_names'), 1192);
    const empty = compose(trainingConfig(), ['train_test_split=navtrain', 'experiment_name=x', 'train_logs=[]']);
    assert.deepEqual(empty.list('train_logs'), []);
    assert.equal(empty.listCount('train_logs'), 0);
  });
});

// ---- job logging ---------------------------------------------------------------------------

/** Runs runHydraScript in a fresh process with a task that logs two records. */
function loggingJob(script: string, schema: string, logging: 'hydra' | 'nuplan', args: readonly string[], fullError = true): Promise<Result> {
  const driver = `
    import { ContainerFs } from ${JSON.stringify(path.join(ROOT, 'docker/simulator/container-fs.ts'))};
    import { MountTable } from ${JSON.stringify(path.join(ROOT, 'docker/simulator/paths.ts'))};
    import { readControls } from ${JSON.stringify(path.join(ROOT, 'docker/simulator/controls.ts'))};
    import { runHydraScript } from ${JSON.stringify(path.join(ROOT, 'docker/simulator/hydra-job.ts'))};
    import * as configs from ${JSON.stringify(path.join(ROOT, 'docker/simulator/scripts/navsim-configs.ts'))};
    const fs = new ContainerFs(MountTable.fromEnv(process.env));
    const ctx = { scriptPath: ${JSON.stringify(`${SCRIPTS}/${script}`)}, scriptName: ${JSON.stringify(script)}, args: ${JSON.stringify(args)}, env: process.env, fs, controls: readControls(process.env) };
    try {
      await runHydraScript(ctx, configs.${schema}(), async (job) => {
        job.info('Starting Metric Caching...', 29);
        job.logger('navsim.planning.script.builders.worker_pool_builder', 'navsim/planning/script/builders/worker_pool_builder.py').warning('a warning', 51);
        process.stdout.write('OUTPUT_DIR=' + job.outputDir + '\\n');
      }, { logging: ${JSON.stringify(logging)} });
    } catch (error) {
      // As python.ts does: a PythonExit prints its lines and sets the exit code.
      if (error?.name !== 'PythonExit') throw error;
      for (const line of error.lines) process.stderr.write(line + '\\n');
      process.exitCode = error.code;
    }
  `;
  return run([], env({ HYDRA_FULL_ERROR: fullError ? '1' : undefined }), ['--input-type=module', '-e', driver]);
}

const HYDRA_LINE = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\]\[([\w.]+)\]\[(INFO|WARNING)\] - (.*)$/;
const NUPLAN_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (INFO|WARNING) \{(\/[^:]+):(\d+)\} {2}(.*)$/;
const hostPath = (containerPath: string) => path.join(repoDir, path.relative(REPO, containerPath));

describe('job logging', () => {
  test('hydra 1.3.2 job_logging: `[asctime][name][LEVEL] - message` on stdout and in <output_dir>/<job name>.log', async () => {
    const result = await loggingJob('run_training_recogdrive_torchax.py', 'trainingConfig', 'hydra', ['train_test_split=navtrain', 'experiment_name=logs']);
    assert.equal(result.code, 0, result.stderr);
    const [info, warning, outputLine] = lines(result.stdout);
    assert.deepEqual(HYDRA_LINE.exec(info ?? '')?.slice(1), ['__main__', 'INFO', 'Starting Metric Caching...']);
    assert.deepEqual(HYDRA_LINE.exec(warning ?? '')?.slice(1), ['navsim.planning.script.builders.worker_pool_builder', 'WARNING', 'a warning']);
    const outputDir = (outputLine ?? '').replace('OUTPUT_DIR=', '');
    assert.match(outputDir, /^\/recogdrive\/exp\/logs\/\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}$/);
    assert.equal(fs.readFileSync(hostPath(`${outputDir}/run_training_recogdrive_torchax.log`), 'utf8'), `${info}\n${warning}\n`);
    const hydraDir = hostPath(`${outputDir}/code/hydra`);
    assert.deepEqual(fs.readdirSync(hydraDir).sort(), ['config.yaml', 'hydra.yaml', 'overrides.yaml']);
    assert.equal(fs.readFileSync(path.join(hydraDir, 'overrides.yaml'), 'utf8'), '- train_test_split=navtrain\n- experiment_name=logs\n');
    assert.match(fs.readFileSync(path.join(hydraDir, 'hydra.yaml'), 'utf8'), /^ {6}train_test_split: navtrain$/m);
  });

  test('nuplan-devkit v1.2 build_logger: `asctime LEVEL {pathname:lineno}  message` on stdout and in log.txt; the job .log keeps hydra\'s format', async () => {
    const result = await loggingJob('run_metric_caching.py', 'metricCachingConfig', 'nuplan', ['train_test_split=navtest', 'cache.cache_path=/recogdrive/data/metric_cache']);
    assert.equal(result.code, 0, result.stderr);
    const [info, warning, outputLine] = lines(result.stdout);
    assert.deepEqual(NUPLAN_LINE.exec(info ?? '')?.slice(1), ['INFO', `${SCRIPTS}/run_metric_caching.py`, '29', 'Starting Metric Caching...']);
    assert.deepEqual(NUPLAN_LINE.exec(warning ?? '')?.slice(1), ['WARNING', `${SCRIPTS}/builders/worker_pool_builder.py`, '51', 'a warning']);
    assert.equal(outputLine, 'OUTPUT_DIR=/recogdrive/data/metric_cache/metadata');
    const metadata = hostPath('/recogdrive/data/metric_cache/metadata');
    assert.equal(fs.readFileSync(path.join(metadata, 'log.txt'), 'utf8'), `${info}\n${warning}\n`);
    const jobLog = lines(fs.readFileSync(path.join(metadata, 'run_metric_caching.log'), 'utf8'));
    assert.deepEqual(
      jobLog.map((line) => HYDRA_LINE.exec(line)?.slice(1)),
      [
        ['__main__', 'INFO', 'Starting Metric Caching...'],
        ['navsim.planning.script.builders.worker_pool_builder', 'WARNING', 'a warning'],
      ],
    );
    // The same record, at the same time, in both formats.
    assert.equal((info ?? '').slice(0, 23), (jobLog[0] ?? '').slice(1, 24));
  });

  test('nuplan build_logger: an unknown cfg.logger_level fails with KeyError (LOGGING_LEVEL_MAP)', async () => {
    const result = await loggingJob('run_metric_caching.py', 'metricCachingConfig', 'nuplan', ['train_test_split=navtest', 'logger_level=verbose']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^Error executing job with overrides: \['train_test_split=navtest', 'logger_level=verbose'\]$/m);
    assert.match(result.stderr, /line 109, in configure_logger\n {4}handler\.setLevel\(LOGGING_LEVEL_MAP\[config\.level\]\)\nKeyError: 'verbose'\n$/);
    assert.match(result.stderr, /line 186, in run_job\n {4}ret\.return_value = task_function\(task_cfg\)\n/);
  });

  test('hydra 1.3.2 run_and_report without HYDRA_FULL_ERROR: a task\'s traceback starts at its main() frame, then the hint', async () => {
    const result = await loggingJob('run_metric_caching.py', 'metricCachingConfig', 'nuplan', ['train_test_split=navtest', 'logger_level=verbose'], false);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [
      "Error executing job with overrides: ['train_test_split=navtest', 'logger_level=verbose']",
      'Traceback (most recent call last):',
      `  File "${SCRIPTS}/run_metric_caching.py", line 23, in main`,
      '    build_logger(cfg)',
      `  File "${SITE}/nuplan/planning/script/builders/logging_builder.py", line 134, in build_logger`,
      '    logger = configure_logger(handler_configs, format_str=format_string)',
      `  File "${SITE}/nuplan/planning/script/builders/logging_builder.py", line 109, in configure_logger`,
      '    handler.setLevel(LOGGING_LEVEL_MAP[config.level])',
      "KeyError: 'verbose'",
      '',
      HINT,
    ]);
  });
});

before(() => fs.mkdirSync(path.join(tmp, 'state'), { recursive: true }));
