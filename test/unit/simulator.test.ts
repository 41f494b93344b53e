/**
 * The stage simulator, run as a real subprocess the way the local backend runs it: container
 * paths translated through a mount table (the repo at /recogdrive, one artifact dir per stage),
 * the stage commands of the orchestrator's plan, and faults injected through the environment.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'docker/simulator/main.ts');
const SHIMS = path.join(ROOT, 'docker/simulator/shims');
const REPO = '/recogdrive';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-sim-test-'));
const repoDir = path.join(tmp, 'repo');
const artifact = (name: string) => path.join(tmp, 'artifacts', name);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---- running the simulator -----------------------------------------------------------

interface Mount {
  target: string;
  source: string;
  readOnly: boolean;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The repo mount plus the stage's artifact mounts: [container path, artifact name, read-only]. */
function mounts(...artifacts: [target: string, name: string, readOnly?: boolean][]): Mount[] {
  return [
    { target: REPO, source: repoDir, readOnly: false },
    ...artifacts.map(([target, name, readOnly = false]) => ({ target, source: artifact(name), readOnly })),
  ];
}

/** The environment a stage container gets (navsimEnv of the contracts) plus the simulator's controls. */
function stageEnv(mountTable: Mount[], extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${SHIMS}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    RECOGDRIVE_SIM_MOUNTS: JSON.stringify(mountTable),
    RECOGDRIVE_SIM_WORKDIR: REPO,
    RECOGDRIVE_SIM_DURATION_MS: '50',
    RECOGDRIVE_SIM_STATE_DIR: fs.mkdtempSync(path.join(tmp, 'state-')),
    RECOGDRIVE_SIM_NODE: process.execPath,
    RECOGDRIVE_SIM_MAIN: MAIN,
    PYTHONPATH: `${REPO}:${REPO}/internvl_chat`,
    NAVSIM_EXP_ROOT: `${REPO}/tests/work_dirs`,
    OPENSCENE_DATA_ROOT: `${REPO}/tests/dummy_data`,
    NUPLAN_MAPS_ROOT: `${REPO}/tests/dummy_maps`,
    NUPLAN_MAP_VERSION: 'nuplan-maps-v1.0',
    HYDRA_FULL_ERROR: '1',
    ...extra,
  };
}

function spawnResult(command: string, args: string[], env: NodeJS.ProcessEnv): { done: Promise<Result>; pid: number } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { done, pid: child.pid ?? -1 };
}

/** `node main.ts <argv>`. */
function sim(argv: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return spawnResult(process.execPath, [MAIN, ...argv], env).done;
}

/** A command line through a shell, as a container's `/bin/bash -c ...` (the shims come first on PATH). */
function shell(commandLine: string, env: NodeJS.ProcessEnv, shellPath = '/bin/bash'): Promise<Result> {
  return spawnResult(shellPath, ['-c', commandLine], env).done;
}

