/**
 * docker/bridge/orbax_to_torch.py --format lightning for real, in the venv of
 * infra/local/install-bridge-venv.ts (the :unified image's torch and pytorch-lightning, on the CPU):
 * Lightning checkpoints written by a real pl.Trainer fit, the way run_training_recogdrive.py's
 * AgentLightningModule writes them (the agent under `agent`, `val/loss` logged on step and epoch,
 * ModelCheckpoint(monitor="val/loss_epoch", save_top_k=5), on_save_checkpoint dropping
 * `agent.model*`), twice into one output folder (version_0, version_1), are converted and read back
 * with the real torch.load(path, map_location="cpu")["state_dict"]: names, shapes, dtypes and
 * bit-exact values against the newest version's newest .ckpt. Each refusal is checked, and the
 * simulator's stand-in (docker/simulator/scripts/orbax-to-torch.ts) must print the same traceback
 * with the same exit code for the same command line, and write the same manifest when given the
 * simulator's own rendition of the same checkpoints (same paths, same keys, shapes and dtypes).
 * Skips (outside CI) when the venv cannot be installed.
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
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-bridge-lightning-'));
const { bridge, simulated, pythonScript } = bridgeRunner(tmp, venv);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every Lightning output folder of the test, each from real pl.Trainer fits on the CPU. */
const WRITE_CHECKPOINTS = String.raw`
import os, sys, warnings
import torch
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset


class Agent(torch.nn.Module):
    """ReCogDriveAgent in small: a planner head with float32 and bfloat16 parameters, int64 buffers
    (one counts the training steps) and a frozen VLM under 'model', which is not saved."""

    def __init__(self):
        super().__init__()
        self.model = torch.nn.Linear(3, 3)
        self.model.requires_grad_(False)
        self.action_head = torch.nn.Module()
        self.action_head.x_embedder = torch.nn.Linear(3, 8)
        self.action_head.scale = torch.nn.Parameter(torch.randn(8).to(torch.bfloat16))
        self.action_head.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self.action_head.register_buffer("pos_ids", torch.arange(12, dtype=torch.int64).reshape(3, 4))

    def forward(self, x):
        return self.action_head.x_embedder(self.model(x)) * self.action_head.scale.float()


class Tokenizer(torch.nn.Module):
    """A module with extra state: its state_dict entry '_extra_state' is a dict, not a tensor."""

    def get_extra_state(self):
        return {"vocab": ["left", "right"]}

    def set_extra_state(self, state):
        pass


class AgentLightningModule(pl.LightningModule):
    """As navsim's: the agent under self.agent, the loss logged on step and epoch (so val/loss_epoch
    exists once validation ran), the VLM's agent.model* keys dropped from the checkpoint."""

    def __init__(self, extra_head=False, extra_state=False):
        super().__init__()
        self.agent = Agent()
        if extra_head:  # a module outside the agent: its keys lack "agent."
            self.head = torch.nn.Linear(8, 1)
        if extra_state:
            self.agent.action_head.tokenizer = Tokenizer()

    def _step(self, batch, prefix):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.agent(x), y)
        self.log(f"{prefix}/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        self.agent.action_head.steps += 1
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("agent.model")}


def fit(root, seed, validate=True, extra_head=False, extra_state=False):
    torch.manual_seed(seed)
    data = DataLoader(TensorDataset(torch.randn(8, 3), torch.randn(8, 8)), batch_size=4)
    trainer = pl.Trainer(
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ModelCheckpoint(monitor="val/loss_epoch", mode="min", save_top_k=5, every_n_epochs=1)],
    )
    trainer.fit(AgentLightningModule(extra_head, extra_state), data, data if validate else None)


warnings.filterwarnings("ignore")
root = sys.argv[1]
# Two runs into one folder, as a retry does: version_0 and version_1.
fit(os.path.join(root, "lightning-good"), 1)
fit(os.path.join(root, "lightning-good"), 2)
# A retry without validation data: ModelCheckpoint never sees val/loss_epoch and saves nothing.
fit(os.path.join(root, "lightning-noval"), 3)
fit(os.path.join(root, "lightning-noval"), 4, validate=False)
fit(os.path.join(root, "lightning-unprefixed"), 5, extra_head=True)
fit(os.path.join(root, "lightning-extra-state"), 6, extra_state=True)

# Files under Lightning's names that Lightning did not write: no state_dict, an empty one.
def handmade(name, content):
    folder = os.path.join(root, name, "lightning_logs/version_0/checkpoints")
    os.makedirs(folder)
    torch.save(content, os.path.join(folder, "epoch=0-step=1.ckpt"))
handmade("lightning-no-state-dict", {"epoch": 0, "global_step": 1})
handmade("lightning-empty", {"epoch": 0, "global_step": 1, "state_dict": {}})
`;

