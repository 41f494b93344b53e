/**
 * docker/bridge/orbax_to_torch.py for real, in the venv of infra/local/install-bridge-venv.ts (the
 * :unified image's torch, jax, flax, orbax-checkpoint and torchax, on the CPU): checkpoints written
 * by torchax.save_checkpoint itself, the way run_training_recogdrive_torchax.py:307-324 calls it
 * (host arrays wrapped in torchax tensors, {'params', 'epoch', 'global_step'}), are converted and
 * read back with the real torch.load(path, map_location="cpu")["state_dict"], key by key: names,
 * shapes, dtypes and bit-exact values. Each refusal is checked, and the simulator's stand-in
 * (docker/simulator/scripts/orbax-to-torch.ts) must print the same traceback or usage error with
 * the same exit code for the same command line. Skips (outside CI) when the venv cannot be installed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBridgeVenv } from '../../infra/local/install-bridge-venv.ts';
import { LocalOutputReader } from '../../docker/stage-wrapper/local-reader.ts';
import { checkOutputs } from '../../pipeline/verify/index.ts';
import { pinnedTool } from '../images/pinned-tool.ts';
import { bridgeRunner, ownStderr, show } from './bridge-runner.ts';

const venv = await pinnedTool(() => ensureBridgeVenv());
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-bridge-'));
const { python, bridge, simulated } = bridgeRunner(tmp, venv);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Writes every checkpoint of the test with torchax.save_checkpoint, as the torchax trainer does. */
const WRITE_CHECKPOINTS = String.raw`
import json, os, shutil, sys
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import numpy as np, jax, jax.numpy as jnp, torchax
from torchax import tensor as torchax_tensor

def params():
    rng = np.random.default_rng(7)
    return {
        "action_head.dit.x_embedder.weight": jnp.asarray(rng.standard_normal((384, 3), dtype=np.float32)),
        "action_head.feature_encoder.bias": jnp.asarray(rng.standard_normal(384, dtype=np.float32)).astype(jnp.bfloat16),
        # Integer buffers: JAX without x64 holds torch's int64 as int32, which is what the trainer saves.
        "action_head.dit.pos_ids": jnp.arange(12, dtype=jnp.int32).reshape(3, 4),
        "action_head.norm.num_batches_tracked": jnp.asarray(7, dtype=jnp.int32),
    }

def save(path, step, epoch, tree_params, key="params"):
    env = torchax.default_env()
    host = jax.device_get(tree_params)
    state = {key: jax.tree_util.tree_map(lambda x: torchax_tensor.Tensor(x, env), host), "epoch": epoch, "global_step": step}
    torchax.save_checkpoint(state, path, step=step)

def uncommit(step_dir):
    file = os.path.join(step_dir, "_CHECKPOINT_METADATA")
    metadata = json.load(open(file))
    metadata["commit_timestamp_nsecs"] = None
    json.dump(metadata, open(file, "w"))

root = sys.argv[1]
good = os.path.join(root, "stage2_output/checkpoint-epoch-1.pt")
save(good, 20, 1, params())
# Newer steps that never committed, beside the committed one: a rename that never happened and a
# step whose commit timestamp was never set. The converter must take checkpoint_20.
shutil.copytree(os.path.join(good, "checkpoint_20"), os.path.join(good, "checkpoint_30.orbax-checkpoint-tmp-0"))
uncommit(os.path.join(good, "checkpoint_30.orbax-checkpoint-tmp-0"))
shutil.copytree(os.path.join(good, "checkpoint_20"), os.path.join(good, "checkpoint_40"))
uncommit(os.path.join(good, "checkpoint_40"))

save(os.path.join(root, "uncommitted.pt"), 5, 0, params())
uncommit(os.path.join(root, "uncommitted.pt/checkpoint_5"))
save(os.path.join(root, "noparams.pt"), 5, 0, params(), key="weights")
save(os.path.join(root, "empty.pt"), 5, 0, {})
save(os.path.join(root, "prefixed.pt"), 5, 0, {"agent." + k: v for k, v in params().items()})
`;

