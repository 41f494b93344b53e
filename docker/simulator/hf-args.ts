/**
 * HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments)) of the Stage 1
 * script, transformers 4.37.2, on Python 3.11's argparse, driven by the generated field list
 * (upstream/hf-arguments.ts): every argument upstream accepts, with its type, nargs, choices,
 * `--no_<name>` negation and default; unambiguous prefixes (`--output` for `--output_dir`, argparse's
 * allow_abbrev). argparse errors print the usage and `<prog>: error: <msg>` and exit 2; arguments the
 * parser does not know are left over and parse_args_into_dataclasses raises ValueError (exit 1).
 * `script.py args.json` (a single .json argument) is parse_json_file: the file's keys, unconverted.
 *
 * Not simulated: TrainingArguments.__post_init__'s checks (bf16 on this device, evaluation vs save
 * strategy...), `-h/--help`, `--` and argparse's `@file` arguments (refused with a SimulatorError).
 */
import { readJsonFile, type ContainerFs } from './container-fs.ts';
import { PythonError, PythonExit, SimulatorError, pyRepr } from './errors.ts';
import { pyFloatRepr, type TracebackFrame } from './log.ts';
import { HF_FIELDS, HF_PARSER, type HfField } from './upstream/hf-arguments.ts';

/** A value as the parsed dataclass holds it. */
export type HfValue = string | number | boolean | null | readonly HfValue[] | Readonly<Record<string, unknown>>;

const SITE_PACKAGES = '/usr/local/lib/python3.11/site-packages';
const HF_ARGPARSER = `${SITE_PACKAGES}/transformers/hf_argparser.py`;
/** internvl_chat_finetune_torchax.py @ 7ed3135: `main()` at the bottom and main()'s parse calls. */
const SCRIPT_LINES = { module: 1345, json: 836, cli: 838 };

interface Action {
  kind: 'help' | 'store' | 'store_false';
  field: HfField | undefined;
  /** argparse's name for messages: the option strings joined with '/'. */
  name: string;
}

/** The parser's option strings in the order argparse registers them (-h/--help first, `--no_x` right after `--x`). */
const OPTIONS: ReadonlyMap<string, Action> = (() => {
  const map = new Map<string, Action>();
  const help: Action = { kind: 'help', field: undefined, name: '-h/--help' };
  for (const option of HF_PARSER.helpOptions) map.set(option, help);
  for (const field of HF_FIELDS) {
    const action: Action = { kind: 'store', field, name: field.optionStrings.join('/') };
    for (const option of field.optionStrings) map.set(option, action);
    if (field.negation !== null) map.set(field.negation, { kind: 'store_false', field, name: field.negation });
  }
  return map;
})();

const FIELDS: ReadonlyMap<string, HfField> = new Map(HF_FIELDS.map((field) => [field.name, field]));

/** argparse's usage, wrapped as HelpFormatter does for a 80-column terminal (the default without a tty). */
export function hfUsage(prog: string): string {
  const parts = [`[${HF_PARSER.helpOptions[0] ?? '-h'}]`];
  for (const field of HF_FIELDS) {
    const option = field.optionStrings[0] ?? `--${field.name}`;
    const metavar = field.choices === null ? field.name.toUpperCase() : `{${field.choices.map((c) => (c === null ? 'None' : String(c))).join(',')}}`;
    const usage =
      field.nargs === '?' ? `${option} [${metavar}]` : field.nargs === '+' ? `${option} ${metavar} [${metavar} ...]` : `${option} ${metavar}`;
    parts.push(field.required ? usage : `[${usage}]`);
    if (field.negation !== null) parts.push(`[${field.negation}]`);
  }
  const prefix = 'usage: ';
  const textWidth = 78;
  const oneLine = `${prefix}${prog} ${parts.join(' ')}`;
  if (oneLine.length <= textWidth) return oneLine;
  const indent = ' '.repeat(prefix.length + prog.length + 1);
  const lines: string[] = [];
  let line: string[] = [];
  let length = prefix.length - 1;
  for (const part of [prog, ...parts]) {
    if (length + 1 + part.length > textWidth && line.length > 0) {
      lines.push(indent + line.join(' '));
      line = [];
      length = indent.length - 1;
    }
    line.push(part);
    length += part.length + 1;
  }
  if (line.length > 0) lines.push(indent + line.join(' '));
  lines[0] = (lines[0] ?? '').slice(indent.length);
  return `${prefix}${lines.join('\n')}`;
}

/** parser.error(message): the usage, then `prog: error: message`, exit 2. */
function usageError(prog: string, message: string): never {
  throw new PythonExit(2, [hfUsage(prog), `${prog}: error: ${message}`]);
}

