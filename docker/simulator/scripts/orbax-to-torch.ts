/**
 * The bridge docker/bridge/orbax_to_torch.py: a trainer's checkpoint becomes the file the GPU
 * scripts `torch.load(path)["state_dict"]`, keys prefixed `agent.`, plus its manifest JSON.
 * `--format orbax` (default): a torchax/orbax checkpoint directory
 * (`<out>/checkpoint-epoch-<E>.pt/checkpoint_<step>/`), the prefix prepended to every name.
 * `--format lightning`: a Lightning trainer's output folder; the newest
 * `lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt` is reduced to its state_dict, whose
 * keys must already carry the prefix. Played as strictly as the real script: its argparse CLI
 * (usage errors exit 2, `-h` prints its help), its BridgeError tracebacks (exit 1, same frames and
 * messages: test/bridge/orbax-to-torch.test.ts and lightning-to-torch.test.ts compare them with the
 * real script's), the same checkpoint choice, the same manifest bytes.
 *
 * What the simulated checkpoint cannot say is filled in, the same every time: the simulator's
 * orbax checkpoints (../orbax.ts) hold no array data and no scalar values, so a tensor's shape is
 * its `write_shape` in _METADATA when there is one (real orbax writes it for jax.Array leaves),
 * else a plausible DiT-small shape for its name, dtype float32; the epoch is the one in the
 * `checkpoint-epoch-<E>.pt` name. The simulator's Lightning checkpoints (../lightning.ts) are its
 * torch files `{"torch_save": 1, "epoch", "global_step", "state_dict": {key: {shape, dtype}}}`,
 * which say everything the manifest needs. The torch file written is the simulator's JSON
 * `{"torch_save": 1, "state_dict": {...}}`, written and read by ../torch-checkpoint.ts.
 * One unit of work per tensor. partial: the torch file is written, the manifest is not (exit 0).
 */
import path from 'node:path';
import type { ContainerFs } from '../container-fs.ts';
import { PythonError, PythonExit, pyRepr } from '../errors.ts';
import { out, type TracebackFrame } from '../log.ts';
import { torchLoad, torchSave, type TensorInfo } from '../torch-checkpoint.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';

const PROG = 'orbax_to_torch.py';
const MANIFEST_FORMAT = 'recogdrive-orbax-to-torch/1';
const STEP_DIR = /^checkpoint_(\d+)$/;
const VERSION_DIR = /^version_(\d+)$/;
const LIGHTNING_CHECKPOINT = /^epoch=(\d+)-step=(\d+)\.ckpt$/;
const FORMATS = ['orbax', 'lightning'] as const;
type Format = (typeof FORMATS)[number];

// argparse's output for this parser at its default width (80 columns: not a terminal, COLUMNS unset).
const USAGE = [
  'usage: orbax_to_torch.py [-h] --checkpoint CHECKPOINT --output OUTPUT',
  '                         --manifest MANIFEST [--prefix PREFIX]',
  '                         [--format {orbax,lightning}]',
];
const HELP = [
  ...USAGE,
  '',
  "Convert a trainer's checkpoint (a torchax/orbax checkpoint directory, or the",
  'newest PyTorch Lightning checkpoint of an output folder) into a torch.save',
  'state_dict file.',
  '',
  'options:',
  '  -h, --help            show this help message and exit',
  '  --checkpoint CHECKPOINT',
  '                        orbax: the checkpoint-epoch-<E>.pt directory',
  '                        torchax.save_checkpoint wrote; lightning: the',
  "                        trainer's output folder, holding lightning_logs/",
  "  --output OUTPUT       the torch file to write ({'state_dict': {...}})",
  '  --manifest MANIFEST   the JSON manifest to write (keys, shapes, dtypes)',
  '  --prefix PREFIX       orbax: prepended to every parameter name; lightning:',
  '                        what every key must already start with (default:',
  '                        agent.)',
  '  --format {orbax,lightning}',
  '                        what --checkpoint is (default: orbax)',
];

