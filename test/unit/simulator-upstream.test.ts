/**
 * The simulator reproduces what the real upstream code does with our commands. Each test names
 * the row of the upstream audit (../shared/research/upstream-recogdrive.md) and the upstream file
 * it reproduces, so it can be checked against the source (zorrofox/recogdrive@7ed3135). The
 * public fork is a checkout seeded with no fixes; a checkout that fixes a defect says so
 * (`seed --fixes`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertExit,
  cacheTokens,
  COMMON_AGENT,
  EVAL_ARGS,
  EVAL_SCRIPT,
  EXPORT_SCRIPT,
  exportArgs,
  FEATURE_CACHE_ARGS,
  FEATURE_CACHE_SCRIPT,
  filesNamed,
  lastLine,
  list,
  messages,
  METRIC_ARGS,
  METRIC_SCRIPT,
  NAVTRAIN_TOKENS,
  REPO,
  sim,
  SimulatorBed,
  STAGE2_ARGS,
  STAGE3_ARGS,
  TEST_TOKENS,
  TRAINING_SCRIPT,
  wrapped,
} from '../helpers/simulator.ts';
import { recordInstalled } from '../../docker/simulator/site-packages.ts';

const CACHE_ARGS = FEATURE_CACHE_ARGS;
const TOKEN_CACHE_CHECK = { kind: 'token-cache', files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens: undefined };

/** A bed per checkout: the public fork, one fixing everything, and one fixing all but a given defect. */
const fork = new SimulatorBed('rd-sim-fork-');
const fixed = new SimulatorBed('rd-sim-fixed-');
const beds = [fork, fixed];
after(() => beds.forEach((b) => b.remove()));

/** A feature-cache container after the contract's `pip install --upgrade hydra-core==1.3.2` runtime fix. */
function cacheEnv(bed: SimulatorBed, out: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = bed.env(bed.mounts([`${REPO}/data/cache_output`, out]), extra);
  recordInstalled(env.RECOGDRIVE_SIM_STATE_DIR!, { 'hydra-core': '1.3.2', omegaconf: '2.3.0' });
  return env;
}

before(async () => {
  assertExit(await fork.seed('none'), 0);
  assertExit(await fixed.seed('all'), 0);
  // Outputs the later stages read, made on the fixed checkout.
  assertExit(await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS], cacheEnv(fixed, 'feature-cache')), 0);
  assertExit(await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], fixed.env(fixed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [`${REPO}/work_dirs/stage2_output`, 'stage2']))), 0);
  assertExit(await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], fixed.env(fixed.mounts([`${REPO}/data/metric_cache`, 'metric-cache']))), 0);
  // stage2Export: the torch file the GPU scripts load.
  const exported = await sim(
    ['python', EXPORT_SCRIPT, ...exportArgs(STAGE2_ORBAX, '/recogdrive/work_dirs/stage2_export')],
    fixed.env(fixed.mounts([`${REPO}/work_dirs/stage2_output`, 'stage2', true], [`${REPO}/work_dirs/stage2_export`, 'stage2-export'])),
  );
  assertExit(exported, 0);
  for (const name of ['feature-cache', 'stage2', 'stage2-export', 'metric-cache']) fs.cpSync(fixed.artifact(name), fork.artifact(name), { recursive: true });
});

/** Stage 2's last epoch as the torchax trainer writes it: an orbax directory. */
const STAGE2_ORBAX = '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt';
const stage3Mounts = (bed: SimulatorBed, out: string) =>
  bed.mounts(
    [`${REPO}/data/cache_output`, 'feature-cache', true],
    [`${REPO}/data/metric_cache`, 'metric-cache', true],
    [`${REPO}/work_dirs/stage2_output`, 'stage2', true],
    [`${REPO}/work_dirs/stage2_export`, 'stage2-export', true],
    [`${REPO}/work_dirs/stage3_output`, out],
  );