/** Python's int(str). */
function pyIntText(text: string): number | undefined {
  const t = text.trim();
  return /^[+-]?[0-9](_?[0-9])*$/.test(t) ? Number(t.replaceAll('_', '')) : undefined;
}

/** Python's float(str). */
function pyFloatText(text: string): number | undefined {
  const t = text.trim();
  const digits = '[0-9](_?[0-9])*';
  const number = new RegExp(`^[+-]?((${digits})?\\.${digits}|${digits}\\.?)([eE][+-]?${digits})?$`);
  if (number.test(t)) return Number(t.replaceAll('_', ''));
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
  if (special === null) return undefined;
  return (special[2] ?? '').toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
}

const TRUTHY = ['yes', 'true', 't', 'y', '1'];
const FALSY = ['no', 'false', 'f', 'n', '0'];

/** argparse's _get_value + _check_value for one argument string of `field`. */
function convert(prog: string, action: Action, field: HfField, text: string): HfValue {
  const fail = (message: string): never => usageError(prog, `argument ${action.name}: ${message}`);
  const invalid = (type: string): never => fail(`invalid ${type} value: ${pyRepr(text)}`);
  let value: HfValue;
  switch (field.kind) {
    case 'bool': {
      // transformers' string_to_bool raises ArgumentTypeError with its own message.
      const lower = text.toLowerCase();
      if (TRUTHY.includes(lower)) value = true;
      else if (FALSY.includes(lower)) value = false;
      else return fail(`Truthy value expected: got ${text} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).`);
      break;
    }
    case 'int':
      value = pyIntText(text) ?? invalid('int');
      break;
    case 'float':
      value = pyFloatText(text) ?? invalid('float');
      break;
    case 'dict':
      // typing.Dict(...) always raises TypeError; dict(str) only accepts '' (every other item is one character long).
      if (field.typeName === 'dict' && text === '') value = {};
      else return invalid(field.typeName ?? 'dict');
      break;
    case 'list':
      if (field.elementValues !== undefined && !field.elementValues.includes(text)) return invalid(field.elementType ?? 'str');
      value = text;
      break;
    default:
      value = text;
  }
  if (field.choices !== null && !field.choices.includes(value as string)) {
    fail(`invalid choice: ${pyRepr(String(value))} (choose from ${field.choices.map((c) => (typeof c === 'string' ? pyRepr(c) : String(c))).join(', ')})`);
  }
  return value;
}

/** The value argparse leaves in the namespace for an option not given (default_factory: its value). */
function defaultOf(field: HfField): HfValue {
  const value = field.default;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const special = value as { kind: string; value?: unknown };
    if (special.kind === 'factory') return (special.value ?? null) as HfValue;
    return null;
  }
  return value as HfValue;
}

interface OptionTuple {
  action: Action | undefined;
  option: string;
  explicit: string | undefined;
}

export class HfArgs {
  readonly #values: ReadonlyMap<string, HfValue>;
  readonly #given: ReadonlySet<string>;
  readonly #prog: string;

  private constructor(values: ReadonlyMap<string, HfValue>, given: ReadonlySet<string>, prog: string) {
    this.#values = values;
    this.#given = given;
    this.#prog = prog;
  }

  /**
   * `parser.parse_args_into_dataclasses()` of the script's argv (or parse_json_file for a single
   * `.json` argument). `scriptPath` (the container path of the script, ctx.scriptPath) names the
   * script's frames in tracebacks; default: the upstream script under the workdir.
   */
  static parse(args: readonly string[], fs: ContainerFs, prog: string, scriptPath?: string): HfArgs {
    const script = scriptPath ?? fs.absolute(HF_PARSER.script);
    const only = args[0];
    if (args.length === 1 && only !== undefined && only.endsWith('.json')) return HfArgs.#parseJson(fs, fs.absolute(only), prog, script);
    return HfArgs.#parseArgv(args, prog, script);
  }