/**
 * Where each BridgeError is raised in the real script, as its traceback shows it: [function, line,
 * code, carets under the call]. The cross-check test fails when the script moves and these do not.
 */
const LINES = {
  module: ['<module>', 319, 'main()'],
  mainLightning: ['main', 272, 'source, state_dict, step, epoch = lightning_state_dict(checkpoint, args.prefix)', `${' '.repeat(34)}${'^'.repeat(45)}`],
  mainCommittedStep: ['main', 275, 'step, step_dir = committed_step(checkpoint)', `${' '.repeat(17)}${'^'.repeat(26)}`],
  mainFlatParams: ['main', 277, 'params = flat_params(tree, checkpoint)', `${' '.repeat(9)}${'^'.repeat(29)}`],
  mainPrefix: ['main', 283, 'raise BridgeError('],
  mainWriteOutput: ['main', 307, 'write_atomically(output, lambda tmp: torch.save({"state_dict": state_dict}, tmp))'],
  mainWriteManifest: ['main', 314, 'write_atomically(os.path.abspath(args.manifest), write_manifest)'],
  notFound: ['committed_step', 99, 'raise BridgeError(f"checkpoint directory not found: {checkpoint!r}")'],
  noCommittedStep: ['committed_step', 114, 'raise BridgeError('],
  noParams: ['flat_params', 136, 'raise BridgeError(f"no \'params\' in the checkpoint tree of {checkpoint!r} (top-level keys: {keys})")'],
  emptyParams: ['flat_params', 151, 'raise BridgeError(f"the \'params\' dict of {checkpoint!r} is empty: nothing to convert")'],
  outputDirNotFound: ['newest_lightning_checkpoint', 176, 'raise BridgeError(f"trainer output folder not found: {output_dir!r}")'],
  noLightningLogs: ['newest_lightning_checkpoint', 180, 'raise BridgeError('],
  noVersion: ['newest_lightning_checkpoint', 191, 'raise BridgeError(f"no version_<V>/ under {logs!r} (found: {present or \'nothing\'})")'],
  noLightningCheckpoint: ['newest_lightning_checkpoint', 201, 'raise BridgeError('],
  lightningNewest: ['lightning_state_dict', 211, 'path = newest_lightning_checkpoint(output_dir)', `${' '.repeat(7)}${'^'.repeat(39)}`],
  lightningLoad: ['lightning_state_dict', 215, 'ckpt = torch.load(path, map_location="cpu", weights_only=False)', `${' '.repeat(7)}${'^'.repeat(56)}`],
  noStateDict: ['lightning_state_dict', 219, 'raise BridgeError(f"no \'state_dict\' in the Lightning checkpoint {path!r} (top-level keys: {keys})")'],
  emptyStateDict: ['lightning_state_dict', 221, 'raise BridgeError(f"the \'state_dict\' of {path!r} is empty: nothing to convert")'],
  lacksPrefix: ['lightning_state_dict', 227, 'raise BridgeError('],
  cannotWrite: ['write_atomically', 264, 'raise BridgeError(f"cannot write {path!r}: {reason}") from None'],
} as const satisfies Record<string, readonly [string, number, string, string?]>;

type Where = keyof typeof LINES;
type BridgeErrorAt = (message: string, ...where: Where[]) => PythonError;

interface Args {
  checkpoint: string;
  output: string;
  manifest: string;
  prefix: string;
  format: Format;
}

/** The manifest the real script writes (json.dump(..., indent=2) + newline). */
export interface BridgeManifest {
  format: string;
  source: { checkpoint: string; step: number | null };
  epoch: number | null;
  prefix: string;
  output: string;
  count: number;
  bytes: number;
  tensors: Record<string, TensorInfo>;
}

