/**
 * The stage simulator, run as a real subprocess the way the local backend runs it: container
 * paths translated through a mount table (the repo at /recogdrive, one artifact dir per stage),
 * the stage commands of the orchestrator's plan, and faults injected through the environment.
 * The checkout is seeded with every upstream fix (the embedded default's); what the public fork
 * does without them is in simulator-upstream.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { VAL_LOGS } from '../../docker/simulator/upstream/log-splits.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertExit,
  cacheTokens,
  checkpointMetadata,
  csvRows,
  EVAL_ARGS,
  EVAL_SCRIPT,
  EXPORT_SCRIPT,
  exportArgs,
  FEATURE_CACHE,
  filesNamed,
  lastLine,
  list,
  messages,
  METRIC_ARGS,
  METRIC_SCRIPT,
  NAVTRAIN_TOKENS,
  GPU_STAGE3_SCRIPT,
  lightningDevices,
  torchrun,
  VAL_TOKENS,
  PIP_FIX,
  REPO,
  shell,
  sim,
  SimulatorBed,
  spawnResult,
  SIM_MAIN,
  STAGE1_ARGS,
  STAGE1_SCRIPT,
  STAGE2_ARGS,
  STAGE3_ARGS,
  TEST_TOKENS,
  TRAIN_TOKENS,
  TRAINING_SCRIPT,
} from '../helpers/simulator.ts';

const bed = new SimulatorBed();
const { repoDir } = bed;
const artifact = (name: string) => bed.artifact(name);
after(() => bed.remove());

const STAGE1_MOUNTS = (out = 'stage1') => bed.mounts([`${REPO}/work_dirs/stage1_output`, out]);
const FEATURE_CACHE_MOUNTS = (out = 'feature-cache') =>
  bed.mounts([`${REPO}/work_dirs/stage1_output`, 'stage1', true], [`${REPO}/data/cache_output`, out]);
const STAGE2_MOUNTS = (cache = 'feature-cache', out = 'stage2') =>
  bed.mounts([`${REPO}/data/cache_output`, cache, true], [`${REPO}/work_dirs/stage2_output`, out]);
const METRIC_MOUNTS = (out = 'metric-cache') => bed.mounts([`${REPO}/data/metric_cache`, out]);
const STAGE2_EXPORT_MOUNTS = () => bed.mounts([`${REPO}/work_dirs/stage2_output`, 'stage2', true], [`${REPO}/work_dirs/stage2_export`, 'stage2-export']);
const STAGE3_MOUNTS = (out = 'stage3', metricCache = 'metric-cache') =>
  bed.mounts(
    [`${REPO}/data/cache_output`, 'feature-cache', true],
    [`${REPO}/data/metric_cache`, metricCache, true],
    [`${REPO}/work_dirs/stage2_export`, 'stage2-export', true],
    [`${REPO}/work_dirs/stage3_output`, out],
  );
const STAGE3_EXPORT_MOUNTS = () => bed.mounts([`${REPO}/work_dirs/stage3_output`, 'stage3', true], [`${REPO}/work_dirs/stage3_export`, 'stage3-export']);
const EVAL_MOUNTS = (out = 'eval') => bed.mounts([`${REPO}/work_dirs/stage3_export`, 'stage3-export', true], [`${REPO}/work_dirs/eval_output`, out]);
const GPUS = { RECOGDRIVE_SIM_GPUS: '2' };
const readManifest = (name: string) => JSON.parse(fs.readFileSync(path.join(artifact(name), 'policy.json'), 'utf8')) as { count: number; epoch: number; tensors: Record<string, unknown> };
const env = (mounts: ReturnType<typeof bed.mounts>, extra: Record<string, string> = {}) => bed.env(mounts, extra);

before(async () => {
  assertExit(await bed.seed('all'), 0);
});

// ---- seed ----------------------------------------------------------------------------

test('seed writes the scaled-down checkout: model, stage 1 data, raw NAVSIM with real log names and tokens, maps, the navtest caches and its fixes', async () => {
  const result = await bed.seed('all');
  assertExit(result, 0);
  assert.deepEqual(JSON.parse(result.stdout), { trainTokens: TRAIN_TOKENS, valTokens: VAL_TOKENS, navtrainTokens: NAVTRAIN_TOKENS, testTokens: TEST_TOKENS, stage1Samples: TRAIN_TOKENS });

  const file = (p: string) => path.join(repoDir, p);
  assert.deepEqual(JSON.parse(fs.readFileSync(file('.recogdrive-sim/checkout.json'), 'utf8')), {
    upstream: 'zorrofox/recogdrive@7ed3135',
    fixes: ['feature-cache-real-scenes', 'torchax-grpo', 'eval-without-torchrun'],
  });
  assert.ok(fs.existsSync(file('models/InternVL3-2B/config.json')));
  assert.ok(fs.existsSync(file('models/InternVL3-2B/tokenizer_config.json')));
  const meta = JSON.parse(fs.readFileSync(file('data/meta.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(meta.navsim, { root: 'data/images', annotation: 'data/navsim_qa.jsonl', data_augment: false, repeat_time: 1, length: TRAIN_TOKENS });
  const qa = fs.readFileSync(file('data/navsim_qa.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { image: string; conversations: { from: string; value: string }[] });
  assert.equal(qa.length, TRAIN_TOKENS);
  for (const sample of qa) {
    assert.ok(fs.existsSync(path.join(repoDir, 'data/images', sample.image)), sample.image);
    assert.deepEqual(sample.conversations.map((c) => c.from), ['human', 'gpt']);
  }

  // 3 standard train logs and 1 validation log, all of navtrain.
  const trainLogs = list(file('tests/dummy_data/navsim_logs/trainval'));
  assert.equal(trainLogs.length, 4);
  // Real nuPlan log names (navtrain's, also in the standard train_logs).
  for (const log of trainLogs) assert.match(log, /^2021\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}_veh-\d{2}_\d{5}_\d{5}\.pkl$/);
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
  const rows = csvRows(file('data/navtest_metric_cache/metadata/navtest_metric_cache_metadata_node_0.csv'));
  assert.deepEqual(rows[0], ['file_name']);
  assert.equal(rows.length - 1, TEST_TOKENS);
});

// ---- the pipeline, stage by stage --------------------------------------------------------

describe('the pipeline runs end to end on its own outputs', () => {
  test('stage 1 logs its 0-based steps in HF logging format and commits its orbax checkpoints', async () => {
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], env(STAGE1_MOUNTS()));
    assertExit(result, 0);
    assert.match(result.stdout, /^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2} - INFO - __main__ - Add dataset: navsim with length: 12$/m);
    const steps = messages(result.stdout).filter((l) => /^Epoch: 0, Step: \d+, Loss: \d+\.\d+, Time: \d+\.\d{4}s$/.test(l));
    assert.deepEqual(steps.map((l) => Number(/Step: (\d+)/.exec(l)?.[1])), Array.from({ length: TRAIN_TOKENS }, (_, i) => i));
    const losses = steps.map((l) => Number(/Loss: ([\d.]+)/.exec(l)?.[1]));
    assert.deepEqual([...losses].sort((a, b) => b - a), losses, 'loss decreases');
    assert.ok(messages(result.stdout).includes('Saved checkpoint to /recogdrive/work_dirs/stage1_output/checkpoint-4.pt'));
    assert.equal(messages(lastLine(result.stdout))[0], 'Saved final checkpoint to /recogdrive/work_dirs/stage1_output/final_checkpoint.pt');

    const out = artifact('stage1');
    assert.deepEqual(list(out), ['checkpoint-4.pt', 'checkpoint-8.pt', 'final_checkpoint.pt']);
    const final = path.join(out, 'final_checkpoint.pt', `checkpoint_${TRAIN_TOKENS}`);
    assert.ok(list(final).includes('_METADATA'));
    assert.equal(typeof checkpointMetadata(final).commit_timestamp_nsecs, 'number');
  });

  test('the feature cache runs after the pip runtime fix, through the shims, and caches every navtrain token (validation logs included)', async () => {
    const result = await shell(`${PIP_FIX} && ${FEATURE_CACHE}`, env(FEATURE_CACHE_MOUNTS()));
    assertExit(result, 0);
    assert.match(result.stdout, /^Successfully installed hydra-core-1\.3\.2 omegaconf-2\.3\.0 pytest-8\.3\.4$/m);
    const lines = messages(result.stdout);
    assert.ok(lines.includes(`Starting Inference on ${NAVTRAIN_TOKENS} samples...`));
    const compile = lines.indexOf('Compiling JAX inference step... (This may take a few minutes)');
    assert.ok(compile >= 0 && lines[compile + 1] === 'Compilation finished.');
    // Batch lines every 10 batches, through hydra's job logging: only batch 0 of 4.
    assert.match(result.stdout, /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\]\[__main__\]\[INFO\] - Batch 0: \d+\.\d{2}s \(4 samples\)\. Avg: \d+\.\d{4} s\/sample$/m);
    assert.equal(lines.filter((l) => l.startsWith('Batch ')).length, 1);
    assert.match(result.stderr, /^Caching: 100%\|.*\| 4\/4 /m);
    assert.equal(messages(lastLine(result.stdout))[0], 'Caching Complete.');

    const tokens = cacheTokens(artifact('feature-cache'));
    assert.equal(tokens.size, NAVTRAIN_TOKENS);
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

  test('stage 2 loads the valid caches, then trains and writes one committed checkpoint per epoch', async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], env(STAGE2_MOUNTS()));
    assertExit(result, 0);
    const lines = messages(result.stdout);
    assert.ok(lines.includes(`Num training samples: ${TRAIN_TOKENS}`));
    assert.match(result.stderr, /^Loading Valid Caches: 100%\|.*\| 3\/3 /m);
    // batch size 16 (default) over 12 samples: one step per epoch; global steps 0 and 1, only step 0 is logged.
    assert.deepEqual(lines.filter((l) => l.startsWith('Epoch: ')).map((l) => l.replace(/Loss: [\d.]+, Time: [\d.]+s/, 'Loss: x, Time: ys')), ['Epoch: 0, Step: 0, Loss: x, Time: ys']);
    assert.equal(messages(lastLine(result.stdout))[0], 'Saved checkpoint to /recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt');
    const out = artifact('stage2');
    assert.deepEqual(list(path.join(out, 'checkpoint-epoch-0.pt')), ['checkpoint_1']);
    assert.deepEqual(list(path.join(out, 'checkpoint-epoch-1.pt')), ['checkpoint_2']);
    assert.equal(typeof checkpointMetadata(path.join(out, 'checkpoint-epoch-1.pt', 'checkpoint_2')).commit_timestamp_nsecs, 'number');
  });

  test('the metric cache writes one pkl per token, then the metadata CSV, in nuplan\'s log format', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env(METRIC_MOUNTS()));
    assertExit(result, 0);
    assert.match(result.stdout, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} INFO \{\/recogdrive\/navsim\/planning\/script\/run_metric_caching\.py:29\} {2}Starting Metric Caching\.\.\.$/m);
    const lines = messages(result.stdout);
    for (const expected of ['Starting metric caching of 4 files...', `Completed dataset caching! All ${NAVTRAIN_TOKENS} features and targets were cached successfully.`, 'Done storing metadata csv file.']) {
      assert.ok(lines.includes(expected), `${expected} in\n${result.stdout}`);
    }
    const out = artifact('metric-cache');
    const metadata = list(path.join(out, 'metadata'));
    assert.ok(metadata.includes('metric_cache_metadata_node_0.csv'));
    assert.ok(metadata.includes('log.txt'));
    const rows = csvRows(path.join(out, 'metadata', 'metric_cache_metadata_node_0.csv'));
    assert.deepEqual(rows[0], ['file_name']);
    assert.equal(rows.length - 1, NAVTRAIN_TOKENS);
    for (const [row] of rows.slice(1)) {
      assert.match(row ?? '', /^\/recogdrive\/data\/metric_cache\/[^/]+\/unknown\/[0-9a-f]{16}\/metric_cache\.pkl$/);
      assert.ok(fs.existsSync(path.join(out, (row ?? '').slice(`${REPO}/data/metric_cache`.length))));
    }
  });

  test("stage2Export converts Stage 2's last committed epoch into policy.pt with agent.* keys", async () => {
    const result = await sim(['python', EXPORT_SCRIPT, ...exportArgs('/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt', '/recogdrive/work_dirs/stage2_export')], env(STAGE2_EXPORT_MOUNTS()));
    assertExit(result, 0);
    assert.deepEqual(list(artifact('stage2-export')), ['policy.json', 'policy.pt']);
    const manifest = readManifest('stage2-export');
    assert.equal(manifest.epoch, 1);
    assert.ok(manifest.count > 0 && Object.keys(manifest.tensors).every((k) => k.startsWith('agent.action_head.')));
  });

  test('stage 3 (GRPO, the upstream GPU script under torchrun) starts from the exported policy and trains against the metric cache', async () => {
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(), ...lightningDevices(2)], env(STAGE3_MOUNTS(), GPUS));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /GRPO checkpoint not found|Skip loading/);
    // 12 train samples over 2 ranks, batch 8: one step per epoch; 4 validation samples, one batch.
    assert.ok(messages(result.stdout).includes(`Num training samples: ${TRAIN_TOKENS}`));
    assert.match(result.stderr, /^Epoch 2: 100%\|██████████\| 1\/1 .*val\/loss_epoch=/m);
    assert.deepEqual(list(path.join(artifact('stage3'), 'lightning_logs/version_0/checkpoints')), ['epoch=0-step=1.ckpt', 'epoch=1-step=2.ckpt', 'epoch=2-step=3.ckpt']);
  });

  test("stage3Export takes Lightning's newest checkpoint, keeping its agent.* keys", async () => {
    const result = await sim(['python', EXPORT_SCRIPT, ...exportArgs('/recogdrive/work_dirs/stage3_output', '/recogdrive/work_dirs/stage3_export', 'lightning')], env(STAGE3_EXPORT_MOUNTS()));
    assertExit(result, 0);
    const manifest = readManifest('stage3-export');
    assert.equal(manifest.epoch, 2);
    assert.deepEqual(Object.keys(manifest.tensors).sort(), Object.keys(readManifest('stage2-export').tensors).sort());
  });

  test('evaluation scores every navtest token, one "Rank 0 processing scenario" line each, and writes the results CSV with an average row', async () => {
    const result = await sim([...torchrun(2), EVAL_SCRIPT, ...EVAL_ARGS], env(EVAL_MOUNTS(), GPUS));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /Missing metric cache/);
    const lines = messages(result.stdout);
    assert.equal(lines.filter((l) => new RegExp(`^Rank 0 processing scenario \\d+ / ${TEST_TOKENS} in thread_id=`).test(l)).length, TEST_TOKENS);
    const summary = /Finished running evaluation\.\n\s+Number of successful scenarios: (\d+)\.\n\s+Number of failed scenarios: (\d+)\.\n\s+Final average score of valid results: ([\d.]+)\.\n\s+Results are stored in: (\/recogdrive\/work_dirs\/eval_output\/\d{4}(?:\.\d{2}){5}\.csv)\./.exec(result.stdout);
    assert.ok(summary, result.stdout);
    assert.equal(Number(summary[1]), TEST_TOKENS);
    assert.equal(Number(summary[2]), 0);

    const rows = csvRows(path.join(artifact('eval'), path.posix.basename(summary[4] ?? '')));
    assert.deepEqual(rows[0], ['', 'token', 'valid', 'no_at_fault_collisions', 'drivable_area_compliance', 'ego_progress', 'time_to_collision_within_bound', 'comfort', 'driving_direction_compliance', 'score', 'rank']);
    assert.equal(rows.length, 1 + TEST_TOKENS + 1);
    for (const row of rows.slice(1, -1)) {
      assert.equal(row[2], 'True');
      const score = Number(row[9]);
      // A trained planner (the exported weights loaded) stays on the road: no collision, drivable area kept.
      assert.deepEqual([row[3], row[4]], ['1', '1'], row.join(','));
      assert.ok(score > 0 && score < 1, `score ${score}`);
    }
    const average = rows.at(-1) ?? [];
    assert.deepEqual(average.slice(0, 3), [String(TEST_TOKENS), 'average', 'True']);
    assert.equal(Number(average[9]), Number(summary[3]));
  });
});

// ---- the runtime fix ------------------------------------------------------------------

test('the feature cache without the pip upgrade fails importing hydra 1.2 on Python 3.11', async () => {
  const result = await shell(FEATURE_CACHE, env(FEATURE_CACHE_MOUNTS('feature-cache-no-pip')));
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
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env(METRIC_MOUNTS('metric-crash'), { RECOGDRIVE_SIM_FAULT: 'crash' }));
    assertExit(result, 1);
    assert.match(result.stderr, /^Traceback \(most recent call last\):$/m);
    assert.equal(lastLine(result.stderr), 'RuntimeError: simulated crash in run_metric_caching.py');
    assert.match(result.stdout, /Starting metric caching/);
    assert.doesNotMatch(result.stdout, /Done storing metadata csv file/);
  });

  test('a worker-targeted fault fires only in the container of that RECOGDRIVE_WORKER', async () => {
    const targeted = { RECOGDRIVE_SIM_FAULT: 'crash', RECOGDRIVE_SIM_FAULT_WORKER: '1' };
    const [worker0, worker1] = await Promise.all([
      sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env(METRIC_MOUNTS('metric-worker-0'), { ...targeted, RECOGDRIVE_WORKER: '0' })),
      sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env(METRIC_MOUNTS('metric-worker-1'), { ...targeted, RECOGDRIVE_WORKER: '1' })),
    ]);
    assertExit(worker0, 0);
    assert.match(worker0.stdout, /Done storing metadata csv file/);
    assertExit(worker1, 1);
    assert.equal(lastLine(worker1.stderr), 'RuntimeError: simulated crash in run_metric_caching.py');
  });

  test('oom dies of SIGKILL without a message: a parent shell sees status 137', async () => {
    const e = env(STAGE1_MOUNTS('stage1-oom'), { RECOGDRIVE_SIM_FAULT: 'oom', RECOGDRIVE_SIM_FAULT_AT: '0.25' });
    // `; exit $?` keeps sh from exec-ing the command, so sh itself reports the child's death.
    const result = await shell(`python ${STAGE1_SCRIPT} ${STAGE1_ARGS.join(' ')}; exit $?`, e, '/bin/sh');
    assertExit(result, 137);
    // Only the shell's own report of the signal (dash prints "Killed"); the program says nothing.
    assert.equal(result.stderr.replace(/^Killed$/m, '').trim(), '');
    assert.match(result.stdout, /Step: 2,/);
    assert.doesNotMatch(result.stdout, /Step: 3,|final checkpoint/);
  });

  test('hang stays alive and silent until SIGTERM, then exits 143', async () => {
    const e = env(STAGE2_MOUNTS('feature-cache', 'stage2-hang'), { RECOGDRIVE_SIM_FAULT: 'hang', RECOGDRIVE_SIM_FAULT_AT: '0' });
    const child = spawnResult(process.execPath, [SIM_MAIN, 'python', TRAINING_SCRIPT, ...STAGE2_ARGS], e);
    let exited = false;
    void child.done.then(() => (exited = true));
    // The hydra job writes its output folder before the script's work (and after main.ts's SIGTERM
    // handler is in place): on a loaded machine Node can take over a second to start.
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
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], env(STAGE1_MOUNTS('stage1-partial'), partial));
    assertExit(result, 0);
    assert.ok(messages(result.stdout).some((l) => l.startsWith('Saved final checkpoint to ')));
    const finalDir = path.join(artifact('stage1-partial'), 'final_checkpoint.pt');
    assert.deepEqual(list(finalDir), [`checkpoint_${TRAIN_TOKENS}.orbax-checkpoint-tmp-0`]);
    assert.equal(checkpointMetadata(path.join(finalDir, `checkpoint_${TRAIN_TOKENS}.orbax-checkpoint-tmp-0`)).commit_timestamp_nsecs, null);
  });

  test('the feature cache leaves tokens without their target or missing, and stage 2 reports them', async () => {
    const cache = await shell(`${PIP_FIX} && ${FEATURE_CACHE}`, env(FEATURE_CACHE_MOUNTS('feature-cache-partial'), partial));
    assertExit(cache, 0);
    assert.equal(messages(lastLine(cache.stdout))[0], 'Caching Complete.');
    const tokens = cacheTokens(artifact('feature-cache-partial'));
    const featureOnly = [...tokens.values()].filter((files) => files.length === 1 && files[0] === 'internvl_feature.gz').length;
    assert.equal(featureOnly, Math.floor(NAVTRAIN_TOKENS / 3));
    assert.ok(tokens.size < NAVTRAIN_TOKENS, 'some tokens skipped entirely');

    const training = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], env(STAGE2_MOUNTS('feature-cache-partial', 'stage2-on-partial')));
    assertExit(training, 0);
    // Stage 2 trains on the train logs (train_logs); it also loads the validation log's dataset, so reports its tokens too.
    const trainLogTokens = list(artifact('feature-cache-partial'))
      .filter((log) => log !== VAL_LOGS.sample[0])
      .flatMap((log) => list(path.join(artifact('feature-cache-partial'), log)).map((token) => list(path.join(artifact('feature-cache-partial'), log, token))));
    assert.equal(training.stdout.match(/^Missing cache file: \/recogdrive\/data\/cache_output\/.+\/trajectory_target\.gz$/gm)?.length, featureOnly);
    assert.ok(messages(training.stdout).includes(`Num training samples: ${trainLogTokens.filter((files) => files.length === 2).length}`));
  });

  test("stage 2 skips the last epoch's checkpoint", async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], env(STAGE2_MOUNTS('feature-cache', 'stage2-partial'), partial));
    assertExit(result, 0);
    assert.deepEqual(list(artifact('stage2-partial')).filter((f) => f.startsWith('checkpoint')), ['checkpoint-epoch-0.pt']);
  });

  test('the metric cache writes every pkl but a metadata CSV missing rows, and GRPO then fails on a missing token', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env(METRIC_MOUNTS('metric-partial'), partial));
    assertExit(result, 0);
    assert.equal(messages(lastLine(result.stdout))[0], 'Done storing metadata csv file.');
    assert.equal(filesNamed(artifact('metric-partial'), 'metric_cache.pkl').length, NAVTRAIN_TOKENS);
    const rows = csvRows(path.join(artifact('metric-partial'), 'metadata', 'metric_cache_metadata_node_0.csv'));
    assert.equal(rows.length - 1, NAVTRAIN_TOKENS - Math.floor(NAVTRAIN_TOKENS / 3));

    const grpo = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS()], env(STAGE3_MOUNTS('stage3-on-partial', 'metric-partial')));
    assertExit(grpo, 1);
    assert.match(lastLine(grpo.stderr), /^KeyError: '[0-9a-f]{16}'$/);
  });

  test('evaluation writes a results CSV missing token rows', async () => {
    const result = await sim(['python', EVAL_SCRIPT, ...EVAL_ARGS], env(EVAL_MOUNTS('eval-partial'), partial));
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
    const readOnlyOutput = bed.mounts([`${REPO}/work_dirs/stage1_output`, 'stage1-ro', true]);
    const result = await sim(['python', STAGE1_SCRIPT, ...STAGE1_ARGS], env(readOnlyOutput));
    assertExit(result, 1);
    assert.match(lastLine(result.stderr), /^OSError: \[Errno 30\] Read-only file system: '\/recogdrive\/work_dirs\/stage1_output\//);
    assert.deepEqual(list(artifact('stage1-ro')), []);
  });

  test('the metric cache needs NUPLAN_MAPS_ROOT', async () => {
    const e = env(METRIC_MOUNTS('metric-no-maps'));
    delete e.NUPLAN_MAPS_ROOT;
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], e);
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "KeyError: 'NUPLAN_MAPS_ROOT'");
  });

  test('stage 2 without use_cache_without_dataset hits the collate unpack error', async () => {
    const args = STAGE2_ARGS.map((a) => (a === 'use_cache_without_dataset=True' ? 'use_cache_without_dataset=False' : a));
    const result = await sim(['python', TRAINING_SCRIPT, ...args], env(STAGE2_MOUNTS('feature-cache', 'stage2-no-cache-mode')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), 'ValueError: not enough values to unpack (expected 3, got 2)');
  });

  test('stage 2 on an empty cache fails with num_samples=0', async () => {
    fs.mkdirSync(artifact('feature-cache-empty'), { recursive: true });
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], env(STAGE2_MOUNTS('feature-cache-empty', 'stage2-empty')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), 'ValueError: num_samples should be a positive integer value, but got num_samples=0');
  });

  test('stage 3 with a missing reference checkpoint warns and trains from random init (upstream silent failure)', async () => {
    const missing = '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-7.pt';
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS(missing)], env(STAGE3_MOUNTS('stage3-no-reference')));
    assertExit(result, 0);
    assert.match(result.stdout, new RegExp(`^Warning: GRPO checkpoint not found at ${missing}\\. Skipping loading\\.$`, 'm'));
  });

  test('evaluation without the checkpoint fails with FileNotFoundError', async () => {
    const args = EVAL_ARGS.map((a) => (a.startsWith('agent.checkpoint_path=') ? 'agent.checkpoint_path=/recogdrive/work_dirs/stage3_output/nope.pt' : a));
    const result = await sim(['python', EVAL_SCRIPT, ...args], env(EVAL_MOUNTS('eval-no-ckpt')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "FileNotFoundError: [Errno 2] No such file or directory: '/recogdrive/work_dirs/stage3_output/nope.pt'");
  });

  test('an unknown script fails like python: exit 2', async () => {
    const result = await sim(['python', 'navsim/planning/script/run_nothing.py'], env(bed.mounts()));
    assertExit(result, 2);
    assert.equal(result.stderr.trim(), "python: can't open file '/recogdrive/navsim/planning/script/run_nothing.py': [Errno 2] No such file or directory");
  });

  test('a path outside every mount does not exist', async () => {
    const args = STAGE1_ARGS.map((a) => (a === 'work_dirs/stage1_output' ? '/elsewhere/out' : a));
    const result = await sim(['python', STAGE1_SCRIPT, ...args], env(bed.mounts()));
    assertExit(result, 1);
    assert.match(lastLine(result.stderr), /^FileNotFoundError: \[Errno 2\] No such file or directory: '\/elsewhere\/out/);
  });
});
