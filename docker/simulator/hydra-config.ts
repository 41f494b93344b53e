/**
 * Hydra's command line as the navsim scripts see it: `key=value` overrides (quotes stripped,
 * `+key` appends, `++key` forces, `~key` deletes, config groups chosen with `group=option`) on top
 * of a per-script schema of defaults, with OmegaConf's `???` mandatory values and `${oc.env:...}`
 * interpolations. Only what the stage contracts exercise, but failing with the real messages.
 */
import { PythonError, pyRepr } from './errors.ts';

export type HydraValue = string | number | boolean | null | HydraValue[];

/** OmegaConf's `???`: a value that must be given. */
export const MISSING = Symbol('???');

/** A value computed from others when read, like `${oc.env:NAVSIM_EXP_ROOT}/metric_cache`. */
export interface Interpolation {
  /** As written in the yaml (config.yaml keeps it unresolved). */
  text: string;
  resolve: (cfg: HydraConfig) => HydraValue;
}

export function interpolation(text: string, resolve: (cfg: HydraConfig) => HydraValue): Interpolation {
  return { text, resolve };
}

type Entry = HydraValue | typeof MISSING | Interpolation;

export interface ConfigSchema {
  /** The primary config's name, as hydra's error messages cite it (e.g. default_training). */
  name: string;
  /** Config groups chosen with `group=option`: their default option (or MISSING) and the options that exist. */
  groups: Readonly<Record<string, { default: string | typeof MISSING; options: readonly string[] }>>;
  /** Keys (dotted) and their defaults, in the order mandatory values are checked. */
  values: Readonly<Record<string, Entry>>;
  /** Prefixes whose sub-keys exist without being listed here (e.g. `agent.`, whose yaml has many). */
  open: readonly string[];
}

interface Override {
  op: 'set' | 'append' | 'force' | 'delete';
  key: string;
  value: HydraValue;
  text: string;
}

export class HydraConfig {
  /** The overrides as given on the command line (for overrides.yaml and error messages). */
  readonly overrides: readonly string[];
  readonly #groups = new Map<string, string | typeof MISSING>();
  readonly #values = new Map<string, Entry>();
  readonly #env: NodeJS.ProcessEnv;

  private constructor(overrides: readonly string[], env: NodeJS.ProcessEnv) {
    this.overrides = overrides;
    this.#env = env;
  }