/** What either format yields: the state_dict to write and where it came from. */
interface Converted {
  /** The manifest's source.checkpoint: the orbax .pt directory, or the Lightning .ckpt file. */
  source: string;
  /** What the final line says it read: the orbax step directory, or the .ckpt file. */
  readFrom: string;
  step: number | null;
  epoch: number | null;
  /** The tensors under their final names, sorted. */
  tensors: Array<[string, TensorInfo]>;
}

export const orbaxToTorch: ScriptMain = async (ctx) => {
  const args = parseArgs(ctx.args);
  const { fs } = ctx;
  const frame = (where: Where): TracebackFrame => {
    const [fn, line, code, carets] = LINES[where] as readonly [string, number, string, string?];
    return { file: ctx.scriptPath, line, fn, code, ...(carets === undefined ? {} : { carets }) };
  };
  const bridgeError: BridgeErrorAt = (message, ...where) => new PythonError('BridgeError', message, [frame('module'), ...where.map(frame)]);

  const checkpoint = fs.absolute(args.checkpoint);
  const output = fs.absolute(args.output);
  const converted =
    args.format === 'lightning'
      ? lightningStateDict(fs, checkpoint, args.prefix, (message, ...where) => bridgeError(message, 'mainLightning', ...where), frame)
      : orbaxStateDict(fs, checkpoint, args.prefix, bridgeError);

  const work = new Work(converted.tensors.length, ctx.controls, ctx.scriptName);
  const tensors: Record<string, TensorInfo> = {};
  for (const [name, tensor] of converted.tensors) {
    await work.next();
    tensors[name] = tensor;
  }
  await work.finish();
  const manifest: BridgeManifest = {
    format: MANIFEST_FORMAT,
    source: { checkpoint: converted.source, step: converted.step },
    epoch: converted.epoch,
    prefix: args.prefix,
    output,
    count: converted.tensors.length,
    bytes: Object.values(tensors).reduce((sum, t) => sum + t.shape.reduce((n, d) => n * d, 1) * elementSize(t.dtype), 0),
    tensors,
  };

  const stateDict = new Map(Object.entries(tensors));
  writeAtomically(fs, output, (tmp) => torchSave(fs, tmp, stateDict), (message) => bridgeError(message, 'mainWriteOutput', 'cannotWrite'));
  if (isPartial(ctx)) return;
  const manifestPath = fs.absolute(args.manifest);
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  writeAtomically(fs, manifestPath, (tmp) => fs.writeFile(tmp, manifestText), (message) => bridgeError(message, 'mainWriteManifest', 'cannotWrite'));
  out(`wrote ${manifest.count} tensors (${manifest.bytes} bytes) from ${converted.readFrom} to ${output}`);
};

/** main()'s orbax branch: the newest committed step's params, the prefix prepended (refused when a name has it already). */
function orbaxStateDict(fs: ContainerFs, checkpoint: string, prefix: string, bridgeError: BridgeErrorAt): Converted {
  const step = committedStep(fs, checkpoint, (message, where) => bridgeError(message, 'mainCommittedStep', where));
  const stepDir = `${checkpoint}/checkpoint_${step}`;
  const tree = readTree(fs, stepDir);
  if (!tree.topLevel.includes('params')) {
    throw bridgeError(`no 'params' in the checkpoint tree of ${pyRepr(checkpoint)} (top-level keys: ${pyList(tree.topLevel)})`, 'mainFlatParams', 'noParams');
  }
  if (tree.params.size === 0) {
    throw bridgeError(`the 'params' dict of ${pyRepr(checkpoint)} is empty: nothing to convert`, 'mainFlatParams', 'emptyParams');
  }
  const names = [...tree.params.keys()].sort(byCodePoint);
  const carrying = prefix === '' ? [] : names.filter((name) => name.startsWith(prefix));
  if (carrying.length > 0) {
    throw bridgeError(
      `${carrying.length} of ${names.length} parameter names already start with the prefix ${pyRepr(prefix)} ` +
        `(e.g. ${pyRepr(carrying[0]!)}); refusing to double it (pass --prefix '' to keep the names as they are)`,
      'mainPrefix',
    );
  }
  return {
    source: checkpoint,
    readFrom: stepDir,
    step,
    epoch: tree.hasEpoch ? epochOf(checkpoint) : null,
    tensors: names.map((name) => [prefix + name, tree.params.get(name)!]),
  };
}

