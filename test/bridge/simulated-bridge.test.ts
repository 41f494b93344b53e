/**
 * The simulator's stand-in for docker/bridge/orbax_to_torch.py (docker/simulator/scripts/orbax-to-torch.ts),
 * run as the stage simulator runs any script: a process, container paths through a mount table.
 * It converts the checkpoint the simulated torchax trainer wrote (Stage 2) into the simulator's
 * torch file, which torchLoad (docker/simulator/torch-checkpoint.ts) reads and Stage 3 takes as its
 * reference policy, where the orbax directory itself is an IsADirectoryError: the bridge is what
 * makes the public fork's GPU-side loaders work (upstream audit rows 1 and 3). Its refusals and faults too.
 * With --format lightning it takes the simulated GPU Stage 2's Lightning output (torchrun,
 * run_training_recogdrive.py: epoch=<E>-step=<S>.ckpt files, a name hydra refuses as a value) to
 * the fixed-name file the simulated GPU Stage 3 takes as its reference policy.
 * That its CLI, errors and manifest are the real script's is in orbax-to-torch.test.ts and
 * lightning-to-torch.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerFs } from '../../docker/simulator/container-fs.ts';
import { saveCheckpoint } from '../../docker/simulator/orbax.ts';
import { MountTable } from '../../docker/simulator/paths.ts';
import { LIGHTNING_PLANNER_KEYS, PLANNER_PARAMS } from '../../docker/simulator/planner-params.ts';
import { plausibleShape, type BridgeManifest } from '../../docker/simulator/scripts/orbax-to-torch.ts';
import { torchLoad } from '../../docker/simulator/torch-checkpoint.ts';
import { LocalOutputReader } from '../../docker/stage-wrapper/local-reader.ts';
import { checkOutputs } from '../../pipeline/verify/index.ts';
import type { OutputCheck } from '../../pipeline/contracts/types.ts';
import {
  assertExit,
  FEATURE_CACHE,
  GPU_STAGE2_SCRIPT,
  GPU_STAGE3_SCRIPT,
  lightningDevices,
  lastLine,
  list,
  messages,
  METRIC_ARGS,
  METRIC_SCRIPT,
  PIP_FIX,
  REPO,
  shell,
  sim,
  SimulatorBed,
  STAGE2_ARGS,
  STAGE3_ARGS,
  torchrun,
  TRAINING_SCRIPT,
} from '../helpers/simulator.ts';

/** Where the stage images ship the converter (docker/stage-images/Dockerfile). */
const BRIDGE = '/opt/recogdrive/bridge/orbax_to_torch.py';
const STAGE2_OUT = `${REPO}/work_dirs/stage2_output`;
const BRIDGE_OUT = `${REPO}/work_dirs/bridge_output`;
const CHECKPOINT = `${STAGE2_OUT}/checkpoint-epoch-1.pt`;
const OUTPUT = `${BRIDGE_OUT}/reference_policy.pt`;
const MANIFEST = `${BRIDGE_OUT}/reference_policy.json`;
const CHECK: OutputCheck = { kind: 'torch-state-dict', file: 'reference_policy.pt', manifest: 'reference_policy.json', prefix: 'agent.' };
/** The GPU Stage 2's output folder and stage2Export's output, as pipeline/contracts/exports.ts mounts them. */
const GPU_STAGE2_OUT = STAGE2_OUT;
const EXPORT_OUT = `${REPO}/work_dirs/stage2_export`;
const GPUS = { RECOGDRIVE_SIM_GPUS: '2' };
const EXPORT_CHECK: OutputCheck = { kind: 'torch-state-dict', file: 'policy.pt', manifest: 'policy.json', prefix: 'agent.' };

const bed = new SimulatorBed('recogdrive-bridge-sim-');
const artifact = (name: string) => bed.artifact(name);
after(() => bed.remove());

const bridgeMounts = (out = 'bridge', readOnly = false) => bed.mounts([STAGE2_OUT, 'stage2', true], [BRIDGE_OUT, out, readOnly]);
const bridgeArgs = (checkpoint = CHECKPOINT) => ['python', BRIDGE, '--checkpoint', checkpoint, '--output', OUTPUT, '--manifest', MANIFEST];

before(async () => {
  // Every fix the simulator knows; none makes torch.load read an orbax directory.
  assertExit(await bed.seed('all'), 0);
  assertExit(await shell(`${PIP_FIX} && ${FEATURE_CACHE}`, bed.env(bed.mounts([`${REPO}/data/cache_output`, 'feature-cache']))), 0);
  const stage2Mounts = bed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [STAGE2_OUT, 'stage2']);
  assertExit(await sim(['python', TRAINING_SCRIPT, ...STAGE2_ARGS], bed.env(stage2Mounts)), 0);
  assertExit(await sim(['python', METRIC_SCRIPT, ...METRIC_ARGS], bed.env(bed.mounts([`${REPO}/data/metric_cache`, 'metric-cache']))), 0);
});