/**
 * The exported file loaded as the GPU scripts load it, against the .ckpt it came from: each
 * tensor's bytes; whether each file loads with torch's restricted unpickler (weights_only=True).
 */
const READ_BACK = String.raw`
import json, sys
import torch
exported_path, ckpt_path, *others = sys.argv[1:]
state_dict = torch.load(exported_path, map_location="cpu")["state_dict"]
ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
def bits(t):
    return t.detach().reshape(-1).contiguous().view(torch.uint8)
def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))
def loads_weights_only(path):
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception as error:
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
report = {key: {"dtype": str(t.dtype), "shape": list(t.shape), "equal": key in ckpt["state_dict"] and same(t, ckpt["state_dict"][key])} for key, t in state_dict.items()}
weight = "agent.action_head.x_embedder.weight"
print(json.dumps({
    "tensors": report,
    "type": type(state_dict).__name__,
    "top": sorted(torch.load(exported_path, map_location="cpu", weights_only=True)),
    "ckpt_top": sorted(ckpt),
    "ckpt_keys": sorted(ckpt["state_dict"]),
    "ckpt_epoch": ckpt["epoch"],
    "ckpt_step": ckpt["global_step"],
    "steps": int(state_dict["agent.action_head.steps"]),
    "exported_weights_only": loads_weights_only(exported_path),
    "ckpt_weights_only": loads_weights_only(ckpt_path),
    "same_as_others": [same(state_dict[weight], torch.load(other, map_location="cpu", weights_only=False)["state_dict"][weight]) for other in others],
}))
`;

/**
 * Replaces every .ckpt under a folder by the simulator's rendition of it, as docker/simulator/lightning.ts
 * writes its checkpoints: {"torch_save": 1, "epoch", "global_step", "pytorch_lightning_version",
 * "state_dict": {key: {shape, dtype}}}; the same paths, keys, shapes and dtypes.
 */
const RENDER_SIMULATED = String.raw`
import json, os, sys
import torch
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        if not name.endswith(".ckpt"):
            continue
        path = os.path.join(folder, name)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        simulated = {"torch_save": 1}
        for key in ("epoch", "global_step", "pytorch-lightning_version"):
            if key in ckpt:
                simulated[key.replace("-", "_")] = ckpt[key]
        if "state_dict" in ckpt:
            simulated["state_dict"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in ckpt["state_dict"].items()}
        with open(path, "w") as file:
            json.dump(simulated, file)
`;

/** The simulator's rendition of every .ckpt under `dir` (relative to tmp), in place. */
async function renderSimulated(dir: string): Promise<void> {
  const result = await pythonScript('render_simulated.py', RENDER_SIMULATED, [path.join(tmp, dir)]);
  assert.equal(result.code, 0, show(result));
}

const lightning = (checkpoint: string, out: string, extra: string[] = []) => [
  '--format', 'lightning', '--checkpoint', checkpoint, '--output', `${out}/policy.pt`, '--manifest', `${out}/policy.json`, ...extra,
];
const NEWEST = 'lightning-good/lightning_logs/version_1/checkpoints/epoch=1-step=4.ckpt';
const KEYS = ['agent.action_head.pos_ids', 'agent.action_head.scale', 'agent.action_head.steps', 'agent.action_head.x_embedder.bias', 'agent.action_head.x_embedder.weight'];

before(async () => {
  if (venv.path === undefined) return;
  const result = await pythonScript('write_checkpoints.py', WRITE_CHECKPOINTS, [tmp]);
  assert.equal(result.code, 0, show(result));
  // Not a Lightning output: a folder without lightning_logs/.
  fs.mkdirSync(path.join(tmp, 'not-lightning/checkpoint-epoch-1.pt'), { recursive: true });
  // Real checkpoints for the write refusal (lightning-good gets the simulator's rendition in the first test).
  fs.cpSync(path.join(tmp, 'lightning-good'), path.join(tmp, 'lightning-copy'), { recursive: true });
});

