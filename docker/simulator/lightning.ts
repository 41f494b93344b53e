/**
 * pytorch_lightning (2.x) as the GPU scripts use it: `pl.Trainer(**cfg.trainer.params,
 * callbacks=[ModelCheckpoint(monitor="val/loss_epoch", mode='min', save_top_k=5, every_n_epochs=1)])`
 * then `trainer.fit(module, train_dataloader, val_dataloader)` under torchrun.
 *
 * Strict where Lightning is:
 * - precision must be one Lightning knows (ValueError);
 * - `devices` beyond the machine's GPUs: MisconfigurationException "You requested gpu: [...]";
 * - under torchrun (TorchElasticEnvironment) devices × num_nodes must equal WORLD_SIZE (ValueError);
 * - DDP shards both datasets over the world (DistributedSampler), so a rank sees ceil(N / world);
 * - ModelCheckpoint saves only what validation measured: with no validation batches the monitored
 *   key never exists, Lightning warns once and writes NO checkpoint (the run still exits 0);
 * - only global rank 0 prints bars and writes checkpoints.
 * Output: Lightning's own logger prints plain lines on stderr (its handler is set up at import,
 * before hydra configures logging); the per-epoch tqdm bar `Epoch E:  45%|...| n/N [..., v_num=V, train/loss_step=x]`;
 * checkpoints at `<default_root_dir>/lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt`
 * (the 5 best by val/loss_epoch), torch files whose state_dict has `agent.*` keys.
 */
import type { ContainerFs } from './container-fs.ts';
import { lossAt } from './curves.ts';
import { unitFloat } from './deterministic.ts';
import { gpusOf } from './distributed.ts';
import { PythonError } from './errors.ts';
import type { HydraConfig } from './hydra-config.ts';
import { err, isLogged, tqdmLine } from './log.ts';
import { parameterShape } from './planner-params.ts';
import { torchSave, type TensorInfo } from './torch-checkpoint.ts';
import type { Work } from './work.ts';

const SITE = '/usr/local/lib/python3.11/site-packages';
const MONITOR = 'val/loss_epoch';
const SAVE_TOP_K = 5;
const PRECISIONS = ['transformer-engine', 'transformer-engine-float16', '16-true', '16-mixed', 'bf16-true', 'bf16-mixed', '32-true', '64-true', '64', '32', '16', 'bf16'];

export interface Trainer {
  maxEpochs: number;
  devices: number;
  numNodes: number;
  accumulate: number;
  rootDir: string;
  globalRank: number;
  worldSize: number;
}

/** `pl.Trainer(**cfg.trainer.params, callbacks=[ModelCheckpoint(...)])`: fails where Lightning's constructor does. */
export function buildTrainer(cfg: HydraConfig, env: NodeJS.ProcessEnv): Trainer {
  const precision = String(cfg.get('trainer.params.precision'));
  if (!PRECISIONS.includes(precision)) {
    throw new PythonError('ValueError', `Precision '${precision}' is invalid. Allowed precision values: (${PRECISIONS.map((p) => `'${p}'`).join(', ')}, 64, 32, 16)`);
  }
  const accelerator = cfg.str('trainer.params.accelerator');
  if (accelerator !== 'gpu' && accelerator !== 'cuda' && accelerator !== 'auto') {
    throw new PythonError('lightning_fabric.utilities.exceptions.MisconfigurationException', `\`${capitalised(accelerator)}Accelerator\` can not run on your system since the accelerator is not available.`);
  }
  const available = gpusOf(env);
  const devices = requestedDevices(cfg.get('trainer.params.devices'), available);
  if (devices > available) {
    throw new PythonError(
      'lightning_fabric.utilities.exceptions.MisconfigurationException',
      `You requested gpu: ${pyIntList(devices)}\n But your machine only has: ${pyIntList(available)}`,
    );
  }
  const numNodes = cfg.int('trainer.params.num_nodes');
  const worldSize = Number(env.WORLD_SIZE ?? '1');
  if (env.TORCHELASTIC_RUN_ID !== undefined && devices * numNodes !== worldSize) {
    throw new PythonError(
      'ValueError',
      `You set \`devices=${devices}\` and \`num_nodes=${numNodes}\` in Lightning, but the product (${devices} * ${numNodes}) does not match the world size (${worldSize}).`,
    );
  }
  const globalRank = Number(env.RANK ?? '0');
  if (globalRank === 0) {
    if (precision === '16-mixed' || precision === '16') err('Using 16bit Automatic Mixed Precision (AMP)');
    if (precision === 'bf16-mixed' || precision === 'bf16') err('Using bfloat16 Automatic Mixed Precision (AMP)');
    err('GPU available: True (cuda), used: True');
    err('TPU available: False, using: 0 TPU cores');
  }
  return {
    maxEpochs: cfg.int('trainer.params.max_epochs'),
    devices,
    numNodes,
    accumulate: Math.max(1, cfg.int('trainer.params.accumulate_grad_batches')),
    rootDir: cfg.str('trainer.params.default_root_dir'),
    globalRank,
    worldSize,
  };
}