test("the stage 2 trainer's checkpoint converts; torchLoad reads the result and the output check passes", async () => {
  const env = bed.env(bridgeMounts());
  const result = await sim(bridgeArgs(), env);
  assertExit(result, 0);
  assert.equal(result.stdout, `wrote ${PLANNER_PARAMS.length} tensors (${expectedBytes()} bytes) from ${CHECKPOINT}/checkpoint_2 to ${OUTPUT}\n`);
  assert.deepEqual(list(artifact('bridge')), ['reference_policy.json', 'reference_policy.pt']);

  const keys = [...PLANNER_PARAMS].sort().map((name) => `agent.${name}`);
  const fsView = new ContainerFs(MountTable.fromEnv(env));
  const loaded = torchLoad(fsView, OUTPUT);
  assert.deepEqual([...loaded.stateDict.keys()], keys);
  assert.deepEqual(loaded.extra, {});
  assert.deepEqual(loaded.stateDict.get('agent.action_head.dit.x_embedder.weight'), { shape: [384, 3], dtype: 'float32' });

  const torchFile = JSON.parse(fs.readFileSync(path.join(artifact('bridge'), 'reference_policy.pt'), 'utf8')) as { torch_save: number; state_dict: Record<string, unknown> };
  assert.equal(torchFile.torch_save, 1);
  assert.deepEqual(torchFile.state_dict['agent.action_head.dit.x_embedder.weight'], { shape: [384, 3], dtype: 'float32' });

  const manifest = JSON.parse(fs.readFileSync(path.join(artifact('bridge'), 'reference_policy.json'), 'utf8')) as BridgeManifest;
  assert.deepEqual(manifest, {
    format: 'recogdrive-orbax-to-torch/1',
    source: { checkpoint: CHECKPOINT, step: 2 },
    epoch: 1,
    prefix: 'agent.',
    output: OUTPUT,
    count: PLANNER_PARAMS.length,
    bytes: expectedBytes(),
    tensors: torchFile.state_dict,
  });
  assert.deepEqual(Object.keys(manifest.tensors), keys);

  const check = await checkOutputs(new LocalOutputReader(artifact('bridge'), 'beside'), CHECK);
  assert.deepEqual(check, { problems: [], summary: { bytes: fs.statSync(path.join(artifact('bridge'), 'reference_policy.pt')).size, tensors: PLANNER_PARAMS.length } });
});

test('Stage 3 takes the converted file as its reference policy where the orbax directory fails', async () => {
  const stage3 = (reference: string, out: string) =>
    sim(
      ['python', TRAINING_SCRIPT, ...STAGE3_ARGS(reference)],
      bed.env(
        bed.mounts(
          [`${REPO}/data/cache_output`, 'feature-cache', true],
          [`${REPO}/data/metric_cache`, 'metric-cache', true],
          [STAGE2_OUT, 'stage2', true],
          [BRIDGE_OUT, 'bridge', true],
          [`${REPO}/work_dirs/stage3_output`, out],
        ),
      ),
    );
  if (!fs.existsSync(path.join(artifact('bridge'), 'reference_policy.pt'))) assertExit(await sim(bridgeArgs(), bed.env(bridgeMounts())), 0);

  const direct = await stage3(CHECKPOINT, 'stage3-orbax');
  assertExit(direct, 1);
  assert.equal(lastLine(direct.stderr), `IsADirectoryError: [Errno 21] Is a directory: '${CHECKPOINT}'`);

  const bridged = await stage3(OUTPUT, 'stage3-bridged');
  assertExit(bridged, 0);
  assert.doesNotMatch(bridged.stdout, /GRPO checkpoint not found/);
  assert.equal(messages(lastLine(bridged.stdout))[0], 'Saved checkpoint to /recogdrive/work_dirs/stage3_output/checkpoint-epoch-2.pt');
});

test('an unfinished save is refused with the committed-step error; the tmp dir is named', async () => {
  const env = bed.env(bed.mounts([`${REPO}/work_dirs/unfinished`, 'unfinished'], [BRIDGE_OUT, 'bridge-unfinished']));
  saveCheckpoint(new ContainerFs(MountTable.fromEnv(env)), `${REPO}/work_dirs/unfinished/checkpoint-epoch-0.pt`, { params: PLANNER_PARAMS, epoch: 0, globalStep: 3 }, { commit: false });
  const result = await sim(bridgeArgs(`${REPO}/work_dirs/unfinished/checkpoint-epoch-0.pt`), env);
  assertExit(result, 1);
  assert.match(result.stderr, /^Traceback \(most recent call last\):\n {2}File "\/opt\/recogdrive\/bridge\/orbax_to_torch\.py", line \d+, in <module>\n/);
  assert.equal(
    lastLine(result.stderr),
    `BridgeError: no committed orbax step under '${REPO}/work_dirs/unfinished/checkpoint-epoch-0.pt' (want checkpoint_<N>/ with a commit timestamp in _CHECKPOINT_METADATA; found: ['checkpoint_3.orbax-checkpoint-tmp-0'])`,
  );
  assert.deepEqual(list(artifact('bridge-unfinished')), []);
});