// ---- argparse ----------------------------------------------------------------------------

const OPTIONS = ['--checkpoint', '--output', '--manifest', '--prefix', '--format'] as const;
type Option = (typeof OPTIONS)[number];
const REQUIRED: readonly Option[] = ['--checkpoint', '--output', '--manifest'];

function usageError(message: string): never {
  throw new PythonExit(2, [...USAGE, `${PROG}: error: ${message}`]);
}

/**
 * argparse.ArgumentParser(allow_abbrev=False) with the script's five options (Python 3.11): an
 * option takes the next argument unless that one looks like an option (`-x`, but not `-1`, `-`,
 * or an argument holding a space), `--opt=value` works, the last occurrence wins, a --format
 * outside its choices fails where it is read; the missing required options are reported before
 * unrecognized arguments; -h prints the help on stdout and exits 0.
 */
function parseArgs(argv: readonly string[]): Args {
  const values = new Map<Option, string>();
  const extras: string[] = [];
  const looksOptional = (arg: string): boolean => {
    if (arg === '' || !arg.startsWith('-') || arg.length === 1) return false;
    if ((OPTIONS as readonly string[]).includes(arg) || arg === '-h' || arg === '--help') return true;
    if (arg.includes('=') && [...OPTIONS, '--help'].includes(arg.split('=', 1)[0]!)) return true;
    if (/^-\d+$|^-\d*\.\d+$/.test(arg)) return false;
    return !arg.includes(' ');
  };
  const set = (name: Option, value: string): void => {
    if (name === '--format' && !(FORMATS as readonly string[]).includes(value)) {
      usageError(`argument --format: invalid choice: ${pyRepr(value)} (choose from ${FORMATS.map(pyRepr).join(', ')})`);
    }
    values.set(name, value);
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--') {
      extras.push(...argv.slice(i));
      break;
    }
    if (!looksOptional(arg)) {
      extras.push(arg);
      continue;
    }
    if (arg === '-h' || arg === '--help' || arg.startsWith('-hh')) {
      // print_help() writes to stdout; then sys.exit(0).
      for (const line of HELP) out(line);
      throw new PythonExit(0, []);
    }
    // `-hX` (X not h) and `--help=X`: argparse refuses an argument to a flag.
    if (/^-h./.test(arg)) usageError(`argument -h/--help: ignored explicit argument ${pyRepr(arg.slice(2))}`);
    if (arg.startsWith('--help=')) usageError(`argument -h/--help: ignored explicit argument ${pyRepr(arg.slice('--help='.length))}`);
    const eq = arg.indexOf('=');
    const name = (eq > 0 ? arg.slice(0, eq) : arg) as Option;
    if (!OPTIONS.includes(name)) {
      extras.push(arg);
      continue;
    }
    if (eq > 0) {
      set(name, arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (next === undefined || next === '--' || looksOptional(next)) usageError(`argument ${name}: expected one argument`);
    set(name, next);
    i += 1;
  }
  const missing = REQUIRED.filter((name) => !values.has(name));
  if (missing.length > 0) usageError(`the following arguments are required: ${missing.join(', ')}`);
  if (extras.length > 0) usageError(`unrecognized arguments: ${extras.join(' ')}`);
  return {
    checkpoint: values.get('--checkpoint')!,
    output: values.get('--output')!,
    manifest: values.get('--manifest')!,
    prefix: values.get('--prefix') ?? 'agent.',
    format: (values.get('--format') ?? 'orbax') as Format,
  };
}

// ---- the checkpoint ----------------------------------------------------------------------

/**
 * The newest `checkpoint_<N>` whose _CHECKPOINT_METADATA is a JSON object with a non-null
 * commit_timestamp_nsecs, as the real committed_step(). (../orbax.ts's committedCheckpoint also
 * takes a metadata file without the field as committed, which the real script does not.)
 */
function committedStep(fs: ContainerFs, checkpoint: string, fail: (message: string, where: 'notFound' | 'noCommittedStep') => PythonError): number {
  if (!fs.isDir(checkpoint)) throw fail(`checkpoint directory not found: ${pyRepr(checkpoint)}`, 'notFound');
  const entries = fs.listDir(checkpoint);
  const steps = entries
    .map((name) => STEP_DIR.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const step of steps) {
    const file = `${checkpoint}/checkpoint_${step}/_CHECKPOINT_METADATA`;
    if (!fs.isFile(file)) continue;
    let metadata: unknown;
    try {
      metadata = JSON.parse(fs.readText(file));
    } catch {
      continue;
    }
    const stamp = typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata) ? (metadata as Record<string, unknown>).commit_timestamp_nsecs : undefined;
    if (stamp !== undefined && stamp !== null) return step;
  }
  const found = entries.length === 0 ? 'nothing' : pyList(entries);
  throw fail(
    `no committed orbax step under ${pyRepr(checkpoint)} (want checkpoint_<N>/ with a commit timestamp in _CHECKPOINT_METADATA; found: ${found})`,
    'noCommittedStep',
  );
}