/** Evaluation of a checkpoint: by default Stage 2's, exported to a torch file. */
const evalArgs = (extra: string[] = [], checkpoint = '/recogdrive/work_dirs/stage2_export/policy.pt') => [
  ...EVAL_ARGS.map((a) => (a.startsWith('agent.checkpoint_path=') ? `agent.checkpoint_path=${checkpoint}` : a)),
  ...extra,
];
const evalMounts = (bed: SimulatorBed, out: string, more: [string, string, boolean?][] = []) =>
  bed.mounts([`${REPO}/work_dirs/stage2_output`, 'stage2', true], [`${REPO}/work_dirs/stage2_export`, 'stage2-export', true], [`${REPO}/work_dirs/eval_output`, out], ...more);

describe('known defects of the public fork, reproduced where our inputs trigger them', { concurrency: true }, () => {
  test('row 8: the feature cache crashes on the first batch of real scenes (collate unpacks 3, Dataset returns 2; run_caching_recogdrive_torchax.py:61)', async () => {
    const result = await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS], cacheEnv(fork, 'fork-cache'));
    assertExit(result, 1);
    assert.ok(messages(result.stdout).includes(`Starting Inference on ${NAVTRAIN_TOKENS} samples...`));
    assert.match(result.stderr, /for features, targets, token in batch:/);
    assert.equal(lastLine(result.stderr), 'ValueError: not enough values to unpack (expected 3, got 2)');
    assert.equal(cacheTokens(fork.artifact('fork-cache')).size, 0);
  });

  test('row 8: only +is_dummy_run=True caches on the fork: 10 dummy samples of log dummy_log, with zero images ("Image path not found", first 5)', async () => {
    const result = await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS, '+is_dummy_run=True'], cacheEnv(fork, 'fork-dummy-cache'));
    assertExit(result, 0);
    assert.equal(messages(result.stdout).filter((l) => l.startsWith('Image path not found: , using dummy zeros.')).length, 5);
    assert.deepEqual(list(fork.artifact('fork-dummy-cache')), ['dummy_log']);
    assert.equal(cacheTokens(fork.artifact('fork-dummy-cache')).size, 10);
  });

  test("row 2: GRPO on the fork's torchax trainer fails on its first step: tokens_list=None is iterated (run_training_recogdrive_torchax.py:256-261)", async () => {
    const bed = new SimulatorBed('rd-sim-nogrpo-');
    beds.push(bed);
    assertExit(await bed.seed('feature-cache-real-scenes,eval-without-torchrun'), 0);
    for (const name of ['feature-cache', 'stage2', 'stage2-export', 'metric-cache']) fs.cpSync(fixed.artifact(name), bed.artifact(name), { recursive: true });
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS()], bed.env(stage3Mounts(bed, 'stage3')));
    assertExit(result, 1);
    assert.match(result.stderr, /forward_grpo/);
    assert.equal(lastLine(result.stderr), "TypeError: 'NoneType' object is not iterable");
    assert.deepEqual(list(bed.artifact('stage3')).filter((f) => f.startsWith('checkpoint')), []);
  });

  test('row 1: the GRPO reference policy is torch.load()ed; the Stage 2 orbax directory raises IsADirectoryError (recogdrive_diffusion_planner.py:279-294)', async () => {
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE3_ARGS(STAGE2_ORBAX)], fork.env(stage3Mounts(fork, 'stage3-reference')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "IsADirectoryError: [Errno 21] Is a directory: '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt'");
  });

  test('row 3: the torchax trainer never reads agent.checkpoint_path (it never calls initialize())', async () => {
    const args = [...STAGE2_ARGS, 'agent.checkpoint_path=/recogdrive/nowhere/checkpoint.pt'];
    const result = await sim(['python', TRAINING_SCRIPT, ...args], fork.env(fork.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [`${REPO}/work_dirs/stage2_output`, 'stage2-ignores-checkpoint'])));
    assertExit(result, 0);
  });

  test('row 3: the evaluation torch.load()s agent.checkpoint_path outside its per-token try: an orbax directory fails the run (recogdrive_agent.py:90-99)', async () => {
    const bed = new SimulatorBed('rd-sim-noorbax-');
    beds.push(bed);
    assertExit(await bed.seed('eval-without-torchrun'), 0);
    fs.cpSync(fixed.artifact('stage2'), bed.artifact('stage2'), { recursive: true });
    fs.cpSync(fixed.artifact('stage2-export'), bed.artifact('stage2-export'), { recursive: true });
    const result = await sim(['python', EVAL_SCRIPT, ...evalArgs([], STAGE2_ORBAX)], bed.env(evalMounts(bed, 'eval')));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), "IsADirectoryError: [Errno 21] Is a directory: '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt'");
  });

  test('row 6: the evaluation is an NCCL job: plain python has no rendezvous, and with one but without GPUs NCCL fails (run_pdm_score_recogdrive.py:184-190)', async () => {
    const plain = await sim(['python', EVAL_SCRIPT, ...evalArgs()], fork.env(evalMounts(fork, 'eval-plain')));
    assertExit(plain, 1);
    assert.equal(lastLine(plain.stderr), 'ValueError: Error initializing torch.distributed using env:// rendezvous: environment variable MASTER_ADDR expected, but not set');
    const rendezvous = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500', RANK: '0', WORLD_SIZE: '1', LOCAL_RANK: '0' };
    const noGpu = await sim(['python', EVAL_SCRIPT, ...evalArgs()], fork.env(evalMounts(fork, 'eval-no-gpu'), rendezvous));
    assertExit(noGpu, 1);
    assert.equal(lastLine(noGpu.stderr), 'RuntimeError: ProcessGroupNCCL is only supported with GPUs, no GPUs found!');
  });
});