export interface FitRun<Sample> {
  train: readonly Sample[];
  val: readonly Sample[];
  batchSize: number;
  /** Reads one batch (the DataLoader's collate, the step's inputs): a bad sample fails here. */
  loadBatch(samples: readonly Sample[], phase: 'train' | 'val'): void;
  /** Loss at the start of training (imitation ~2.4, GRPO ~0.9). */
  lossStart: number;
  /** Parameters saved in each checkpoint (`agent.*`). */
  stateDict: readonly string[];
  work: Work;
}

/**
 * `trainer.fit(...)`: per epoch the rank's training batches, then its validation batches,
 * then ModelCheckpoint. Returns the checkpoints kept (empty when validation never ran).
 */
export async function fit<Sample>(fs: ContainerFs, trainer: Trainer, run: FitRun<Sample>): Promise<string[]> {
  const rank0 = trainer.globalRank === 0;
  const trainShard = shard(run.train, trainer);
  const valShard = shard(run.val, trainer);
  const trainBatches = Math.ceil(trainShard.length / run.batchSize);
  const valBatches = Math.ceil(valShard.length / run.batchSize);
  const version = rank0 ? nextVersion(fs, trainer.rootDir) : 0;
  const logDir = `${trainer.rootDir}/lightning_logs/version_${version}`;
  if (rank0) {
    fs.writeFile(`${logDir}/hparams.yaml`, '{}\n');
    err(`LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [${Array.from({ length: trainer.devices }, (_, i) => i).join(',')}]`);
    err(MODEL_SUMMARY);
    if (valBatches === 0) warn('pytorch_lightning/trainer/connectors/data_connector.py', 424, 'Total length of `DataLoader` across ranks is zero. Please make sure this was your intention.');
  }

  const kept: Array<{ path: string; loss: number }> = [];
  let monitorWarned = false;
  let globalStep = 0;
  for (let epoch = 0; epoch < trainer.maxEpochs; epoch += 1) {
    const started = performance.now();
    let trainLoss = 0;
    for (let b = 0; b < trainBatches; b += 1) {
      await run.work.next();
      run.loadBatch(trainShard.slice(b * run.batchSize, (b + 1) * run.batchSize), 'train');
      if ((b + 1) % trainer.accumulate === 0 || b === trainBatches - 1) globalStep += 1;
      trainLoss = lossAt((epoch * trainBatches + b + 1) / (trainer.maxEpochs * trainBatches), run.lossStart);
      if (rank0 && isLogged(b + 1, trainBatches)) {
        err(bar(`Epoch ${epoch}`, b + 1, trainBatches, started, `v_num=${version}, train/loss_step=${trainLoss.toFixed(3)}`));
      }
    }
    let valLoss: number | undefined;
    if (valBatches > 0) {
      const valStarted = performance.now();
      for (let b = 0; b < valBatches; b += 1) {
        await run.work.next();
        run.loadBatch(valShard.slice(b * run.batchSize, (b + 1) * run.batchSize), 'val');
        if (rank0 && isLogged(b + 1, valBatches)) err(bar('Validation DataLoader 0', b + 1, valBatches, valStarted));
      }
      valLoss = trainLoss * (1.05 + 0.1 * unitFloat(`${trainer.rootDir}/val/${epoch}`));
    }
    if (!rank0) continue;
    const postfix = [`v_num=${version}`, `train/loss_step=${trainLoss.toFixed(3)}`];
    if (valLoss !== undefined) postfix.push(`val/loss_step=${valLoss.toFixed(3)}`, `val/loss_epoch=${valLoss.toFixed(3)}`);
    postfix.push(`train/loss_epoch=${trainLoss.toFixed(3)}`);
    err(bar(`Epoch ${epoch}`, trainBatches, trainBatches, started, postfix.join(', ')));

    if (valLoss === undefined) {
      if (!monitorWarned) {
        // Validation never ran, so ModelCheckpoint only warns (it raises once validation has run).
        warn(
          'pytorch_lightning/callbacks/model_checkpoint.py',
          384,
          `\`ModelCheckpoint(monitor='${MONITOR}')\` could not find the monitored key in the returned metrics: ['train/loss', 'train/loss_step', 'train/loss_epoch', 'epoch', 'step']. HINT: Did you call \`log('${MONITOR}', value)\` in the \`LightningModule\`?`,
        );
        monitorWarned = true;
      }
      continue;
    }
    const path = `${logDir}/checkpoints/epoch=${epoch}-step=${globalStep}.ckpt`;
    const worst = [...kept].sort((a, b) => b.loss - a.loss)[0];
    if (kept.length >= SAVE_TOP_K && worst !== undefined && valLoss >= worst.loss) continue;
    torchSave(fs, path, stateDictOf(run.stateDict), { epoch, global_step: globalStep, pytorch_lightning_version: '2.6.6' });
    kept.push({ path, loss: valLoss });
    if (kept.length > SAVE_TOP_K && worst !== undefined) {
      fs.remove(worst.path);
      kept.splice(kept.indexOf(worst), 1);
    }
  }
  if (rank0) err(`\`Trainer.fit\` stopped: \`max_epochs=${trainer.maxEpochs}\` reached.`);
  return kept.map((k) => k.path);
}