function assertExit(result: Result, code: number): void {
  assert.equal(result.code, code, `exit ${result.code} (signal ${result.signal})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

function lastLine(text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? '';
}

function list(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** Every `<log>/<token>/` folder of a cache dir, with its file names. */
function cacheTokens(dir: string): Map<string, string[]> {
  const tokens = new Map<string, string[]>();
  for (const log of list(dir)) {
    if (log === 'metadata' || !fs.statSync(path.join(dir, log)).isDirectory()) continue;
    for (const token of list(path.join(dir, log))) tokens.set(token, list(path.join(dir, log, token)));
  }
  return tokens;
}

/** Paths of every file called `name` below `dir`. */
function filesNamed(dir: string, name: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => path.basename(p) === name);
}

function checkpointMetadata(dir: string): { commit_timestamp_nsecs: number | null } {
  return JSON.parse(fs.readFileSync(path.join(dir, '_CHECKPOINT_METADATA'), 'utf8')) as { commit_timestamp_nsecs: number | null };
}

function csvRows(file: string): string[][] {
  return fs
    .readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => line.split(','));
}

// ---- the stage commands of the orchestrator's plan (pipeline/contracts), scaled down ----

const STAGE1_SCRIPT = 'internvl_chat/internvl/train/internvl_chat_finetune_torchax.py';
const STAGE1_ARGS = [
  '--model_name_or_path', 'models/InternVL3-2B', '--conv_style', 'internvl2_5',
  '--output_dir', 'work_dirs/stage1_output', '--meta_path', 'data/meta.json',
  '--force_image_size', '448', '--max_dynamic_patch', '1', '--down_sample_ratio', '0.5', '--bf16', 'True',
  '--num_train_epochs', '1', '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '1',
  '--learning_rate', '4e-5', '--weight_decay', '0.05', '--warmup_ratio', '0.0', '--logging_steps', '1',
  '--max_seq_length', '2048', '--do_train', 'True', '--grad_checkpoint', 'False', '--group_by_length', 'False',
  '--dynamic_image_size', 'False', '--use_thumbnail', 'False', '--ps_version', 'v2', '--save_steps', '4',
];
const STAGE1_MOUNTS = (out = 'stage1') => mounts([`${REPO}/work_dirs/stage1_output`, out]);

const FEATURE_CACHE =
  'python navsim/planning/script/run_caching_recogdrive_torchax.py agent=recogdrive_agent ' +
  'agent.vlm_path=models/InternVL3-2B agent.vlm_type=internvl train_test_split=navtrain ' +
  'cache_path=/recogdrive/data/cache_output experiment_name=caching_job ' +
  'dataloader.params.batch_size=4 dataloader.params.num_workers=0';
const PIP_FIX = 'pip install --upgrade hydra-core==1.3.2 omegaconf pytest';
const FEATURE_CACHE_MOUNTS = (out = 'feature-cache') =>
  mounts([`${REPO}/work_dirs/stage1_output`, 'stage1', true], [`${REPO}/data/cache_output`, out]);

const TRAINING_SCRIPT = 'navsim/planning/script/run_training_recogdrive_torchax.py';
const COMMON_AGENT = [
  'agent=recogdrive_agent', 'agent.lr=1e-4', 'agent.vlm_path=models/InternVL3-2B', 'agent.cam_type=single',
  'agent.cache_hidden_state=True', 'agent.vlm_type=internvl', 'agent.dit_type=small', 'agent.vlm_size=small',
  'agent.sampling_method=ddim',
];
const STAGE2_ARGS = [
  ...COMMON_AGENT, 'agent.grpo=False', 'trainer.params.max_epochs=2', 'experiment_name=stage2_training',
  'train_test_split=navtrain', 'cache_path=/recogdrive/data/cache_output', 'use_cache_without_dataset=True',
  'force_cache_computation=False', 'dataloader.params.num_workers=0', 'output_dir=/recogdrive/work_dirs/stage2_output',
];
const STAGE2_MOUNTS = (cache = 'feature-cache', out = 'stage2') =>
  mounts([`${REPO}/data/cache_output`, cache, true], [`${REPO}/work_dirs/stage2_output`, out]);

const METRIC_SCRIPT = 'navsim/planning/script/run_metric_caching.py';
const METRIC_ARGS = ['train_test_split=navtrain', 'cache.cache_path=/recogdrive/data/metric_cache', 'worker=ray_distributed_no_torch'];
const METRIC_MOUNTS = (out = 'metric-cache') => mounts([`${REPO}/data/metric_cache`, out]);

const STAGE3_ARGS = (reference = '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt') => [
  ...COMMON_AGENT, 'agent.grpo=True', 'agent.metric_cache_path=/recogdrive/data/metric_cache',
  `agent.reference_policy_checkpoint=${reference}`, `agent.checkpoint_path=${reference}`,
  'trainer.params.max_epochs=3', 'dataloader.params.batch_size=8', 'experiment_name=stage3_grpo',
  'train_test_split=navtrain', 'cache_path=/recogdrive/data/cache_output', 'use_cache_without_dataset=True',
  'force_cache_computation=False', 'dataloader.params.num_workers=0', 'output_dir=/recogdrive/work_dirs/stage3_output',
];
const STAGE3_MOUNTS = (out = 'stage3', metricCache = 'metric-cache') =>
  mounts(
    [`${REPO}/data/cache_output`, 'feature-cache', true],
    [`${REPO}/data/metric_cache`, metricCache, true],
    [`${REPO}/work_dirs/stage2_output`, 'stage2', true],
    [`${REPO}/work_dirs/stage3_output`, out],
  );

const EVAL_SCRIPT = 'navsim/planning/script/run_pdm_score_recogdrive.py';
const EVAL_ARGS = [
  'agent=recogdrive_agent', 'agent.checkpoint_path=/recogdrive/work_dirs/stage3_output/checkpoint-epoch-2.pt',
  'agent.vlm_path=models/InternVL3-2B', 'agent.cam_type=single', 'agent.cache_hidden_state=True', 'agent.vlm_type=internvl',
  'agent.dit_type=small', 'agent.vlm_size=small', 'agent.grpo=False', 'agent.sampling_method=ddim', 'train_test_split=navtest',
  'cache_path=/recogdrive/data/navtest_cache', 'metric_cache_path=/recogdrive/data/navtest_metric_cache',
  'use_cache_without_dataset=True', 'experiment_name=recogdrive_agent_eval', 'output_dir=/recogdrive/work_dirs/eval_output',
];
const EVAL_MOUNTS = (out = 'eval') =>
  mounts([`${REPO}/work_dirs/stage3_output`, 'stage3', true], [`${REPO}/work_dirs/eval_output`, out]);

/** Seed sizes: 3 train logs × 4 tokens, 2 test logs × 4 tokens. */
const TRAIN_TOKENS = 12;
const TEST_TOKENS = 8;

before(async () => {
  const result = await sim(['seed', '--dir', repoDir], stageEnv([]));
  assertExit(result, 0);
});

// ---- seed ----------------------------------------------------------------------------

test('seed writes the scaled-down checkout: model, stage 1 data, raw NAVSIM, maps and the navtest caches', async () => {
  const result = await sim(['seed', '--dir', repoDir], stageEnv([]));
  assertExit(result, 0);
  assert.deepEqual(JSON.parse(result.stdout), { trainTokens: TRAIN_TOKENS, testTokens: TEST_TOKENS, stage1Samples: TRAIN_TOKENS });

  const file = (p: string) => path.join(repoDir, p);
  assert.ok(fs.existsSync(file('models/InternVL3-2B/config.json')));
  assert.ok(fs.existsSync(file('models/InternVL3-2B/tokenizer_config.json')));
  const meta = JSON.parse(fs.readFileSync(file('data/meta.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(meta.navsim, { root: 'data/images', annotation: 'data/navsim_qa.jsonl', data_augment: false, repeat_time: 1, length: TRAIN_TOKENS });
  const qa = fs.readFileSync(file('data/navsim_qa.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { image: string; conversations: { from: string; value: string }[] });
  assert.equal(qa.length, TRAIN_TOKENS);
  for (const sample of qa) {
    assert.ok(fs.existsSync(path.join(repoDir, 'data/images', sample.image)), sample.image);
    assert.deepEqual(sample.conversations.map((c) => c.from), ['human', 'gpt']);
    assert.ok(sample.conversations[0]?.value.startsWith('<image>\n'));
  }

  const trainLogs = list(file('tests/dummy_data/navsim_logs/trainval'));
  assert.equal(trainLogs.length, 3);
  assert.equal(list(file('tests/dummy_data/navsim_logs/test')).length, 2);
  const log = JSON.parse(fs.readFileSync(file(`tests/dummy_data/navsim_logs/trainval/${trainLogs[0]}`), 'utf8')) as { log_name: string; tokens: string[] };
  assert.equal(`${log.log_name}.pkl`, trainLogs[0]);
  assert.equal(log.tokens.length, 4);
  for (const token of log.tokens) {
    assert.match(token, /^[0-9a-f]{16}$/);
    assert.ok(fs.existsSync(file(`tests/dummy_data/sensor_blobs/trainval/${log.log_name}/CAM_F0/${token}.jpg`)));
  }
  assert.ok(fs.existsSync(file('tests/dummy_maps/nuplan-maps-v1.0/nuplan-maps-v1.0.json')));

  assert.equal(cacheTokens(file('data/navtest_cache')).size, TEST_TOKENS);
  for (const files of cacheTokens(file('data/navtest_cache')).values()) assert.deepEqual(files, ['internvl_feature.gz', 'trajectory_target.gz']);
  const rows = csvRows(file('data/navtest_metric_cache/metadata/navtest_metric_cache_metadata_node_0.csv'));
  assert.deepEqual(rows[0], ['file_name']);
  assert.equal(rows.length - 1, TEST_TOKENS);
  for (const [row] of rows.slice(1)) {
    assert.match(row ?? '', /^\/recogdrive\/data\/navtest_metric_cache\/[^/]+\/unknown\/[0-9a-f]{16}\/metric_cache\.pkl$/);
    assert.ok(fs.existsSync(path.join(repoDir, (row ?? '').slice(REPO.length))));
  }
});

// ---- the pipeline, stage by stage --------------------------------------------------------

describe('the pipeline runs end to end on its own outputs', () => {
  test('stage 1 prints its progress lines and commits its orbax checkpoints', async () => {
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], stageEnv(STAGE1_MOUNTS()));
    assertExit(result, 0);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], `Add dataset: navsim with length: ${TRAIN_TOKENS}`);
    const steps = lines.filter((l) => /^Epoch: 0, Step: \d+, Loss: \d+\.\d{4}, Time: \d+\.\d+$/.test(l));
    assert.equal(steps.length, TRAIN_TOKENS);
    const losses = steps.map((l) => Number(/Loss: ([\d.]+)/.exec(l)?.[1]));
    assert.deepEqual([...losses].sort((a, b) => b - a), losses, 'loss decreases');
    assert.ok(lines.includes('Saved checkpoint to /recogdrive/work_dirs/stage1_output/checkpoint-4.pt'));
    assert.equal(lastLine(result.stdout), 'Saved final checkpoint to /recogdrive/work_dirs/stage1_output/final_checkpoint.pt');

    const out = artifact('stage1');
    assert.deepEqual(list(out), ['checkpoint-4.pt', 'checkpoint-8.pt', 'final_checkpoint.pt']);
    assert.deepEqual(list(path.join(out, 'final_checkpoint.pt')), [`checkpoint_${TRAIN_TOKENS}`]);
    const final = path.join(out, 'final_checkpoint.pt', `checkpoint_${TRAIN_TOKENS}`);
    assert.ok(list(final).includes('_METADATA'));
    assert.equal(typeof checkpointMetadata(final).commit_timestamp_nsecs, 'number');
  });

  test('the feature cache runs after the pip runtime fix, through the shims, and caches every token', async () => {
    const result = await shell(`${PIP_FIX} && ${FEATURE_CACHE}`, stageEnv(FEATURE_CACHE_MOUNTS()));
    assertExit(result, 0);
    assert.match(result.stdout, /^Successfully installed hydra-core-1\.3\.2 omegaconf-2\.3\.0 pytest-8\.3\.4$/m);
    const lines = result.stdout.split('\n');
    const compile = lines.indexOf('Compiling JAX inference step...');
    assert.ok(compile >= 0 && lines[compile + 1] === 'Compilation finished.');
    assert.equal(lines.filter((l) => /^Batch \d+: \d+\.\d+ s \(4 samples\)\. Avg: \d+\.\d+ s\/sample$/.test(l)).length, 3);
    assert.match(result.stderr, /^Caching: 100%\|.*\| 3\/3 /m);
    assert.equal(lastLine(result.stdout), 'Caching Complete.');

    const tokens = cacheTokens(artifact('feature-cache'));
    assert.equal(tokens.size, TRAIN_TOKENS);
    for (const files of tokens.values()) assert.deepEqual(files, ['internvl_feature.gz', 'trajectory_target.gz']);
    const [log] = list(artifact('feature-cache'));
    const [token] = list(path.join(artifact('feature-cache'), log ?? ''));
    const feature = JSON.parse(gunzipSync(fs.readFileSync(path.join(artifact('feature-cache'), log ?? '', token ?? '', 'internvl_feature.gz'))).toString()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(feature), ['history_trajectory', 'high_command_one_hot', 'status_feature', 'last_hidden_state']);
    // hydra's run dir lands under NAVSIM_EXP_ROOT, not in the cache.
    const runs = list(path.join(repoDir, 'tests/work_dirs/caching_job'));
    assert.equal(runs.length, 1);
    assert.ok(list(path.join(repoDir, 'tests/work_dirs/caching_job', runs[0] ?? '')).includes('run_caching_recogdrive_torchax.log'));
  });

  test('stage 2 trains on the feature cache and writes one committed checkpoint per epoch', async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], stageEnv(STAGE2_MOUNTS()));
    assertExit(result, 0);
    assert.match(result.stdout, new RegExp(`^Num training samples: ${TRAIN_TOKENS}$`, 'm'));
    // batch size 16 (default) over 12 samples: one step per epoch.
    assert.match(result.stdout, /^Epoch: 0, Step: 1, Loss: \d+\.\d{4}, Time: \d+\.\d+ s$/m);
    assert.match(result.stdout, /^Epoch: 1, Step: 2, Loss: \d+\.\d{4}, Time: \d+\.\d+ s$/m);
    assert.equal(lastLine(result.stdout), 'Saved checkpoint to /recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt');
    const out = artifact('stage2');
    assert.deepEqual(list(path.join(out, 'checkpoint-epoch-0.pt')), ['checkpoint_1']);
    assert.deepEqual(list(path.join(out, 'checkpoint-epoch-1.pt')), ['checkpoint_2']);
    assert.equal(typeof checkpointMetadata(path.join(out, 'checkpoint-epoch-1.pt', 'checkpoint_2')).commit_timestamp_nsecs, 'number');
  });

  test('the metric cache writes one pkl per token, then the metadata CSV', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], stageEnv(METRIC_MOUNTS()));
    assertExit(result, 0);
    assert.deepEqual(result.stdout.trimEnd().split('\n'), [
      'Starting metric caching of 3 files...',
      `Completed dataset caching! All ${TRAIN_TOKENS} features and targets were cached successfully.`,
      'Done storing metadata csv file.',
    ]);
    assert.match(result.stderr, new RegExp(`100%\\|.*\\| ${TRAIN_TOKENS}/${TRAIN_TOKENS} `));
    const out = artifact('metric-cache');
    const metadata = list(path.join(out, 'metadata'));
    assert.ok(metadata.includes('metric_cache_metadata_node_0.csv'));
    assert.ok(metadata.includes('log.txt'));
    const rows = csvRows(path.join(out, 'metadata', 'metric_cache_metadata_node_0.csv'));
    assert.deepEqual(rows[0], ['file_name']);
    assert.equal(rows.length - 1, TRAIN_TOKENS);
    for (const [row] of rows.slice(1)) {
      assert.match(row ?? '', /^\/recogdrive\/data\/metric_cache\/[^/]+\/unknown\/[0-9a-f]{16}\/metric_cache\.pkl$/);
      assert.ok(fs.existsSync(path.join(out, (row ?? '').slice(`${REPO}/data/metric_cache`.length))));
    }
  });

  test('stage 3 (GRPO) trains against the metric cache from the stage 2 checkpoint', async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS()], stageEnv(STAGE3_MOUNTS()));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /GRPO checkpoint not found/);
    assert.match(result.stdout, /^Epoch: 0, Step: 1, Loss: \d+\.\d{4}, Reward: \d+\.\d{4}, Time: \d+\.\d+ s$/m);
    assert.equal(lastLine(result.stdout), 'Saved checkpoint to /recogdrive/work_dirs/stage3_output/checkpoint-epoch-2.pt');
    // 12 samples, batch 8: 2 steps per epoch.
    assert.deepEqual(list(path.join(artifact('stage3'), 'checkpoint-epoch-2.pt')), ['checkpoint_6']);
  });

  test('evaluation scores every navtest token and writes the results CSV with an average row', async () => {
    const result = await sim(['python', EVAL_SCRIPT, ...EVAL_ARGS], stageEnv(EVAL_MOUNTS()));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /Missing metric cache/);
    const summary = /^Finished running evaluation\. Number of successful scenarios: (\d+)\. Number of failed scenarios: (\d+)\. Final average score of valid results: ([\d.]+)\. Results are stored in: (\/recogdrive\/work_dirs\/eval_output\/\d{4}(?:\.\d{2}){5}\.csv)$/m.exec(result.stdout);
    assert.ok(summary, result.stdout);
    assert.equal(Number(summary[1]), TEST_TOKENS);
    assert.equal(Number(summary[2]), 0);

    const rows = csvRows(path.join(artifact('eval'), path.posix.basename(summary[4] ?? '')));
    assert.deepEqual(rows[0], ['', 'token', 'valid', 'no_at_fault_collisions', 'drivable_area_compliance', 'ego_progress', 'time_to_collision_within_bound', 'comfort', 'driving_direction_compliance', 'score', 'rank']);
    assert.equal(rows.length, 1 + TEST_TOKENS + 1);
    for (const row of rows.slice(1, -1)) {
      assert.equal(row[2], 'True');
      const score = Number(row[9]);
      assert.ok(score > 0 && score < 1, `score ${score}`);
    }
    const average = rows.at(-1) ?? [];
    assert.deepEqual(average.slice(0, 3), [String(TEST_TOKENS), 'average', 'True']);
    assert.equal(Number(average[9]), Number(summary[3]));
  });
});

// ---- the runtime fix ------------------------------------------------------------------

test('the feature cache without the pip upgrade fails importing hydra 1.2 on Python 3.11', async () => {
  const result = await shell(FEATURE_CACHE, stageEnv(FEATURE_CACHE_MOUNTS('feature-cache-no-pip')));
  assertExit(result, 1);
  assert.match(result.stderr, /^Traceback \(most recent call last\):/m);
  assert.equal(
    lastLine(result.stderr),
    "ValueError: mutable default <class 'hydra.conf.JobConf.JobConfig.OverrideDirname'> for field override_dirname is not allowed: use default_factory",
  );
  assert.deepEqual(list(artifact('feature-cache-no-pip')), []);
});

// ---- faults ---------------------------------------------------------------------------

describe('injected faults', { concurrency: true }, () => {
  test('crash exits 1 with a Python traceback naming the script', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], stageEnv(METRIC_MOUNTS('metric-crash'), { RECOGDRIVE_SIM_FAULT: 'crash' }));
    assertExit(result, 1);
    assert.match(result.stderr, /^Traceback \(most recent call last\):$/m);
    assert.equal(lastLine(result.stderr), 'RuntimeError: simulated crash in run_metric_caching.py');
    assert.match(result.stdout, /Starting metric caching/);
    assert.doesNotMatch(result.stdout, /Done storing metadata csv file/);
  });

  test('a worker-targeted fault fires only in the container of that RECOGDRIVE_WORKER', async () => {
    const targeted = { RECOGDRIVE_SIM_FAULT: 'crash', RECOGDRIVE_SIM_FAULT_WORKER: '1' };
    const [worker0, worker1] = await Promise.all([
      sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], stageEnv(METRIC_MOUNTS('metric-worker-0'), { ...targeted, RECOGDRIVE_WORKER: '0' })),
      sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], stageEnv(METRIC_MOUNTS('metric-worker-1'), { ...targeted, RECOGDRIVE_WORKER: '1' })),
    ]);
    assertExit(worker0, 0);
    assert.match(worker0.stdout, /Done storing metadata csv file/);
    assertExit(worker1, 1);
    assert.equal(lastLine(worker1.stderr), 'RuntimeError: simulated crash in run_metric_caching.py');
  });

  test('oom dies of SIGKILL without a message: a parent shell sees status 137', async () => {
    const env = stageEnv(STAGE1_MOUNTS('stage1-oom'), { RECOGDRIVE_SIM_FAULT: 'oom', RECOGDRIVE_SIM_FAULT_AT: '0.25' });
    // `; exit $?` keeps sh from exec-ing the command, so sh itself reports the child's death.
    const result = await shell(`python ${STAGE1_SCRIPT} ${STAGE1_ARGS.join(' ')}; exit $?`, env, '/bin/sh');
    assertExit(result, 137);
    // Only the shell's own report of the signal (dash prints "Killed"); the program says nothing.
    assert.equal(result.stderr.replace(/^Killed$/m, '').trim(), '');
    assert.match(result.stdout, /Step: 3,/);
    assert.doesNotMatch(result.stdout, /Step: 4,|final checkpoint/);
  });

  test('hang stays alive and silent until SIGTERM, then exits 143', async () => {
    const env = stageEnv(STAGE2_MOUNTS('feature-cache', 'stage2-hang'), { RECOGDRIVE_SIM_FAULT: 'hang', RECOGDRIVE_SIM_FAULT_AT: '0' });
    const child = spawnResult(process.execPath, [MAIN, 'python', TRAINING_SCRIPT, ...STAGE2_ARGS], env);
    let exited = false;
    void child.done.then(() => (exited = true));
    // The hydra job writes its output folder before the script's work (and after main.ts's SIGTERM
    // handler is in place): on a loaded machine Node can take over a second to start, and a signal
    // before the handler kills it outright instead of testing the simulator's exit code.
    const deadline = Date.now() + 30_000;
    while (!fs.existsSync(artifact('stage2-hang')) && !exited && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(exited, false, 'still running: a hang prints nothing and does not exit');
    process.kill(child.pid, 'SIGTERM');
    const result = await child.done;
    assertExit(result, 143);
    assert.doesNotMatch(result.stdout, /Epoch:/);
    assert.deepEqual(list(artifact('stage2-hang')).filter((f) => f.startsWith('checkpoint')), []);
  });
});

// ---- partial: exit 0, success lines, incomplete outputs ---------------------------------

describe('partial runs exit 0 with the success lines but leave incomplete outputs', { concurrency: true }, () => {
  const partial = { RECOGDRIVE_SIM_FAULT: 'partial' };

  test('stage 1 leaves the final checkpoint unfinalized (tmp dir, null commit timestamp)', async () => {
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], stageEnv(STAGE1_MOUNTS('stage1-partial'), partial));
    assertExit(result, 0);
    assert.match(result.stdout, /^Saved final checkpoint to /m);
    const finalDir = path.join(artifact('stage1-partial'), 'final_checkpoint.pt');
    assert.deepEqual(list(finalDir), [`checkpoint_${TRAIN_TOKENS}.orbax-checkpoint-tmp-0`]);
    assert.equal(checkpointMetadata(path.join(finalDir, `checkpoint_${TRAIN_TOKENS}.orbax-checkpoint-tmp-0`)).commit_timestamp_nsecs, null);
  });

  test('the feature cache leaves tokens without their target or missing, and stage 2 reports them', async () => {
    const cache = await shell(`${PIP_FIX} && ${FEATURE_CACHE}`, stageEnv(FEATURE_CACHE_MOUNTS('feature-cache-partial'), partial));
    assertExit(cache, 0);
    assert.equal(lastLine(cache.stdout), 'Caching Complete.');
    const tokens = cacheTokens(artifact('feature-cache-partial'));
    const complete = [...tokens.values()].filter((files) => files.length === 2).length;
    const featureOnly = [...tokens.values()].filter((files) => files.length === 1 && files[0] === 'internvl_feature.gz').length;
    assert.equal(featureOnly, TRAIN_TOKENS / 3);
    assert.ok(tokens.size < TRAIN_TOKENS, 'some tokens skipped entirely');

    const training = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], stageEnv(STAGE2_MOUNTS('feature-cache-partial', 'stage2-on-partial')));
    assertExit(training, 0);
    assert.equal(training.stdout.match(/^Missing cache file: \/recogdrive\/data\/cache_output\/.+\/trajectory_target\.gz$/gm)?.length, featureOnly);
    assert.match(training.stdout, new RegExp(`^Num training samples: ${complete}$`, 'm'));
  });

  test('stage 2 skips the last epoch\'s checkpoint', async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], stageEnv(STAGE2_MOUNTS('feature-cache', 'stage2-partial'), partial));
    assertExit(result, 0);
    assert.deepEqual(list(artifact('stage2-partial')).filter((f) => f.startsWith('checkpoint')), ['checkpoint-epoch-0.pt']);
  });

  test('the metric cache writes every pkl but a metadata CSV missing rows, and GRPO then fails on a missing token', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], stageEnv(METRIC_MOUNTS('metric-partial'), partial));
    assertExit(result, 0);
    assert.equal(lastLine(result.stdout), 'Done storing metadata csv file.');
    assert.equal(filesNamed(artifact('metric-partial'), 'metric_cache.pkl').length, TRAIN_TOKENS);
    const rows = csvRows(path.join(artifact('metric-partial'), 'metadata', 'metric_cache_metadata_node_0.csv'));
    assert.equal(rows.length - 1, TRAIN_TOKENS - TRAIN_TOKENS / 3);

    const grpo = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS()], stageEnv(STAGE3_MOUNTS('stage3-on-partial', 'metric-partial')));
    assertExit(grpo, 1);
    assert.match(lastLine(grpo.stderr), /^KeyError: '[0-9a-f]{16}'$/);
  });

  test('evaluation writes a results CSV missing token rows', async () => {
    const result = await sim(['python', EVAL_SCRIPT, ...EVAL_ARGS], stageEnv(EVAL_MOUNTS('eval-partial'), partial));
    assertExit(result, 0);
    assert.match(result.stdout, new RegExp(`Number of successful scenarios: ${TEST_TOKENS}\\.`));
    const [csv] = list(artifact('eval-partial')).filter((f) => f.endsWith('.csv'));
    const rows = csvRows(path.join(artifact('eval-partial'), csv ?? ''));
    assert.ok(rows.length - 2 < TEST_TOKENS, `${rows.length - 2} token rows`);
    assert.equal(rows.at(-1)?.[1], 'average');
  });
});

// ---- contract failures --------------------------------------------------------------------

describe('inputs and arguments fail like the real programs', { concurrency: true }, () => {
  test('a write under a read-only mount fails with "Read-only file system"', async () => {
    const readOnlyOutput = mounts([`${REPO}/work_dirs/stage1_output`, 'stage1-ro', true]);
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], stageEnv(readOnlyOutput));
    assertExit(result, 1);
    assert.match(lastLine(result.stderr), /^OSError: \[Errno 30\] Read-only file system: '\/recogdrive\/work_dirs\/stage1_output\//);
    assert.deepEqual(list(artifact('stage1-ro')), []);
  });

  test('a missing mandatory hydra key fails with MissingMandatoryValue', async () => {
    const args = STAGE2_ARGS.filter((a) => !a.startsWith('experiment_name='));
    const result = await sim(['python', TRAINING_SCRIPT, ...args], stageEnv(STAGE2_MOUNTS('feature-cache', 'stage2-no-name')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), 'omegaconf.errors.MissingMandatoryValue: Missing mandatory value: experiment_name');
  });

  test('overriding a key the config lacks needs a + prefix', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS, 'is_dummy_run=True'], stageEnv(METRIC_MOUNTS('metric-bad-key')));
    assertExit(result, 1);
    assert.match(result.stderr, /^hydra\.errors\.ConfigCompositionException: Could not override 'is_dummy_run'\.$/m);
  });

  test('the metric cache needs NUPLAN_MAPS_ROOT', async () => {
    const env = stageEnv(METRIC_MOUNTS('metric-no-maps'));
    delete env.NUPLAN_MAPS_ROOT;
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env);
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "KeyError: 'NUPLAN_MAPS_ROOT'");
  });

  test('stage 2 without use_cache_without_dataset hits the collate unpack error', async () => {
    const args = STAGE2_ARGS.map((a) => (a === 'use_cache_without_dataset=True' ? 'use_cache_without_dataset=False' : a));
    const result = await sim(['python', TRAINING_SCRIPT, ...args], stageEnv(STAGE2_MOUNTS('feature-cache', 'stage2-no-cache-mode')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), 'ValueError: not enough values to unpack (expected 3, got 2)');
  });

  test('stage 2 on an empty cache fails with num_samples=0', async () => {
    fs.mkdirSync(artifact('feature-cache-empty'), { recursive: true });
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], stageEnv(STAGE2_MOUNTS('feature-cache-empty', 'stage2-empty')));
    assertExit(result, 1);
    assert.match(result.stdout, /^Num training samples: 0$/m);
    assert.equal(lastLine(result.stderr), 'ValueError: num_samples should be a positive integer value, but got num_samples=0');
  });

  test('stage 3 with a missing reference checkpoint warns and trains from random init (upstream silent failure)', async () => {
    const missing = '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-7.pt';
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS(missing)], stageEnv(STAGE3_MOUNTS('stage3-no-reference')));
    assertExit(result, 0);
    assert.match(result.stdout, new RegExp(`^Warning: GRPO checkpoint not found at ${missing}, using random init$`, 'm'));
  });

  test('evaluation without the checkpoint fails with FileNotFoundError', async () => {
    const args = EVAL_ARGS.map((a) => (a.startsWith('agent.checkpoint_path=') ? 'agent.checkpoint_path=/recogdrive/work_dirs/stage3_output/nope.pt' : a));
    const result = await sim(['python', EVAL_SCRIPT, ...args], stageEnv(EVAL_MOUNTS('eval-no-ckpt')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "FileNotFoundError: [Errno 2] No such file or directory: '/recogdrive/work_dirs/stage3_output/nope.pt'");
  });

  test('an unknown script fails like python: exit 2', async () => {
    const result = await sim(['python', 'navsim/planning/script/run_nothing.py'], stageEnv(mounts()));
    assertExit(result, 2);
    assert.equal(result.stderr.trim(), "python: can't open file '/recogdrive/navsim/planning/script/run_nothing.py': [Errno 2] No such file or directory");
  });

  test('a path outside every mount does not exist', async () => {
    const args = STAGE1_ARGS.map((a) => (a === 'work_dirs/stage1_output' ? '/elsewhere/out' : a));
    const result = await sim(['python', STAGE1_SCRIPT, ...args], stageEnv(mounts()));
    assertExit(result, 1);
    assert.match(lastLine(result.stderr), /^FileNotFoundError: \[Errno 2\] No such file or directory: '\/elsewhere\/out/);
  });
});