test('a missing checkpoint, a read-only output and a bad command line fail as the real script does', async () => {
  const missing = await sim(bridgeArgs(`${STAGE2_OUT}/checkpoint-epoch-5.pt`), bed.env(bridgeMounts('bridge-missing')));
  assertExit(missing, 1);
  assert.equal(lastLine(missing.stderr), `BridgeError: checkpoint directory not found: '${STAGE2_OUT}/checkpoint-epoch-5.pt'`);

  const readOnly = await sim(bridgeArgs(), bed.env(bridgeMounts('bridge-read-only', true)));
  assertExit(readOnly, 1);
  assert.equal(lastLine(readOnly.stderr), `BridgeError: cannot write '${OUTPUT}': Read-only file system`);

  const usage = await sim(['python', BRIDGE, '--checkpoint', CHECKPOINT], bed.env(bridgeMounts('bridge-usage')));
  assertExit(usage, 2);
  assert.equal(
    usage.stderr,
    'usage: orbax_to_torch.py [-h] --checkpoint CHECKPOINT --output OUTPUT\n' +
      '                         --manifest MANIFEST [--prefix PREFIX]\n' +
      '                         [--format {orbax,lightning}]\n' +
      'orbax_to_torch.py: error: the following arguments are required: --output, --manifest\n',
  );
  const help = await sim(['python', BRIDGE, '--help'], bed.env(bridgeMounts('bridge-usage')));
  assertExit(help, 0);
  assert.equal(help.stderr, '');
  assert.match(help.stdout, /--prefix PREFIX {7}orbax: prepended to every parameter name; lightning:/);
});

test('faults: partial leaves the torch file without its manifest (the output check says so); crash writes nothing', async () => {
  const partial = await sim(bridgeArgs(), bed.env(bridgeMounts('bridge-partial'), { RECOGDRIVE_SIM_FAULT: 'partial' }));
  assertExit(partial, 0);
  assert.deepEqual(list(artifact('bridge-partial')), ['reference_policy.pt']);
  const check = await checkOutputs(new LocalOutputReader(artifact('bridge-partial'), 'beside'), CHECK);
  assert.deepEqual(check.problems, ['reference_policy.json is missing: the bridge did not finish']);

  const crash = await sim(bridgeArgs(), bed.env(bridgeMounts('bridge-crash'), { RECOGDRIVE_SIM_FAULT: 'crash' }));
  assertExit(crash, 1);
  assert.equal(lastLine(crash.stderr), 'RuntimeError: simulated crash in orbax_to_torch.py');
  assert.deepEqual(list(artifact('bridge-crash')), []);
});