/** Units of work fit() will do on this rank (for Work's pacing). */
export function fitUnits(trainer: Trainer, trainSamples: number, valSamples: number, batchSize: number): number {
  const perRank = (n: number) => Math.ceil(n / trainer.worldSize);
  return trainer.maxEpochs * (Math.ceil(perRank(trainSamples) / batchSize) + Math.ceil(perRank(valSamples) / batchSize));
}

/** DistributedSampler(shuffle off for the simulation): rank r takes every world-th sample, padded by wrapping. */
function shard<Sample>(samples: readonly Sample[], trainer: Trainer): Sample[] {
  if (samples.length === 0) return [];
  const perRank = Math.ceil(samples.length / trainer.worldSize);
  return Array.from({ length: perRank }, (_, i) => samples[(i * trainer.worldSize + trainer.globalRank) % samples.length]!);
}

function stateDictOf(keys: readonly string[]): Map<string, TensorInfo> {
  return new Map(keys.map((key) => [key, { shape: parameterShape(key.replace(/^agent\./, '')), dtype: 'float32' }]));
}

/** TensorBoardLogger/CSVLogger pick the next free `version_<N>` under `lightning_logs`. */
function nextVersion(fs: ContainerFs, rootDir: string): number {
  const dir = `${rootDir}/lightning_logs`;
  if (!fs.isDir(dir)) return 0;
  const versions = fs
    .listDir(dir)
    .map((name) => /^version_(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  return versions.length === 0 ? 0 : Math.max(...versions) + 1;
}

/** devices as Lightning parses it for the GPU accelerator: an int, -1 / "auto" (all), or a list of ids. */
function requestedDevices(value: unknown, available: number): number {
  if (value === -1 || value === '-1' || value === 'auto') return available;
  if (Array.isArray(value)) return value.length === 0 ? 0 : Math.max(...value.map(Number)) + 1;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new PythonError('lightning_fabric.utilities.exceptions.MisconfigurationException', `\`devices\` should be an int, a list or a str, got ${JSON.stringify(value)}.`);
  }
  return n;
}

function bar(desc: string, n: number, total: number, started: number, postfix?: string): string {
  const line = tqdmLine(desc, n, total, (performance.now() - started) / 1000);
  return postfix === undefined ? line : `${line.slice(0, -1)}, ${postfix}]`;
}

/** Lightning's warnings: `<file>:<line>: <message>` (its own formatwarning). */
function warn(file: string, line: number, message: string): void {
  err(`${SITE}/${file}:${line}: ${message}`);
}

const MODEL_SUMMARY = [
    '',
    '  | Name  | Type            | Params | Mode ',
    '--------------------------------------------------',
    '0 | agent | ReCogDriveAgent | 96.2 M | train',
    '--------------------------------------------------',
    '96.2 M    Trainable params',
    '0         Non-trainable params',
    '96.2 M    Total params',
  '384.709   Total estimated model params size (MB)',
].join('\n');

function pyIntList(n: number): string {
  return `[${Array.from({ length: n }, (_, i) => i).join(', ')}]`;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