/** torch.load as the GPU scripts call it, then each tensor against the arrays the checkpoint was made of. */
const READ_BACK = String.raw`
import json, sys
import numpy as np, torch
import ml_dtypes
state_dict = torch.load(sys.argv[1], map_location="cpu")["state_dict"]
rng = np.random.default_rng(7)
expected = {
    "agent.action_head.dit.x_embedder.weight": rng.standard_normal((384, 3), dtype=np.float32),
    "agent.action_head.feature_encoder.bias": rng.standard_normal(384, dtype=np.float32).astype(ml_dtypes.bfloat16),
    "agent.action_head.dit.pos_ids": np.arange(12, dtype=np.int32).reshape(3, 4),
    "agent.action_head.norm.num_batches_tracked": np.asarray(7, dtype=np.int32),
}
def same_bits(tensor, array):
    if tensor.dtype == torch.bfloat16:
        return bool(np.array_equal(tensor.view(torch.int16).numpy(), array.view(np.int16)))
    return bool(np.array_equal(tensor.numpy(), array))
report = {key: {"dtype": str(t.dtype), "shape": list(t.shape), "equal": key in expected and same_bits(t, expected[key])} for key, t in state_dict.items()}
# The GPU scripts' own key handling: the planner strips "agent.action_head." (recogdrive_diffusion_planner.py:284-287),
# the agent strips "agent." (recogdrive_agent.py:95).
planner = sorted(k[len("agent.action_head."):] if k.startswith("agent.action_head.") else k for k in state_dict)
agent = sorted(k[len("agent."):] if k.startswith("agent.") else k for k in state_dict)
print(json.dumps({"tensors": report, "planner": planner, "agent": agent, "type": type(state_dict).__name__}))
`;

before(async () => {
  if (venv.path === undefined) return;
  const writer = path.join(tmp, 'write_checkpoints.py');
  fs.writeFileSync(writer, WRITE_CHECKPOINTS);
  const result = await python([writer, tmp]);
  assert.equal(result.code, 0, show(result));
});