test('the newest Lightning checkpoint converts to the state_dict the GPU scripts torch.load, bit for bit', { skip: venv.skip, timeout: 120_000 }, async () => {
  const checkpoints = (version: number) => fs.readdirSync(path.join(tmp, `lightning-good/lightning_logs/version_${version}/checkpoints`)).sort();
  // What the trainer left: two versions, ModelCheckpoint's two epochs in each.
  assert.deepEqual(fs.readdirSync(path.join(tmp, 'lightning-good/lightning_logs')).sort(), ['version_0', 'version_1']);
  assert.deepEqual(checkpoints(0), ['epoch=0-step=2.ckpt', 'epoch=1-step=4.ckpt']);
  assert.deepEqual(checkpoints(1), ['epoch=0-step=2.ckpt', 'epoch=1-step=4.ckpt']);

  const result = await bridge(lightning('lightning-good', 'bridge'));
  assert.equal(result.code, 0, show(result));
  const source = path.join(tmp, NEWEST);
  const output = path.join(tmp, 'bridge/policy.pt');
  assert.equal(result.stdout, `wrote 5 tensors (248 bytes) from ${source} to ${output}\n`);
  assert.deepEqual(fs.readdirSync(path.join(tmp, 'bridge')).sort(), ['policy.json', 'policy.pt']);

  const others = ['lightning-good/lightning_logs/version_1/checkpoints/epoch=0-step=2.ckpt', 'lightning-good/lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt'];
  const loaded = await pythonScript('read_back.py', READ_BACK, [output, source, ...others.map((file) => path.join(tmp, file))]);
  assert.equal(loaded.code, 0, show(loaded));
  const report = JSON.parse(loaded.stdout) as Record<string, unknown>;
  assert.equal(report.type, 'dict');
  assert.deepEqual(report.tensors, {
    'agent.action_head.pos_ids': { dtype: 'torch.int64', shape: [3, 4], equal: true },
    'agent.action_head.scale': { dtype: 'torch.bfloat16', shape: [8], equal: true },
    'agent.action_head.steps': { dtype: 'torch.int64', shape: [], equal: true },
    'agent.action_head.x_embedder.bias': { dtype: 'torch.float32', shape: [8], equal: true },
    'agent.action_head.x_embedder.weight': { dtype: 'torch.float32', shape: [8, 3], equal: true },
  });
  // The .ckpt is all of Lightning's state; the export only the state_dict (the VLM's agent.model* already dropped).
  assert.deepEqual(report.ckpt_top, ['callbacks', 'epoch', 'global_step', 'loops', 'lr_schedulers', 'optimizer_states', 'pytorch-lightning_version', 'state_dict']);
  assert.deepEqual(report.top, ['state_dict']);
  assert.deepEqual(report.ckpt_keys, KEYS);
  assert.equal(report.ckpt_epoch, 1);
  assert.equal(report.ckpt_step, 4);
  assert.equal(report.steps, 4, 'the buffer counted both epochs of 2 batches');
  // It is the newest version's newest epoch: the other epoch and the older version trained to other values.
  assert.deepEqual(report.same_as_others, [false, false]);
  // The export holds tensors only: it loads with torch's restricted unpickler (torch.load's default
  // since torch 2.6, so also how the GPU scripts' torch.load(path, map_location="cpu") reads it).
  // This small module's raw .ckpt loads that way too (no save_hyperparameters); the bridge still
  // reads .ckpt files with weights_only=False, as hyper-parameters can pickle arbitrary objects.
  assert.equal(report.exported_weights_only, true);
  assert.equal(report.ckpt_weights_only, true);

  const manifest = fs.readFileSync(path.join(tmp, 'bridge/policy.json'), 'utf8');
  assert.deepEqual(JSON.parse(manifest), {
    format: 'recogdrive-orbax-to-torch/1',
    source: { checkpoint: source, step: 4 },
    epoch: 1,
    prefix: 'agent.',
    output,
    count: 5,
    bytes: 12 * 8 + 8 * 2 + 8 + 8 * 4 + 24 * 4,
    tensors: {
      'agent.action_head.pos_ids': { shape: [3, 4], dtype: 'int64' },
      'agent.action_head.scale': { shape: [8], dtype: 'bfloat16' },
      'agent.action_head.steps': { shape: [], dtype: 'int64' },
      'agent.action_head.x_embedder.bias': { shape: [8], dtype: 'float32' },
      'agent.action_head.x_embedder.weight': { shape: [8, 3], dtype: 'float32' },
    },
  });

  // The contract's output check passes on what the real script wrote.
  const check = await checkOutputs(new LocalOutputReader(tmp, 'beside'), { kind: 'torch-state-dict', file: 'bridge/policy.pt', manifest: 'bridge/policy.json', prefix: 'agent.' });
  assert.deepEqual(check, { problems: [], summary: { bytes: fs.statSync(output).size, tensors: 5 } });

  // The stand-in, given the simulator's rendition of the same checkpoints at the same paths, picks
  // the same file and writes the same manifest, byte for byte, and the same last line.
  fs.renameSync(path.join(tmp, 'bridge'), path.join(tmp, 'bridge-real'));
  await renderSimulated('lightning-good');
  const sim = await simulated(lightning('lightning-good', 'bridge'));
  assert.equal(sim.code, 0, show(sim));
  assert.equal(sim.stdout, result.stdout);
  assert.equal(fs.readFileSync(path.join(tmp, 'bridge/policy.json'), 'utf8'), manifest);
});