interface TreeEntry {
  key_metadata?: Array<{ key?: unknown }>;
  value_metadata?: { value_type?: unknown; write_shape?: unknown };
}

/** What orbax's metadata says of the saved tree: its top-level keys and each `params` leaf, flattened with dots. */
function readTree(fs: ContainerFs, stepDir: string): { topLevel: string[]; params: Map<string, TensorInfo>; hasEpoch: boolean } {
  const metadataFile = `${stepDir}/_METADATA`;
  let parsed: { tree_metadata?: Record<string, TreeEntry> };
  try {
    parsed = JSON.parse(fs.readText(metadataFile)) as typeof parsed;
  } catch (error) {
    if (error instanceof PythonError) throw error;
    throw new PythonError('json.decoder.JSONDecodeError', `${(error as Error).message}`);
  }
  const topLevel = new Set<string>();
  const params = new Map<string, TensorInfo>();
  for (const entry of Object.values(parsed.tree_metadata ?? {})) {
    const keys = (entry.key_metadata ?? []).map((k) => String(k.key));
    if (keys[0] === undefined) continue;
    topLevel.add(keys[0]);
    // An empty dict is saved as a leaf of type Dict (skip_deserialize): it restores as {}, no tensor.
    const valueType = entry.value_metadata?.value_type;
    if (keys[0] !== 'params' || keys.length < 2 || valueType === 'Dict' || valueType === 'List') continue;
    const name = keys.slice(1).join('.');
    const written = entry.value_metadata?.write_shape;
    const shape = Array.isArray(written) && written.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ? (written as number[]) : plausibleShape(name);
    params.set(name, { shape, dtype: 'float32' });
  }
  return { topLevel: [...topLevel].sort(byCodePoint), params, hasEpoch: topLevel.has('epoch') };
}

// ---- the Lightning checkpoint ----------------------------------------------------------------

/**
 * newest_lightning_checkpoint(): the highest version_<V> directory under `<output_dir>/lightning_logs`,
 * and in its checkpoints/ the epoch=<E>-step=<S>.ckpt with the highest (E, S). Only the newest
 * version counts: a run (a retry) that saved nothing is refused, not replaced by an older run's file.
 */