test('a torchax checkpoint converts to the state_dict the GPU scripts torch.load, key by key', { skip: venv.skip, timeout: 120_000 }, async () => {
  const args = ['--checkpoint', 'stage2_output/checkpoint-epoch-1.pt', '--output', 'bridge/reference.pt', '--manifest', 'bridge/reference.json'];
  const result = await bridge(args);
  assert.equal(result.code, 0, show(result));
  const checkpoint = path.join(tmp, 'stage2_output/checkpoint-epoch-1.pt');
  assert.equal(result.stdout, `wrote 4 tensors (5428 bytes) from ${checkpoint}/checkpoint_20 to ${path.join(tmp, 'bridge/reference.pt')}\n`);
  // Only the outputs: the temp files were renamed into place.
  assert.deepEqual(fs.readdirSync(path.join(tmp, 'bridge')).sort(), ['reference.json', 'reference.pt']);

  const reader = path.join(tmp, 'read_back.py');
  fs.writeFileSync(reader, READ_BACK);
  const loaded = await python([reader, path.join(tmp, 'bridge/reference.pt')]);
  assert.equal(loaded.code, 0, show(loaded));
  const report = JSON.parse(loaded.stdout) as { tensors: Record<string, unknown>; planner: string[]; agent: string[]; type: string };
  assert.equal(report.type, 'dict');
  assert.deepEqual(report.tensors, {
    'agent.action_head.dit.pos_ids': { dtype: 'torch.int32', shape: [3, 4], equal: true },
    'agent.action_head.dit.x_embedder.weight': { dtype: 'torch.float32', shape: [384, 3], equal: true },
    'agent.action_head.feature_encoder.bias': { dtype: 'torch.bfloat16', shape: [384], equal: true },
    'agent.action_head.norm.num_batches_tracked': { dtype: 'torch.int32', shape: [], equal: true },
  });
  assert.deepEqual(report.planner, ['dit.pos_ids', 'dit.x_embedder.weight', 'feature_encoder.bias', 'norm.num_batches_tracked']);
  assert.deepEqual(report.agent, ['action_head.dit.pos_ids', 'action_head.dit.x_embedder.weight', 'action_head.feature_encoder.bias', 'action_head.norm.num_batches_tracked']);

  const manifest = fs.readFileSync(path.join(tmp, 'bridge/reference.json'), 'utf8');
  assert.deepEqual(JSON.parse(manifest), {
    format: 'recogdrive-orbax-to-torch/1',
    source: { checkpoint, step: 20 },
    epoch: 1,
    prefix: 'agent.',
    output: path.join(tmp, 'bridge/reference.pt'),
    count: 4,
    bytes: 384 * 3 * 4 + 384 * 2 + 12 * 4 + 4,
    tensors: {
      'agent.action_head.dit.pos_ids': { shape: [3, 4], dtype: 'int32' },
      'agent.action_head.dit.x_embedder.weight': { shape: [384, 3], dtype: 'float32' },
      'agent.action_head.feature_encoder.bias': { shape: [384], dtype: 'bfloat16' },
      'agent.action_head.norm.num_batches_tracked': { shape: [], dtype: 'int32' },
    },
  });

  // The contract's output check passes on what the real script wrote.
  const check = await checkOutputs(new LocalOutputReader(tmp, 'beside'), { kind: 'torch-state-dict', file: 'bridge/reference.pt', manifest: 'bridge/reference.json', prefix: 'agent.' });
  assert.deepEqual(check, { problems: [], summary: { bytes: fs.statSync(path.join(tmp, 'bridge/reference.pt')).size, tensors: 4 } });

  // The stand-in writes the same manifest, byte for byte, apart from what a simulated checkpoint
  // cannot know: these tensors are numpy leaves (no write_shape), so their shapes and dtypes are made up.
  const sim = await simulated(['--checkpoint', 'stage2_output/checkpoint-epoch-1.pt', '--output', 'sim/reference.pt', '--manifest', 'sim/reference.json']);
  assert.equal(sim.code, 0, show(sim));
  const simManifest = JSON.parse(fs.readFileSync(path.join(tmp, 'sim/reference.json'), 'utf8')) as Record<string, unknown>;
  const realManifest = JSON.parse(manifest) as Record<string, unknown>;
  for (const key of ['format', 'source', 'epoch', 'prefix', 'count']) assert.deepEqual(simManifest[key], realManifest[key], key);
  assert.deepEqual(Object.keys(simManifest), Object.keys(realManifest));
  assert.deepEqual(Object.keys(simManifest.tensors as object), Object.keys(realManifest.tensors as object));
  const reformatted = JSON.stringify({ ...simManifest, output: realManifest.output, bytes: realManifest.bytes, tensors: realManifest.tensors }, null, 2);
  assert.equal(`${reformatted}\n`, manifest, 'same JSON layout as json.dump(indent=2)');
});

test('--prefix "" keeps names that already carry agent.', { skip: venv.skip, timeout: 60_000 }, async () => {
  const result = await bridge(['--checkpoint', 'prefixed.pt', '--output', 'kept/model.pt', '--manifest', 'kept/model.json', '--prefix', '']);
  assert.equal(result.code, 0, show(result));
  const manifest = JSON.parse(fs.readFileSync(path.join(tmp, 'kept/model.json'), 'utf8')) as { prefix: string; tensors: Record<string, unknown> };
  assert.equal(manifest.prefix, '');
  assert.deepEqual(Object.keys(manifest.tensors), [
    'agent.action_head.dit.pos_ids',
    'agent.action_head.dit.x_embedder.weight',
    'agent.action_head.feature_encoder.bias',
    'agent.action_head.norm.num_batches_tracked',
  ]);
});