test('the highest version_<V>, then the highest epoch and step, by number; other files are ignored', { skip: venv.skip, timeout: 60_000 }, async () => {
  // Real .ckpt files under the names a long run and several retries would leave.
  const real = path.join(tmp, 'lightning-unprefixed/lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt');
  const logs = path.join(tmp, 'lightning-order/lightning_logs');
  const place = (file: string) => {
    fs.mkdirSync(path.dirname(path.join(logs, file)), { recursive: true });
    fs.copyFileSync(real, path.join(logs, file));
  };
  for (const file of ['version_9/checkpoints/epoch=12-step=30.ckpt', 'version_10/checkpoints/epoch=9-step=20.ckpt', 'version_10/checkpoints/epoch=10-step=21.ckpt']) place(file);
  for (const file of ['version_10/checkpoints/epoch=10-step=22.ckpt', 'version_10/checkpoints/last.ckpt', 'version_10/checkpoints/epoch=11-step=23.ckpt.tmp']) place(file);
  fs.writeFileSync(path.join(logs, 'version_11'), 'a file, not a run');
  const chosen = path.join(logs, 'version_10/checkpoints/epoch=10-step=22.ckpt');

  // --prefix '' also shows the keys are kept as they are: head.* has no prefix to check.
  const args = lightning('lightning-order', 'order', ['--prefix', '']);
  const result = await bridge(args);
  assert.equal(result.code, 0, show(result));
  assert.equal(result.stdout, `wrote 7 tensors (284 bytes) from ${chosen} to ${path.join(tmp, 'order/policy.pt')}\n`);
  const manifest = fs.readFileSync(path.join(tmp, 'order/policy.json'), 'utf8');
  const parsed = JSON.parse(manifest) as { source: unknown; prefix: string; tensors: object };
  assert.deepEqual(parsed.source, { checkpoint: chosen, step: 4 }, 'the step is the checkpoint\'s global_step, not its name\'s');
  assert.equal(parsed.prefix, '');
  assert.deepEqual(Object.keys(parsed.tensors), [...KEYS, 'head.bias', 'head.weight']);

  fs.rmSync(path.join(tmp, 'order'), { recursive: true });
  await renderSimulated('lightning-order');
  const sim = await simulated(args);
  assert.equal(sim.code, 0, show(sim));
  assert.equal(sim.stdout, result.stdout);
  assert.equal(fs.readFileSync(path.join(tmp, 'order/policy.json'), 'utf8'), manifest);
});