describe('readers iterate as upstream does (row 7)', () => {
  test('row 7: an evaluation reads a pipeline-made feature cache, its markers beside it; a DONE.json at the cache root is a NotADirectoryError (dataset.py:183-191)', async () => {
    // The navtest cache made by the stage wrapper around the caching script (train_logs=[] as the contract adds for navtest).
    const output = fixed.artifact('navtest-cache');
    const markers = path.join(path.dirname(output), '_recogdrive', 'navtest-cache');
    const args = [...CACHE_ARGS.map((a) => (a === 'train_test_split=navtrain' ? 'train_test_split=navtest' : a)), 'train_logs=[]'];
    const made = await wrapped([FEATURE_CACHE_SCRIPT, ...args], cacheEnv(fixed, 'navtest-cache'), { outputDir: output, markerDir: markers, outputCheck: TOKEN_CACHE_CHECK });
    assertExit(made, 0);
    assert.ok(fs.existsSync(path.join(markers, 'DONE.json')), 'the wrapper recorded its verdict');
    assert.equal(cacheTokens(output).size, TEST_TOKENS);

    const readCache = [`${REPO}/data/eval_cache`, 'navtest-cache', true] as [string, string, boolean];
    const args2 = evalArgs().map((a) => (a.startsWith('cache_path=') ? 'cache_path=/recogdrive/data/eval_cache' : a));
    const ok = await sim(['python', EVAL_SCRIPT, ...args2], fixed.env(evalMounts(fixed, 'eval-on-pipeline-cache', [readCache])));
    assertExit(ok, 0);
    assert.match(ok.stdout, new RegExp(`Number of successful scenarios: ${TEST_TOKENS}\\.`));

    // The old layout put DONE.json at the cache root: upstream's reader dies on it.
    fs.writeFileSync(path.join(output, 'DONE.json'), '{}');
    const broken = await sim(['python', EVAL_SCRIPT, ...args2], fixed.env(evalMounts(fixed, 'eval-on-old-layout', [readCache])));
    assertExit(broken, 1);
    assert.equal(lastLine(broken.stderr), "NotADirectoryError: [Errno 20] Not a directory: '/recogdrive/data/eval_cache/DONE.json'");
  });
});

