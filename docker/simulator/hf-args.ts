/**
 * HfArgumentParser, reduced to what the Stage 1 command uses: `--key value`, `--key=value`, a bare
 * `--flag` meaning True, or a single .json file of arguments. Unknown names are accepted (the real
 * parser knows ~150 TrainingArguments fields; the simulator reads only the few it needs).
 */
import { PythonExit } from './errors.ts';
import type { ContainerFs } from './container-fs.ts';

export class HfArgs {
  readonly #values: ReadonlyMap<string, string>;
  readonly #prog: string;

  private constructor(values: ReadonlyMap<string, string>, prog: string) {
    this.#values = values;
    this.#prog = prog;
  }

  static parse(args: readonly string[], fs: ContainerFs, prog: string): HfArgs {
    const only = args[0];
    if (args.length === 1 && only !== undefined && only.endsWith('.json')) {
      const parsed = JSON.parse(fs.readText(only)) as Record<string, unknown>;
      return new HfArgs(new Map(Object.entries(parsed).map(([k, v]) => [k, String(v)])), prog);
    }
    const values = new Map<string, string>();
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i] ?? '';
      if (!arg.startsWith('--')) usageError(prog, `unrecognized arguments: ${arg}`);
      const eq = arg.indexOf('=');
      if (eq > 0) {
        values.set(arg.slice(2, eq), arg.slice(eq + 1));
        continue;
      }
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) values.set(arg.slice(2), 'True');
      else {
        values.set(arg.slice(2), next);
        i += 1;
      }
    }
    return new HfArgs(values, prog);
  }

  str(name: string): string | undefined {
    return this.#values.get(name);
  }

  /** A required field (no default in the dataclass): argparse exits 2 when it is missing. */
  required(name: string): string {
    const value = this.#values.get(name);
    if (value === undefined) usageError(this.#prog, `the following arguments are required: --${name}`);
    return value;
  }

  int(name: string, fallback: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    if (!/^[+-]?\d+$/.test(raw.trim())) usageError(this.#prog, `argument --${name}: invalid int value: '${raw}'`);
    return Number(raw);
  }

  float(name: string, fallback: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value)) usageError(this.#prog, `argument --${name}: invalid float value: '${raw}'`);
    return value;
  }

  /** transformers' string_to_bool. */
  bool(name: string, fallback: boolean): boolean {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    const lower = raw.toLowerCase();
    if (['yes', 'true', 't', 'y', '1'].includes(lower)) return true;
    if (['no', 'false', 'f', 'n', '0'].includes(lower)) return false;
    return usageError(
      this.#prog,
      `argument --${name}: Truthy value expected: got ${raw} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).`,
    );
  }
}

function usageError(prog: string, message: string): never {
  throw new PythonExit(2, [`usage: ${prog} [-h] [--model_name_or_path MODEL_NAME_OR_PATH] ... --output_dir OUTPUT_DIR ...`, `${prog}: error: ${message}`]);
}