/** Each refusal: the real script's last line and exit code, and the stand-in's identical stderr. */
const REFUSALS: Array<{ name: string; args: string[]; code: number; last: (root: string) => string; simulatedCheckpoints?: string }> = [
  {
    name: 'an output folder that does not exist',
    args: lightning('stage2_output', 'x'),
    code: 1,
    last: (root) => `BridgeError: trainer output folder not found: '${root}/stage2_output'`,
  },
  {
    name: 'a folder without lightning_logs/ (an orbax output given to --format lightning)',
    args: lightning('not-lightning', 'x'),
    code: 1,
    last: (root) => `BridgeError: no lightning_logs/ under '${root}/not-lightning': not the output folder of a Lightning run (found: ['checkpoint-epoch-1.pt'])`,
  },
  {
    name: 'a newest version without checkpoints (a retry without validation data), an older one with',
    args: lightning('lightning-noval', 'x'),
    code: 1,
    last: (root) =>
      `BridgeError: no checkpoint in the newest Lightning run '${root}/lightning-noval/lightning_logs/version_1' (want checkpoints/epoch=<E>-step=<S>.ckpt; found: nothing): ` +
      'ModelCheckpoint saved nothing, e.g. the run had no validation data, so val/loss_epoch was never logged',
  },
  {
    name: 'state_dict keys without the prefix',
    args: lightning('lightning-unprefixed', 'x'),
    code: 1,
    last: (root) =>
      `BridgeError: 2 of 7 state_dict keys of '${root}/lightning-unprefixed/lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt' ` +
      "do not start with the prefix 'agent.' (e.g. 'head.bias'); a Lightning checkpoint's keys are kept as they are, so each must carry it already",
    simulatedCheckpoints: 'lightning-unprefixed',
  },
  {
    name: 'a .ckpt without a state_dict',
    args: lightning('lightning-no-state-dict', 'x'),
    code: 1,
    last: (root) => `BridgeError: no 'state_dict' in the Lightning checkpoint '${root}/lightning-no-state-dict/lightning_logs/version_0/checkpoints/epoch=0-step=1.ckpt' (top-level keys: ['epoch', 'global_step'])`,
    simulatedCheckpoints: 'lightning-no-state-dict',
  },
  {
    name: 'an empty state_dict',
    args: lightning('lightning-empty', 'x'),
    code: 1,
    last: (root) => `BridgeError: the 'state_dict' of '${root}/lightning-empty/lightning_logs/version_0/checkpoints/epoch=0-step=1.ckpt' is empty: nothing to convert`,
    simulatedCheckpoints: 'lightning-empty',
  },
  {
    name: 'an output that is a directory',
    args: ['--format', 'lightning', '--checkpoint', 'lightning-copy', '--output', 'outdir', '--manifest', 'x/m.json'],
    code: 1,
    last: (root) => `BridgeError: cannot write '${root}/outdir': Is a directory`,
    simulatedCheckpoints: 'lightning-copy',
  },
  {
    name: 'a --format outside its choices',
    args: ['--format', 'ckpt', '--checkpoint', 'lightning-good', '--output', 'x/m.pt'],
    code: 2,
    last: () => "orbax_to_torch.py: error: argument --format: invalid choice: 'ckpt' (choose from 'orbax', 'lightning')",
  },
  {
    name: 'an abbreviated --form',
    args: ['--form', 'lightning', '--checkpoint', 'lightning-good', '--output', 'x/m.pt', '--manifest', 'x/m.json'],
    code: 2,
    last: () => 'orbax_to_torch.py: error: unrecognized arguments: --form lightning',
  },
];

for (const refusal of REFUSALS) {
  test(`refuses ${refusal.name} (exit ${refusal.code}), and the simulator's stand-in says the same`, { skip: venv.skip, timeout: 60_000 }, async () => {
    fs.mkdirSync(path.join(tmp, 'outdir'), { recursive: true });
    const real = await bridge(refusal.args);
    assert.equal(real.code, refusal.code, show(real));
    const stderr = ownStderr(real.stderr);
    assert.equal(stderr.trimEnd().split('\n').at(-1), refusal.last(tmp));
    if (refusal.code === 1) assert.match(stderr, /^Traceback \(most recent call last\):\n/);
    assert.ok(!fs.existsSync(path.join(tmp, 'x')), 'nothing written');
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'outdir')), [], 'no temp file left behind');

    // A real .ckpt is a torch zip the stand-in cannot read: it gets the simulator's rendition.
    if (refusal.simulatedCheckpoints !== undefined) await renderSimulated(refusal.simulatedCheckpoints);
    const sim = await simulated(refusal.args);
    assert.equal(sim.code, real.code, show(sim));
    assert.equal(sim.stderr, stderr, 'the same traceback or usage error, line for line');
  });
}

test('a state_dict entry that is not a tensor (a module\'s extra state) is refused: the output holds tensors only', { skip: venv.skip, timeout: 60_000 }, async () => {
  // Only the real script meets this: the simulator's checkpoints hold tensors only.
  const result = await bridge(lightning('lightning-extra-state', 'x'));
  assert.equal(result.code, 1, show(result));
  assert.equal(
    ownStderr(result.stderr).trimEnd().split('\n').at(-1),
    `BridgeError: 1 of 6 state_dict entries of '${tmp}/lightning-extra-state/lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt' are not tensors ` +
      "(e.g. 'agent.action_head.tokenizer._extra_state': dict); the output holds tensors only",
  );
  assert.ok(!fs.existsSync(path.join(tmp, 'x')), 'nothing written');
});

test('--help: the same text on stdout, exit 0', { skip: venv.skip, timeout: 60_000 }, async () => {
  const real = await bridge(['--help']);
  assert.equal(real.code, 0, show(real));
  assert.match(real.stdout, /^ {2}--format \{orbax,lightning\}\n {24}what --checkpoint is \(default: orbax\)$/m);
  const sim = await simulated(['--help']);
  assert.equal(sim.code, 0, show(sim));
  assert.equal(sim.stdout, real.stdout);
  assert.equal(sim.stderr, ownStderr(real.stderr));
});