describe('output lines as the real programs print them', { concurrency: true }, () => {
  test("row 9: the feature cache's Batch lines carry hydra's job-logging prefix", async () => {
    const result = await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS], cacheEnv(fixed, 'cache-lines'));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /^Batch /m);
    assert.match(result.stdout, /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\]\[__main__\]\[INFO\] - Batch 0: /m);
  });

  test('row 10: the metric cache shows only Ray\'s chunk bar: total = chunks (one per worker thread), 0 at start, moving as whole chunks finish; per-scenario lines go to the Ray task logs', async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS, 'worker.threads_per_node=2'], fixed.env(fixed.mounts([`${REPO}/data/metric_cache`, 'metric-chunks'])));
    assertExit(result, 0);
    const bars = result.stderr.split('\n').filter((l) => l.startsWith('Ray objects:')).map((l) => /\| (\d+)\/(\d+) /.exec(l)?.slice(1, 3).join('/'));
    // 4 logs (3 train, 1 val) over 2 threads: np.array_split gives chunks of 2 and 2 logs.
    assert.deepEqual(bars, ['0/2', '1/2', '2/2']);
    assert.doesNotMatch(result.stdout, /Processing scenario/);
    const logs = list(path.join(fixed.artifact('metric-chunks'), 'metadata', 'logs'));
    assert.equal(logs.length, 2);
    const lines = logs.flatMap((l) => fs.readFileSync(path.join(fixed.artifact('metric-chunks'), 'metadata', 'logs', l), 'utf8').split('\n').filter((x) => x.includes('Processing scenario')));
    assert.equal(lines.length, NAVTRAIN_TOKENS);
  });

  test('row 11: the evaluation prints "Rank 0 processing scenario i / N" per token after its "Loading logs" bars', async () => {
    const result = await sim(['python', EVAL_SCRIPT, ...evalArgs()], fixed.env(evalMounts(fixed, 'eval-lines')));
    assertExit(result, 0);
    assert.match(result.stderr, /^Loading logs: /m);
    const ranks = messages(result.stdout).filter((l) => l.startsWith('Rank 0 processing scenario')).map((l) => /scenario (\d+) \/ (\d+)/.exec(l)!.slice(1).join('/'));
    assert.deepEqual(ranks, Array.from({ length: TEST_TOKENS }, (_, i) => `${i + 1}/${TEST_TOKENS}`));
  });

  test('row 12: stages 2/3 load their caches (a "Loading Valid Caches" bar over logs) before training, then log the 0-based global step every 10 steps', async () => {
    const args = STAGE2_ARGS.map((a) => (a === 'trainer.params.max_epochs=2' ? 'trainer.params.max_epochs=3' : a)).concat('dataloader.params.batch_size=1');
    const result = await sim(['python', TRAINING_SCRIPT, ...args], fixed.env(fixed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [`${REPO}/work_dirs/stage2_output`, 'stage2-steps'])));
    assertExit(result, 0);
    assert.ok(result.stderr.indexOf('Loading Valid Caches') >= 0);
    const steps = messages(result.stdout).filter((l) => l.startsWith('Epoch: ')).map((l) => /Epoch: (\d+), Step: (\d+)/.exec(l)!.slice(1).join('/'));
    // 12 samples, batch 1, 3 epochs: global steps 0..35, logged at 0, 10, 20, 30.
    assert.deepEqual(steps, ['0/0', '0/10', '1/20', '2/30']);
  });
});

describe('what a retry finds (row 13)', () => {
  test('row 13: a metric cache run again after a crash keeps every metric_cache.pkl it wrote and computes only the rest (metric_cache_processor.py:211-214)', async () => {
    const mounts = fixed.mounts([`${REPO}/data/metric_cache`, 'metric-resume']);
    const crashed = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], fixed.env(mounts, { RECOGDRIVE_SIM_FAULT: 'crash', RECOGDRIVE_SIM_FAULT_AT: '0.5' }));
    assertExit(crashed, 1);
    const written = filesNamed(fixed.artifact('metric-resume'), 'metric_cache.pkl');
    assert.ok(written.length > 0 && written.length < NAVTRAIN_TOKENS, `${written.length} written before the crash`);
    // Mark what the first attempt wrote: a rewrite would replace the mark.
    for (const file of written) fs.writeFileSync(path.join(fixed.artifact('metric-resume'), file), 'first attempt');
    const again = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], fixed.env(mounts));
    assertExit(again, 0);
    for (const file of written) assert.equal(fs.readFileSync(path.join(fixed.artifact('metric-resume'), file), 'utf8'), 'first attempt', `${file} was kept`);
    assert.equal(filesNamed(fixed.artifact('metric-resume'), 'metric_cache.pkl').length, NAVTRAIN_TOKENS);
  });

  test('row 13: a feature cache run again computes and rewrites every token (its dataset has cache_path=None: nothing is skipped)', async () => {
    const env = cacheEnv(fixed, 'cache-rerun');
    assertExit(await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS], env), 0);
    const [log] = list(fixed.artifact('cache-rerun'));
    const [token] = list(path.join(fixed.artifact('cache-rerun'), log!));
    const file = path.join(fixed.artifact('cache-rerun'), log!, token!, 'internvl_feature.gz');
    fs.writeFileSync(file, 'first attempt');
    assertExit(await sim(['python', FEATURE_CACHE_SCRIPT, ...CACHE_ARGS], env), 0);
    assert.notEqual(fs.readFileSync(file, 'utf8'), 'first attempt');
  });
});

