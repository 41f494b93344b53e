/**
 * The upstream GPU scripts as the simulator plays them (run_training_recogdrive.py,
 * run_training_recogdrive_rl.py under torchrun, PyTorch Lightning): at least as strict as the real
 * ones on what our commands could get wrong: the rendezvous, devices against GPUs and the world
 * size, checkpoint files versus directories, the `agent.action_head.` keys the reference policy
 * must carry, and validation data, without which ModelCheckpoint writes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertExit,
  FEATURE_CACHE_ARGS,
  FEATURE_CACHE_SCRIPT,
  GPU_STAGE2_SCRIPT,
  GPU_STAGE3_SCRIPT,
  EVAL_ARGS,
  EVAL_SCRIPT,
  csvRows,
  lastLine,
  lightningDevices,
  messages,
  METRIC_ARGS,
  METRIC_SCRIPT,
  REPO,
  sim,
  SimulatorBed,
  STAGE2_ARGS,
  STAGE3_ARGS,
  torchrun,
  TRAIN_TOKENS,
  VAL_TOKENS,
} from '../helpers/simulator.ts';
import { recordInstalled } from '../../docker/simulator/site-packages.ts';

const bed = new SimulatorBed('rd-sim-gpu-');
after(() => bed.remove());
const GPUS = { RECOGDRIVE_SIM_GPUS: '2' };
const REFERENCE = '/recogdrive/work_dirs/stage2_output/policy.pt';

const stage2Mounts = (out: string) => bed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [`${REPO}/work_dirs/stage2_output`, out]);
const stage3Mounts = (out: string) =>
  bed.mounts(
    [`${REPO}/data/cache_output`, 'feature-cache', true],
    [`${REPO}/data/metric_cache`, 'metric-cache', true],
    [`${REPO}/work_dirs/stage2_output`, 'stage2', true],
    [`${REPO}/work_dirs/stage3_output`, out],
  );
const checkpoints = (artifact: string) =>
  fs.existsSync(bed.artifact(artifact))
    ? fs.readdirSync(bed.artifact(artifact), { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.ckpt')).sort()
    : [];
const readTorch = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as { torch_save: number; state_dict: Record<string, { shape: number[] }>; epoch?: number };

before(async () => {
  assertExit(await bed.seed('all'), 0);
  const cacheEnv = bed.env(bed.mounts([`${REPO}/data/cache_output`, 'feature-cache']));
  recordInstalled(cacheEnv.RECOGDRIVE_SIM_STATE_DIR!, { 'hydra-core': '1.3.2', omegaconf: '2.3.0' });
  assertExit(await sim(['python', FEATURE_CACHE_SCRIPT, ...FEATURE_CACHE_ARGS], cacheEnv), 0);
  assertExit(await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], bed.env(bed.mounts([`${REPO}/data/metric_cache`, 'metric-cache']))), 0);
  const stage2 = await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2)], bed.env(stage2Mounts('stage2'), GPUS));
  assertExit(stage2, 0);
  // What stage2Export leaves: the newest kept checkpoint as a fixed-name file (its keys are already `agent.*`).
  const newest = checkpoints('stage2').at(-1)!;
  fs.copyFileSync(path.join(bed.artifact('stage2'), newest), path.join(bed.artifact('stage2'), 'policy.pt'));
});

describe('the GPU trainers (PyTorch Lightning under torchrun)', { concurrency: true }, () => {
  test('Stage 2 trains on the train logs, validates on the val logs and keeps Lightning checkpoints with agent.* keys', async () => {
    const result = await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2)], bed.env(stage2Mounts('stage2-again'), GPUS));
    assertExit(result, 0);
    const lines = messages(result.stdout);
    assert.ok(lines.includes(`Num training samples: ${TRAIN_TOKENS}`));
    assert.ok(lines.includes(`Num validation samples: ${VAL_TOKENS}`));
    assert.match(result.stderr, /^GPU available: True \(cuda\), used: True$/m);
    assert.match(result.stderr, /^Epoch 1: 100%\|██████████\| 1\/1 .*val\/loss_epoch=/m);
    assert.equal(lastLine(result.stderr), '`Trainer.fit` stopped: `max_epochs=2` reached.');
    assert.deepEqual(checkpoints('stage2-again'), ['lightning_logs/version_0/checkpoints/epoch=0-step=1.ckpt', 'lightning_logs/version_0/checkpoints/epoch=1-step=2.ckpt']);
    const ckpt = readTorch(path.join(bed.artifact('stage2-again'), 'lightning_logs/version_0/checkpoints/epoch=1-step=2.ckpt'));
    assert.equal(ckpt.epoch, 1);
    assert.ok(Object.keys(ckpt.state_dict).length > 0);
    assert.ok(Object.keys(ckpt.state_dict).every((k) => k.startsWith('agent.action_head.')), Object.keys(ckpt.state_dict).join(', '));
  });

  test('a second run writes a new lightning_logs/version_<V> (nothing is resumed)', async () => {
    const env = () => bed.env(stage2Mounts('stage2-twice'), GPUS);
    assertExit(await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2)], env()), 0);
    assertExit(await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2)], env()), 0);
    assert.deepEqual(fs.readdirSync(path.join(bed.artifact('stage2-twice'), 'lightning_logs')).sort(), ['version_0', 'version_1']);
  });

  test('Stage 3 (GRPO) loads the exported Stage 2 policy as reference and start, and trains with Lightning', async () => {
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(REFERENCE), ...lightningDevices(2)], bed.env(stage3Mounts('stage3'), GPUS));
    assertExit(result, 0);
    assert.doesNotMatch(result.stdout, /Skip loading|GRPO checkpoint not found/);
    assert.equal(checkpoints('stage3').length, 3);
  });

  test('no validation data: Lightning warns that val/loss_epoch is missing and writes NO checkpoint, exit 0', async () => {
    const result = await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2), 'val_logs=[]'], bed.env(stage2Mounts('stage2-noval'), GPUS));
    assertExit(result, 0);
    assert.match(result.stderr, /`ModelCheckpoint\(monitor='val\/loss_epoch'\)` could not find the monitored key/);
    assert.deepEqual(checkpoints('stage2-noval'), []);
  });

  test('plain python has no rendezvous: the NCCL process group cannot start', async () => {
    const result = await sim(['python', GPU_STAGE2_SCRIPT, ...STAGE2_ARGS], bed.env(stage2Mounts('stage2-plain'), GPUS));
    assertExit(result, 1);
    assert.equal(lastLine(result.stderr), 'ValueError: Error initializing torch.distributed using env:// rendezvous: environment variable MASTER_ADDR expected, but not set');
  });

  test('a machine without GPUs fails at NCCL, before anything is read', async () => {
    const result = await sim([...torchrun(1), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(1)], bed.env(stage2Mounts('stage2-nogpu')));
    assertExit(result, 1);
    assert.match(result.stderr, /RuntimeError: ProcessGroupNCCL is only supported with GPUs, no GPUs found!/);
  });

  test("default_training.yaml's devices: 8 on a 2-GPU machine is Lightning's MisconfigurationException", async () => {
    const result = await sim([...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS], bed.env(stage2Mounts('stage2-devices'), GPUS));
    assertExit(result, 1);
    assert.match(result.stderr, /MisconfigurationException: You requested gpu: \[0, 1, 2, 3, 4, 5, 6, 7\]\n But your machine only has: \[0, 1\]/);
  });

  test('devices × num_nodes must equal torchrun\'s world size', async () => {
    const result = await sim([...torchrun(1), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2)], bed.env(stage2Mounts('stage2-world'), GPUS));
    assertExit(result, 1);
    assert.match(result.stderr, /ValueError: You set `devices=2` and `num_nodes=1` in Lightning, but the product \(2 \* 1\) does not match the world size \(1\)\./);
  });

  test('only global rank 0 writes checkpoints: the second machine of two trains without writing', async () => {
    const env = bed.env(stage2Mounts('stage2-node1'), { ...GPUS, PET_NODE_RANK: '1', PET_MASTER_ADDR: '10.0.0.2' });
    const result = await sim([...torchrun(2, 2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2, 2)], env);
    assertExit(result, 0);
    assert.deepEqual(checkpoints('stage2-node1'), []);
    assert.doesNotMatch(result.stderr, /^Epoch \d+:/m);
  });

  test('a Lightning checkpoint path cannot be a hydra override value: `=` in epoch=E-step=S.ckpt is a grammar error', async () => {
    const ckpt = `${REPO}/work_dirs/stage2_output/${checkpoints('stage2').at(-1)!}`;
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(ckpt), ...lightningDevices(2)], bed.env(stage3Mounts('stage3-eq'), GPUS));
    assertExit(result, 1);
    assert.match(result.stderr, /hydra\.errors\.OverrideParseException: mismatched input '=' expecting <EOF>/);
  });

  test('the reference policy must be a file: a checkpoint directory is IsADirectoryError', async () => {
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(`${REPO}/work_dirs/stage2_output/lightning_logs`), ...lightningDevices(2)], bed.env(stage3Mounts('stage3-dir'), GPUS));
    assertExit(result, 1);
    assert.match(result.stderr, /IsADirectoryError: \[Errno 21\] Is a directory: '\/recogdrive\/work_dirs\/stage2_output\/lightning_logs'/);
  });

  test('reference keys without `agent.action_head.` are skipped one by one, then strict loading fails on every missing key', async () => {
    const policy = readTorch(path.join(bed.artifact('stage2'), 'policy.pt'));
    const bare = Object.fromEntries(Object.entries(policy.state_dict).map(([k, v]) => [k.slice('agent.'.length), v]));
    fs.writeFileSync(path.join(bed.artifact('stage2'), 'bare.pt'), JSON.stringify({ torch_save: 1, state_dict: bare }));
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(`${REPO}/work_dirs/stage2_output/bare.pt`), ...lightningDevices(2)], bed.env(stage3Mounts('stage3-bare'), GPUS));
    assertExit(result, 1);
    assert.match(result.stdout, /^Skip loading 'action_head\.dit\.x_embedder\.weight' → 'action_head\.dit\.x_embedder\.weight'/m);
    assert.match(result.stderr, /RuntimeError: Error\(s\) in loading state_dict for ReCogDriveDiffusionPlanner:\n\tMissing key\(s\) in state_dict: "feature_encoder\.weight"/);
    assert.deepEqual(checkpoints('stage3-bare'), []);
  });

  test("a missing reference policy is only a warning in _init_grpo; the RL script's agent.initialize() then fails on the same path", async () => {
    const result = await sim([...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(`${REPO}/work_dirs/stage2_output/nowhere.pt`), ...lightningDevices(2)], bed.env(stage3Mounts('stage3-noref'), GPUS));
    assertExit(result, 1);
    assert.match(result.stdout, /^Warning: GRPO checkpoint not found at \/recogdrive\/work_dirs\/stage2_output\/nowhere\.pt\. Skipping loading\.$/m);
    assert.match(result.stderr, /^FileNotFoundError: \[Errno 2\] No such file or directory: '\/recogdrive\/work_dirs\/stage2_output\/nowhere\.pt'$/m);
  });

  test("the evaluation's agent.initialize() loads loosely: a checkpoint whose keys all miss loads nothing and scores an untrained planner", async () => {
    const policy = readTorch(path.join(bed.artifact('stage2'), 'policy.pt'));
    // Keys as the planner names them (no agent.action_head.): the agent knows none of them.
    const planner = Object.fromEntries(Object.entries(policy.state_dict).map(([k, v]) => [k.slice('agent.action_head.'.length), v]));
    fs.writeFileSync(path.join(bed.artifact('stage2'), 'planner-keys.pt'), JSON.stringify({ torch_save: 1, state_dict: planner }));
    const score = async (checkpoint: string, out: string) => {
      const args = EVAL_ARGS.map((a) => (a.startsWith('agent.checkpoint_path=') ? `agent.checkpoint_path=${checkpoint}` : a));
      const result = await sim([...torchrun(2), EVAL_SCRIPT, ...args], bed.env(bed.mounts([`${REPO}/work_dirs/stage2_output`, 'stage2', true], [`${REPO}/work_dirs/eval_output`, out]), GPUS));
      assertExit(result, 0);
      const csv = fs.readdirSync(bed.artifact(out)).find((f) => f.endsWith('.csv'))!;
      return csvRows(path.join(bed.artifact(out), csv)).slice(1, -1);
    };
    const trained = await score(REFERENCE, 'eval-trained');
    const untrained = await score('/recogdrive/work_dirs/stage2_output/planner-keys.pt', 'eval-untrained');
    assert.ok(trained.every((row) => row[3] === '1' && row[4] === '1'), 'the trained planner keeps to the road');
    assert.ok(untrained.some((row) => row[3] === '0' || row[4] === '0'), 'the untrained one does not');
    const mean = (rows: string[][]) => rows.reduce((sum, row) => sum + Number(row[9]), 0) / rows.length;
    assert.ok(mean(untrained) < mean(trained) / 2, `${mean(untrained)} vs ${mean(trained)}`);
  });
});