  static #parseArgv(args: readonly string[], prog: string, script: string): HfArgs {
    if (args.includes('--')) throw new SimulatorError(`${prog}: argparse's '--' separator is not simulated`);
    // The pattern pass (_parse_known_args): which strings are options; an ambiguous prefix fails here, first.
    const tuples = args.map((arg) => HfArgs.#parseOptional(arg, prog));
    const values = new Map<string, HfValue>();
    const given = new Set<string>();
    const extras: string[] = [];
    let i = 0;
    while (i < args.length) {
      const tuple = tuples[i];
      if (tuple === undefined) {
        extras.push(args[i] ?? '');
        i += 1;
        continue;
      }
      const { action, option, explicit } = tuple;
      i += 1;
      if (action === undefined) {
        extras.push(option);
        continue;
      }
      if (action.kind === 'help') {
        if (explicit !== undefined) usageError(prog, `argument ${action.name}: ignored explicit argument ${pyRepr(explicit)}`);
        throw new SimulatorError(`${prog}: the -h/--help text is not simulated`);
      }
      const field = action.field as HfField;
      const nargs = action.kind === 'store_false' ? 0 : field.nargs;
      let strings: string[];
      if (explicit !== undefined) {
        if (nargs === 0) usageError(prog, `argument ${action.name}: ignored explicit argument ${pyRepr(explicit)}`);
        strings = [explicit];
      } else {
        let available = 0;
        while (i + available < args.length && tuples[i + available] === undefined) available += 1;
        const take = nargs === 0 ? 0 : nargs === '?' ? Math.min(available, 1) : nargs === '+' ? available : Math.min(available, 1);
        if (nargs === null && take < 1) usageError(prog, `argument ${action.name}: expected one argument`);
        if (nargs === '+' && take < 1) usageError(prog, `argument ${action.name}: expected at least one argument`);
        strings = args.slice(i, i + take) as string[];
        i += take;
      }
      let value: HfValue;
      if (action.kind === 'store_false') value = false;
      else if (nargs === '+') value = strings.map((s) => convert(prog, action, field, s));
      else if (strings.length === 0) value = field.const;
      else value = convert(prog, action, field, strings[0] ?? '');
      values.set(field.name, value);
      given.add(field.name);
    }
    const missing = HF_FIELDS.filter((field) => field.required && !given.has(field.name)).map((field) => field.optionStrings.join('/'));
    if (missing.length > 0) usageError(prog, `the following arguments are required: ${missing.join(', ')}`);
    for (const field of HF_FIELDS) if (!values.has(field.name)) values.set(field.name, defaultOf(field));
    if (extras.length > 0) {
      throw new PythonError('ValueError', `Some specified arguments are not used by the HfArgumentParser: [${extras.map(pyRepr).join(', ')}]`, [
        { file: script, line: SCRIPT_LINES.module, fn: '<module>', code: 'main()' },
        {
          file: script,
          line: SCRIPT_LINES.cli,
          fn: 'main',
          code: 'model_args, data_args, training_args = parser.parse_args_into_dataclasses()',
          carets: `${' '.repeat(39)}${'^'.repeat(36)}`,
        } as TracebackFrame,
        {
          file: HF_ARGPARSER,
          line: 347,
          fn: 'parse_args_into_dataclasses',
          code: 'raise ValueError(f"Some specified arguments are not used by the HfArgumentParser: {remaining_args}")',
        },
      ]);
    }
    return new HfArgs(values, given, prog);
  }