describe('knobs and defaults as upstream has them', { concurrency: true }, () => {
  test('row 14: NUPLAN_MAP_VERSION is read by nothing: the metric cache runs without it (maps version hard-coded, caching.py:54)', async () => {
    const env = fixed.env(fixed.mounts([`${REPO}/data/metric_cache`, 'metric-no-version']));
    delete env.NUPLAN_MAP_VERSION;
    assertExit(await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], env), 0);
  });

  test('rows 5 and 14: hydra accepts trainer.params.precision and agent.cam_type=multi, and the torchax trainer does exactly the same with them', async () => {
    const run = async (name: string, extra: string[]) => {
      const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS, ...extra], fixed.env(fixed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [`${REPO}/work_dirs/stage2_output`, name])));
      assertExit(result, 0);
      return messages(result.stdout).filter((l) => l.startsWith('Epoch: ') || l.startsWith('Saved checkpoint')).map((l) => l.replace(/Time: [\d.]+s/, ''));
    };
    const plain = await run('stage2-plain', []);
    const knobs = await run('stage2-knobs', ['trainer.params.precision=bf16', 'trainer.params.gradient_clip_val=0.1', COMMON_AGENT[3]!.replace('single', 'multi')]);
    assert.deepEqual(knobs.map((l) => l.replace('stage2-knobs', 'stage2-plain')), plain);
  });

  test('row 15: stage 2 reads only the log folders named in train_logs (13,180 standard train logs by default): a cache of other logs has 0 samples', async () => {
    // The fork's dummy-run cache: log dummy_log, which is no standard train log.
    fs.cpSync(fork.artifact('fork-dummy-cache'), fixed.artifact('dummy-cache'), { recursive: true });
    const result = await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], fixed.env(fixed.mounts([`${REPO}/data/cache_output`, 'dummy-cache', true], [`${REPO}/work_dirs/stage2_output`, 'stage2-dummy'])));
    assertExit(result, 1);
    assert.ok(messages(result.stdout).some((l) => l.startsWith("train_logs type: <class 'omegaconf.listconfig.ListConfig'>") && l.includes('(13180 items)')));
    assert.equal(lastLine(result.stderr), 'ValueError: num_samples should be a positive integer value, but got num_samples=0');
  });

  test("row 15: the evaluation's default worker is ray_distributed_no_torch (default_common.yaml), not ray_distributed", async () => {
    const args = evalArgs();
    const result = await sim(['python', EVAL_SCRIPT, ...args], fixed.env(evalMounts(fixed, 'eval-worker')));
    assertExit(result, 0);
    assert.ok(messages(result.stdout).includes('Worker: RayDistributedNoTorch'));
  });

  test("row 4: hydra refuses seed on the metric cache with its own wording, exit 1 (default_metric_caching.yaml has no seed)", async () => {
    const result = await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS, 'seed=7'], { ...fixed.env(fixed.mounts([`${REPO}/data/metric_cache`, 'metric-seed'])), HYDRA_FULL_ERROR: '' });
    assertExit(result, 1);
    assert.match(result.stderr, /^Could not override 'seed'\.\nTo append to your config use \+seed=7\nKey 'seed' is not in struct\n {4}full_key: seed\n {4}object_type=dict\n/m);
    assert.deepEqual(fs.existsSync(fixed.artifact('metric-seed')) ? filesNamed(fixed.artifact('metric-seed'), 'metric_cache.pkl') : [], [], 'nothing was cached');
  });
});