function newestLightningCheckpoint(fs: ContainerFs, outputDir: string, fail: BridgeErrorAt): string {
  if (!fs.isDir(outputDir)) throw fail(`trainer output folder not found: ${pyRepr(outputDir)}`, 'outputDirNotFound');
  const logs = `${outputDir}/lightning_logs`;
  if (!fs.isDir(logs)) {
    throw fail(`no lightning_logs/ under ${pyRepr(outputDir)}: not the output folder of a Lightning run (found: ${found(fs.listDir(outputDir))})`, 'noLightningLogs');
  }
  const entries = fs.listDir(logs);
  const versions = entries
    .map((name) => VERSION_DIR.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && fs.isDir(`${logs}/${m[0]}`))
    .map((m) => ({ version: Number(m[1]), name: m[0] }))
    .sort((a, b) => a.version - b.version || byCodePoint(a.name, b.name));
  const newest = versions.at(-1);
  if (newest === undefined) throw fail(`no version_<V>/ under ${pyRepr(logs)} (found: ${found(entries)})`, 'noVersion');
  const versionDir = `${logs}/${newest.name}`;
  const checkpointsDir = `${versionDir}/checkpoints`;
  const present = fs.isDir(checkpointsDir) ? fs.listDir(checkpointsDir).sort(byCodePoint) : [];
  const saved = present
    .map((name) => LIGHTNING_CHECKPOINT.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ epoch: Number(m[1]), step: Number(m[2]), name: m[0] }))
    .sort((a, b) => a.epoch - b.epoch || a.step - b.step || byCodePoint(a.name, b.name));
  const last = saved.at(-1);
  if (last === undefined) {
    throw fail(
      `no checkpoint in the newest Lightning run ${pyRepr(versionDir)} (want checkpoints/epoch=<E>-step=<S>.ckpt; ` +
        `found: ${found(present)}): ModelCheckpoint saved nothing, e.g. the run had no validation data, so val/loss_epoch was never logged`,
      'noLightningCheckpoint',
    );
  }
  return `${checkpointsDir}/${last.name}`;
}

/**
 * main()'s lightning branch (lightning_state_dict()): the newest checkpoint's state_dict, every key
 * already carrying the prefix and kept as it is, with its global_step and epoch.
 */
function lightningStateDict(fs: ContainerFs, outputDir: string, prefix: string, fail: BridgeErrorAt, frame: (where: Where) => TracebackFrame): Converted {
  const file = newestLightningCheckpoint(fs, outputDir, (message, where) => fail(message, 'lightningNewest', where));
  let loaded: ReturnType<typeof torchLoad>;
  try {
    loaded = torchLoad(fs, file);
  } catch (error) {
    if (!(error instanceof PythonError)) throw error;
    if (error.type === 'KeyError' && error.message === "'state_dict'") {
      throw fail(`no 'state_dict' in the Lightning checkpoint ${pyRepr(file)} (top-level keys: ${pyList(topLevelKeys(fs, file))})`, 'noStateDict');
    }
    // torch.load's own failure (not a torch file): raised inside torch, below this frame.
    throw new PythonError(error.type, error.message, [frame('module'), frame('mainLightning'), frame('lightningLoad'), ...error.frames]);
  }
  const names = [...loaded.stateDict.keys()].sort(byCodePoint);
  if (names.length === 0) throw fail(`the 'state_dict' of ${pyRepr(file)} is empty: nothing to convert`, 'emptyStateDict');
  const lacking = names.filter((name) => !name.startsWith(prefix));
  if (lacking.length > 0) {
    throw fail(
      `${lacking.length} of ${names.length} state_dict keys of ${pyRepr(file)} do not start with the prefix ${pyRepr(prefix)} ` +
        `(e.g. ${pyRepr(lacking[0]!)}); a Lightning checkpoint's keys are kept as they are, so each must carry it already`,
      'lacksPrefix',
    );
  }
  const integer = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? Math.trunc(value) : null);
  return {
    source: file,
    readFrom: file,
    step: integer(loaded.extra.global_step),
    epoch: integer(loaded.extra.epoch),
    tensors: names.map((name) => [name, loaded.stateDict.get(name)!]),
  };
}