  /** argparse's _parse_optional (allow_abbrev=True): undefined for a positional string. */
  static #parseOptional(arg: string, prog: string): OptionTuple | undefined {
    if (arg === '' || !arg.startsWith('-')) return undefined;
    const exact = OPTIONS.get(arg);
    if (exact !== undefined) return { action: exact, option: arg, explicit: undefined };
    if (arg.length === 1) return undefined;
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      const action = OPTIONS.get(arg.slice(0, eq));
      if (action !== undefined) return { action, option: arg.slice(0, eq), explicit: arg.slice(eq + 1) };
    }
    const matches: OptionTuple[] = [];
    if (arg.startsWith('--')) {
      const [prefix, explicit] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
      for (const [option, action] of OPTIONS) if (option.startsWith(prefix)) matches.push({ action, option, explicit });
    } else {
      for (const [option, action] of OPTIONS) {
        if (option === arg.slice(0, 2)) matches.push({ action, option, explicit: arg.slice(2) });
        else if (option.startsWith(arg)) matches.push({ action, option, explicit: undefined });
      }
    }
    if (matches.length > 1) usageError(prog, `ambiguous option: ${arg} could match ${matches.map((m) => m.option).join(', ')}`);
    const [match] = matches;
    if (match !== undefined) return match;
    if (/^-\d+$|^-\d*\.\d+$/.test(arg)) return undefined;
    if (arg.includes(' ')) return undefined;
    return { action: undefined, option: arg, explicit: undefined };
  }

  /** parse_json_file -> parse_dict: each dataclass built from its keys (no conversion), unknown keys refused. */
  static #parseJson(fs: ContainerFs, file: string, prog: string, script: string): HfArgs {
    const data = readJsonFile(fs, file);
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SimulatorError(`${prog}: a JSON argument file that is not an object is not simulated`);
    const entries = data as Record<string, unknown>;
    const frames = (line: number, code: string, carets?: string): TracebackFrame[] => [
      { file: script, line: SCRIPT_LINES.module, fn: '<module>', code: 'main()' },
      {
        file: script,
        line: SCRIPT_LINES.json,
        fn: 'main',
        code: 'model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))',
        carets: `${' '.repeat(39)}${'^'.repeat(63)}`,
      },
      { file: HF_ARGPARSER, line: 398, fn: 'parse_json_file', code: 'outputs = self.parse_dict(data, allow_extra_keys=allow_extra_keys)', carets: `${' '.repeat(10)}${'^'.repeat(56)}` },
      { file: HF_ARGPARSER, line, fn: 'parse_dict', code, ...(carets === undefined ? {} : { carets }) },
    ];
    for (const dataclass of HF_PARSER.dataclasses) {
      const missing = HF_FIELDS.filter((f) => f.dataclass === dataclass && f.required && !(f.name in entries)).map((f) => f.name);
      if (missing.length > 0) {
        const names = missing.map((n) => `'${n}'`);
        const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
        throw new PythonError(
          'TypeError',
          `${dataclass}.__init__() missing ${missing.length} required positional argument${missing.length === 1 ? '' : 's'}: ${list}`,
          frames(373, 'obj = dtype(**inputs)', `      ${'^'.repeat(15)}`),
        );
      }
    }
    const unused = Object.keys(entries)
      .filter((key) => !FIELDS.has(key))
      .sort();
    if (unused.length > 0) {
      throw new PythonError(
        'ValueError',
        `Some keys are not used by the HfArgumentParser: [${unused.map(pyRepr).join(', ')}]`,
        frames(376, 'raise ValueError(f"Some keys are not used by the HfArgumentParser: {sorted(unused_keys)}")'),
      );
    }
    const values = new Map<string, HfValue>();
    for (const field of HF_FIELDS) values.set(field.name, field.name in entries ? (entries[field.name] as HfValue) : defaultOf(field));
    return new HfArgs(values, new Set(Object.keys(entries)), prog);
  }

  #field(name: string): HfField {
    const field = FIELDS.get(name);
    if (field === undefined) throw new SimulatorError(`--${name} is not an argument of HfArgumentParser (transformers 4.37.2 + the Stage 1 dataclasses)`);
    return field;
  }

  /** The value the dataclass field gets (argparse's namespace value, or the JSON file's). */
  get(name: string): HfValue {
    this.#field(name);
    return this.#values.get(name) ?? null;
  }

  /** Whether the argument was given (on the command line or in the JSON file). */
  given(name: string): boolean {
    this.#field(name);
    return this.#given.has(name);
  }

  /** A value as str() prints it; undefined for None. */
  str(name: string): string | undefined {
    const value = this.get(name);
    if (value === null) return undefined;
    if (typeof value === 'boolean') return value ? 'True' : 'False';
    if (typeof value === 'number') return this.#field(name).kind === 'float' || !Number.isInteger(value) ? pyFloatRepr(value) : String(value);
    if (typeof value === 'string') return value;
    return JSON.stringify(value);
  }

  /** A field without a default (argparse has already refused a command line without it). */
  required(name: string): string {
    const value = this.str(name);
    if (value === undefined) usageError(this.#prog, `the following arguments are required: --${name}`);
    return value;
  }

  /** A number field. `fallback` is only used when the value is None (the upstream default wins otherwise). */
  int(name: string, fallback?: number): number {
    return this.#number(name, fallback);
  }

  float(name: string, fallback?: number): number {
    return this.#number(name, fallback);
  }

  #number(name: string, fallback: number | undefined): number {
    const value = this.get(name);
    if (typeof value === 'number') return value;
    if (value === null && fallback !== undefined) return fallback;
    throw new SimulatorError(`--${name} is ${value === null ? 'None' : JSON.stringify(value)}, not a number (JSON argument files are not converted)`);
  }

  /** A bool field. `fallback` is only used when the value is None. */
  bool(name: string, fallback?: boolean): boolean {
    const value = this.get(name);
    if (typeof value === 'boolean') return value;
    if (value === null && fallback !== undefined) return fallback;
    if (value === null) return false;
    throw new SimulatorError(`--${name} is ${JSON.stringify(value)}, not a bool (JSON argument files are not converted)`);
  }

  /** A list field (`nargs='+'`); undefined for None. */
  list(name: string): string[] | undefined {
    const value = this.get(name);
    if (value === null) return undefined;
    if (Array.isArray(value)) return value.map(String);
    return [String(value)];
  }
}