  /** Composes the schema with the overrides, then checks that every mandatory value was given. */
  static compose(schema: ConfigSchema, args: readonly string[], env: NodeJS.ProcessEnv): HydraConfig {
    const cfg = new HydraConfig(args, env);
    for (const [group, spec] of Object.entries(schema.groups)) cfg.#groups.set(group, spec.default);
    for (const [key, entry] of Object.entries(schema.values)) cfg.#values.set(key, entry);

    for (const override of args.map(parseOverride)) {
      const group = schema.groups[override.key];
      if (group !== undefined) {
        const option = String(override.value);
        if (!group.options.includes(option)) {
          throw new PythonError(
            'hydra.errors.MissingConfigException',
            `In '${schema.name}': Could not find '${override.key}/${option}'\n\nAvailable options in '${override.key}':\n\t${group.options.join('\n\t')}`,
          );
        }
        cfg.#groups.set(override.key, option);
        continue;
      }
      const exists = cfg.#values.has(override.key) || schema.open.some((prefix) => override.key.startsWith(prefix));
      if (override.op === 'set' && !exists) {
        throw new PythonError(
          'hydra.errors.ConfigCompositionException',
          `Could not override '${override.key}'.\nTo append to your config use +${override.text}`,
        );
      }
      if (override.op === 'append' && cfg.#values.has(override.key)) {
        throw new PythonError(
          'hydra.errors.ConfigCompositionException',
          `Could not append to config. An item is already at '${override.key}'.`,
        );
      }
      if (override.op === 'delete') cfg.#values.delete(override.key);
      else cfg.#values.set(override.key, override.value);
    }

    for (const [group, option] of cfg.#groups) if (option === MISSING) throw missing(group);
    for (const [key, entry] of cfg.#values) if (entry === MISSING) throw missing(key);
    return cfg;
  }

  /** The option chosen for a config group. */
  group(name: string): string {
    const option = this.#groups.get(name);
    if (option === undefined || option === MISSING) throw missing(name);
    return option;
  }

  get(key: string): HydraValue {
    const entry = this.#values.get(key);
    if (entry === undefined) {
      throw new PythonError('omegaconf.errors.ConfigAttributeError', `Key ${pyRepr(key.split('.').at(-1) ?? key)} is not in struct\n    full_key: ${key}`);
    }
    if (entry === MISSING) throw missing(key);
    return isInterpolation(entry) ? entry.resolve(this) : entry;
  }

  /** A string value (paths, names). None fails like os.path calls do on None. */
  str(key: string): string {
    const value = this.get(key);
    if (value === null) throw new PythonError('TypeError', 'expected str, bytes or os.PathLike object, not NoneType');
    return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
  }

  /** Python truthiness, which is how the scripts test flags (`if cfg.agent.grpo:`). */
  bool(key: string): boolean {
    const value = this.get(key);
    return Array.isArray(value) ? value.length > 0 : Boolean(value);
  }

  int(key: string): number {
    const value = this.get(key);
    const number = typeof value === 'number' ? value : Number(value);
    if (typeof value === 'boolean' || !Number.isFinite(number)) {
      throw new PythonError('ValueError', `invalid literal for int() with base 10: ${pyRepr(String(value))}`);
    }
    return Math.trunc(number);
  }

  /** A list value; undefined for None (hydra's "not given"). A scalar is treated as a one-item list. */
  list(key: string): string[] | undefined {
    const value = this.get(key);
    if (value === null) return undefined;
    return (Array.isArray(value) ? value : [value]).map(String);
  }

  /** `${oc.env:NAME}`. */
  env(name: string): string {
    const value = this.#env[name];
    if (value === undefined) {
      throw new PythonError('omegaconf.errors.InterpolationResolutionError', `Environment variable ${pyRepr(name)} not found`);
    }
    return value;
  }

  /** The chosen option of every config group (hydra.yaml's runtime.choices). */
  choices(): Record<string, string> {
    return Object.fromEntries([...this.#groups].map(([group, option]) => [group, option === MISSING ? '???' : option]));
  }

  /** config.yaml as hydra saves it: interpolations unresolved. */
  toYaml(): string {
    const tree: Record<string, unknown> = {};
    const put = (key: string, value: unknown) => {
      const parts = key.split('.');
      let node = tree;
      for (const part of parts.slice(0, -1)) {
        const child = node[part];
        node = (typeof child === 'object' && child !== null && !Array.isArray(child) ? child : (node[part] = {})) as Record<string, unknown>;
      }
      node[parts.at(-1) ?? key] = value;
    };
    for (const [key, entry] of this.#values) put(key, entry === MISSING ? '???' : isInterpolation(entry) ? entry.text : entry);
    return yaml(tree, 0);
  }
}

function isInterpolation(entry: Entry): entry is Interpolation {
  return typeof entry === 'object' && entry !== null && !Array.isArray(entry);
}

function missing(key: string): PythonError {
  return new PythonError('omegaconf.errors.MissingMandatoryValue', `Missing mandatory value: ${key}`);
}

/** One command-line override. */
export function parseOverride(text: string): Override {
  if (text.startsWith('~')) {
    const [key = ''] = text.slice(1).split('=', 1);
    return { op: 'delete', key, value: null, text };
  }
  const op = text.startsWith('++') ? 'force' : text.startsWith('+') ? 'append' : 'set';
  const body = text.slice(op === 'force' ? 2 : op === 'append' ? 1 : 0);
  const eq = body.indexOf('=');
  const key = eq < 0 ? '' : body.slice(0, eq).trim();
  if (!/^[A-Za-z_][\w.@/-]*$/.test(key)) {
    throw new PythonError(
      'hydra.errors.OverrideParseException',
      `Error parsing override '${text}'\n${eq < 0 ? "missing EQUAL at '<EOF>'" : 'invalid key'}\nSee https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details`,
    );
  }
  return { op, key, value: parseValue(body.slice(eq + 1)), text: body };
}

/** Hydra's value grammar, reduced: quoted strings, [lists], booleans, null, numbers, bare strings (trimmed). */
export function parseValue(raw: string): HydraValue {
  const text = raw.trim();
  const quote = text[0];
  if ((quote === "'" || quote === '"') && text.length >= 2 && text.endsWith(quote)) {
    return text.slice(1, -1).replaceAll(`\\${quote}`, quote);
  }
  if (text.startsWith('[') && text.endsWith(']')) {
    const inner = text.slice(1, -1).trim();
    return inner === '' ? [] : splitTopLevel(inner).map(parseValue);
  }
  if (/^true$/i.test(text)) return true;
  if (/^false$/i.test(text)) return false;
  if (/^null$/i.test(text)) return null;
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  return text;
}

/** Splits on commas outside quotes and brackets. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote && text[i - 1] !== '\\') quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '[') depth += 1;
    else if (c === ']') depth -= 1;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** A small YAML writer: nested mappings in block style, scalars and lists in flow style. */
export function yaml(node: unknown, indent = 0): string {
  const pad = ' '.repeat(indent);
  return Object.entries(node as Record<string, unknown>)
    .map(([key, value]) =>
      typeof value === 'object' && value !== null && !Array.isArray(value)
        ? `${pad}${key}:\n${yaml(value, indent + 2)}`
        : `${pad}${key}: ${value === null ? 'null' : JSON.stringify(value)}\n`,
    )
    .join('');
}