/** The top-level keys of a simulated torch file that torchLoad refused for its missing state_dict. */
function topLevelKeys(fs: ContainerFs, file: string): string[] {
  const parsed = JSON.parse(fs.readText(file)) as Record<string, unknown>;
  return Object.keys(parsed)
    .filter((key) => key !== 'torch_save')
    .sort(byCodePoint);
}

/** `present or 'nothing'` of the real script: a list's repr, or nothing. */
function found(entries: readonly string[]): string {
  return entries.length === 0 ? 'nothing' : pyList([...entries].sort(byCodePoint));
}

/** DiT-small (hidden 384) shapes for the planner's parameter names; the rest by their kind. */
const SHAPES: ReadonlyArray<readonly [RegExp, number[]]> = [
  [/feature_encoder\.weight$/, [384, 1536]],
  [/x_embedder\.weight$/, [384, 3]],
  [/t_embedder\.mlp\.0\.weight$/, [384, 256]],
  [/attn\.qkv\.weight$/, [1152, 384]],
  [/mlp\.fc1\.weight$/, [1536, 384]],
  [/final_layer\.linear\.weight$/, [3, 384]],
  [/status_encoder\.weight$/, [384, 8]],
  [/(bias|norm\.weight)$/, [384]],
  [/num_batches_tracked$/, []],
];

export function plausibleShape(name: string): number[] {
  return [...(SHAPES.find(([pattern]) => pattern.test(name))?.[1] ?? [384, 384])];
}

/** The epoch the simulated trainer put in the directory name (its checkpoints hold no scalar values). */
function epochOf(checkpoint: string): number | null {
  const match = /^checkpoint-epoch-(\d+)\.pt$/.exec(path.posix.basename(checkpoint));
  return match === null ? null : Number(match[1]);
}

const ELEMENT_SIZE: Record<string, number> = { float64: 8, int64: 8, float32: 4, int32: 4, bfloat16: 2, float16: 2, int16: 2, uint16: 2, int8: 1, uint8: 1, bool: 1 };

function elementSize(dtype: string): number {
  return ELEMENT_SIZE[dtype] ?? 4;
}

// ---- writing ------------------------------------------------------------------------------

/** write_atomically(): a dotted temp file beside the target, then a rename; an OSError becomes BridgeError. */
function writeAtomically(fs: ContainerFs, target: string, write: (tmp: string) => void, fail: (message: string) => PythonError): void {
  const tmp = `${path.posix.dirname(target)}/.${path.posix.basename(target)}.tmp-${process.pid}`;
  try {
    fs.mkdirs(path.posix.dirname(target));
    write(tmp);
    fs.rename(tmp, target);
  } catch (error) {
    if (!(error instanceof PythonError) || !/^\[Errno \d+\] /.test(error.message)) throw error;
    if (fs.isFile(tmp)) fs.remove(tmp);
    // str(OSError) is "[Errno N] <strerror>: '<file>'"; the script reports the strerror.
    const strerror = error.message.replace(/^\[Errno \d+\] /, '').replace(/: (['"]).*\1$/, '');
    throw fail(`cannot write ${pyRepr(target)}: ${strerror}`);
  }
}

// ---- Python's reprs ------------------------------------------------------------------------

/** repr() of a list of str. */
function pyList(items: readonly string[]): string {
  return `[${items.map(pyRepr).join(', ')}]`;
}

/** sorted() order of str: by code point (JS's default sort compares UTF-16 units). */
function byCodePoint(a: string, b: string): number {
  const [x, y] = [[...a].map((c) => c.codePointAt(0)!), [...b].map((c) => c.codePointAt(0)!)];
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