describe('--format lightning: the GPU Stage 2 (PyTorch Lightning under torchrun) to the GPU Stage 3', () => {
  const stage2 = (out: string, extra: string[] = []) =>
    sim(
      [...torchrun(2), GPU_STAGE2_SCRIPT, ...STAGE2_ARGS, ...lightningDevices(2), ...extra],
      bed.env(bed.mounts([`${REPO}/data/cache_output`, 'feature-cache', true], [GPU_STAGE2_OUT, out]), GPUS),
    );
  const exportArgs = ['python', BRIDGE, '--format', 'lightning', '--checkpoint', GPU_STAGE2_OUT, '--output', `${EXPORT_OUT}/policy.pt`, '--manifest', `${EXPORT_OUT}/policy.json`, '--prefix', 'agent.'];
  const exportEnv = (trainerOut: string, out: string) => bed.env(bed.mounts([GPU_STAGE2_OUT, trainerOut, true], [EXPORT_OUT, out]));

  test("the newest version's newest checkpoint converts; the output check passes and Stage 3 takes it as reference policy", async () => {
    // Two runs (a retry): version_0 and version_1, each with ModelCheckpoint's epoch=0-step=1 and epoch=1-step=2.
    assertExit(await stage2('stage2-gpu'), 0);
    assertExit(await stage2('stage2-gpu'), 0);
    const newest = `${GPU_STAGE2_OUT}/lightning_logs/version_1/checkpoints/epoch=1-step=2.ckpt`;
    assert.deepEqual(list(path.join(artifact('stage2-gpu'), 'lightning_logs/version_1/checkpoints')), ['epoch=0-step=1.ckpt', 'epoch=1-step=2.ckpt']);

    const env = exportEnv('stage2-gpu', 'stage2-export');
    const result = await sim(exportArgs, env);
    assertExit(result, 0);
    assert.equal(result.stdout, `wrote ${LIGHTNING_PLANNER_KEYS.length} tensors (${expectedBytes()} bytes) from ${newest} to ${EXPORT_OUT}/policy.pt\n`);
    assert.deepEqual(list(artifact('stage2-export')), ['policy.json', 'policy.pt']);

    // The keys are the checkpoint's, kept as they are; only the state_dict is written.
    const fsView = new ContainerFs(MountTable.fromEnv(env));
    const ckpt = torchLoad(fsView, newest);
    const exported = torchLoad(fsView, `${EXPORT_OUT}/policy.pt`);
    assert.deepEqual([...exported.stateDict.keys()], [...LIGHTNING_PLANNER_KEYS].sort());
    assert.deepEqual(Object.fromEntries(exported.stateDict), Object.fromEntries(ckpt.stateDict));
    assert.deepEqual(exported.extra, {});
    assert.equal(ckpt.extra.epoch, 1);

    const manifest = JSON.parse(fs.readFileSync(path.join(artifact('stage2-export'), 'policy.json'), 'utf8')) as BridgeManifest;
    assert.deepEqual(manifest.source, { checkpoint: newest, step: 2 });
    assert.equal(manifest.epoch, 1);
    assert.equal(manifest.count, LIGHTNING_PLANNER_KEYS.length);
    const check = await checkOutputs(new LocalOutputReader(artifact('stage2-export'), 'beside'), EXPORT_CHECK);
    assert.deepEqual(check, { problems: [], summary: { bytes: fs.statSync(path.join(artifact('stage2-export'), 'policy.pt')).size, tensors: LIGHTNING_PLANNER_KEYS.length } });

    // The simulated GPU Stage 3 (GRPO) loads it strictly as agent.reference_policy_checkpoint and agent.checkpoint_path.
    const reference = `${EXPORT_OUT}/policy.pt`;
    const stage3 = await sim(
      [...torchrun(2), GPU_STAGE3_SCRIPT, ...STAGE3_ARGS(reference), ...lightningDevices(2)],
      bed.env(
        bed.mounts(
          [`${REPO}/data/cache_output`, 'feature-cache', true],
          [`${REPO}/data/metric_cache`, 'metric-cache', true],
          [EXPORT_OUT, 'stage2-export', true],
          [`${REPO}/work_dirs/stage3_output`, 'stage3-gpu'],
        ),
        GPUS,
      ),
    );
    assertExit(stage3, 0);
    assert.doesNotMatch(stage3.stdout, /Skip loading|GRPO checkpoint not found/);
    assert.equal(lastLine(stage3.stderr), '`Trainer.fit` stopped: `max_epochs=3` reached.');
    const kept = fs.readdirSync(artifact('stage3-gpu'), { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('.ckpt'));
    assert.equal(kept.length, 3);
  });

  test('a newest run without validation data kept no checkpoint: refused, not replaced by the older run', async () => {
    assertExit(await stage2('stage2-gpu-noval'), 0);
    const noval = await stage2('stage2-gpu-noval', ['val_logs=[]']);
    assertExit(noval, 0);
    assert.match(noval.stderr, /`ModelCheckpoint\(monitor='val\/loss_epoch'\)` could not find the monitored key/);

    const result = await sim(exportArgs, exportEnv('stage2-gpu-noval', 'stage2-export-noval'));
    assertExit(result, 1);
    assert.match(result.stderr, /^Traceback \(most recent call last\):\n {2}File "\/opt\/recogdrive\/bridge\/orbax_to_torch\.py", line \d+, in <module>\n/);
    assert.equal(
      lastLine(result.stderr),
      `BridgeError: no checkpoint in the newest Lightning run '${GPU_STAGE2_OUT}/lightning_logs/version_1' (want checkpoints/epoch=<E>-step=<S>.ckpt; found: nothing): ` +
        'ModelCheckpoint saved nothing, e.g. the run had no validation data, so val/loss_epoch was never logged',
    );
    assert.deepEqual(list(artifact('stage2-export-noval')), []);
  });

  test('the torchax output given to --format lightning is refused: no lightning_logs/', async () => {
    const result = await sim(exportArgs, exportEnv('stage2', 'stage2-export-orbax'));
    assertExit(result, 1);
    assert.match(lastLine(result.stderr), /^BridgeError: no lightning_logs\/ under '\/recogdrive\/work_dirs\/stage2_output': not the output folder of a Lightning run \(found: \[.*'checkpoint-epoch-1\.pt'.*\]\)$/);
  });
});

function expectedBytes(): number {
  return PLANNER_PARAMS.reduce((sum, name) => sum + plausibleShape(name).reduce((n, d) => n * d, 1) * 4, 0);
}