/** Each refusal: the real script's last line and exit code, and the stand-in's identical stderr. */
const REFUSALS: Array<{ name: string; args: string[]; code: number; last: (root: string) => string }> = [
  {
    name: 'a checkpoint directory that does not exist',
    args: ['--checkpoint', 'stage2_output/checkpoint-epoch-9.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: checkpoint directory not found: '${root}/stage2_output/checkpoint-epoch-9.pt'`,
  },
  {
    name: 'a checkpoint directory that does not exist, with an explicit --format orbax',
    args: ['--format', 'orbax', '--checkpoint', 'stage2_output/checkpoint-epoch-9.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: checkpoint directory not found: '${root}/stage2_output/checkpoint-epoch-9.pt'`,
  },
  {
    name: 'no committed step (only an uncommitted one)',
    args: ['--checkpoint', 'uncommitted.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) =>
      `BridgeError: no committed orbax step under '${root}/uncommitted.pt' (want checkpoint_<N>/ with a commit timestamp in _CHECKPOINT_METADATA; found: ['checkpoint_5'])`,
  },
  {
    name: 'no params in the tree',
    args: ['--checkpoint', 'noparams.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: no 'params' in the checkpoint tree of '${root}/noparams.pt' (top-level keys: ['epoch', 'global_step', 'weights'])`,
  },
  {
    name: 'an empty params dict',
    args: ['--checkpoint', 'empty.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: the 'params' dict of '${root}/empty.pt' is empty: nothing to convert`,
  },
  {
    name: 'keys that already carry the prefix',
    args: ['--checkpoint', 'prefixed.pt', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: () =>
      "BridgeError: 4 of 4 parameter names already start with the prefix 'agent.' (e.g. 'agent.action_head.dit.pos_ids'); refusing to double it (pass --prefix '' to keep the names as they are)",
  },
  {
    name: 'an output that is a directory',
    args: ['--checkpoint', 'stage2_output/checkpoint-epoch-1.pt', '--output', 'outdir', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: cannot write '${root}/outdir': Is a directory`,
  },
  {
    name: 'an output below a file',
    args: ['--checkpoint', 'stage2_output/checkpoint-epoch-1.pt', '--output', 'afile/sub/m.pt', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: cannot write '${root}/afile/sub/m.pt': Not a directory`,
  },
  {
    name: 'missing required arguments',
    args: ['--checkpoint', 'stage2_output/checkpoint-epoch-1.pt'],
    code: 2,
    last: () => 'orbax_to_torch.py: error: the following arguments are required: --output, --manifest',
  },
  {
    name: 'an option without its value, and an abbreviation',
    args: ['--check', 'a', '--output', 'b', '--manifest'],
    code: 2,
    last: () => 'orbax_to_torch.py: error: argument --manifest: expected one argument',
  },
  {
    name: 'an unknown argument',
    args: ['--checkpoint', 'a', '--output', 'b', '--manifest', 'c', '--epoch', '1'],
    code: 2,
    last: () => 'orbax_to_torch.py: error: unrecognized arguments: --epoch 1',
  },
];

for (const refusal of REFUSALS) {
  test(`refuses ${refusal.name} (exit ${refusal.code}), and the simulator's stand-in says the same`, { skip: venv.skip, timeout: 60_000 }, async () => {
    fs.mkdirSync(path.join(tmp, 'outdir'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'afile'), '');
    const real = await bridge(refusal.args);
    assert.equal(real.code, refusal.code, show(real));
    const stderr = ownStderr(real.stderr);
    assert.equal(stderr.trimEnd().split('\n').at(-1), refusal.last(tmp));
    if (refusal.code === 1) assert.match(stderr, /^Traceback \(most recent call last\):\n/);
    assert.ok(!fs.existsSync(path.join(tmp, 'x')), 'nothing written');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'outdir')), [], 'no temp file left behind');

    const sim = await simulated(refusal.args);
    assert.equal(sim.code, real.code, show(sim));
    assert.equal(sim.stderr, stderr, 'the same traceback or usage error, line for line');
  });
}
