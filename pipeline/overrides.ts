/**
 * Free-form hyper-parameter overrides: the escape hatch for knobs the typed input does not
 * name. Keys come from a per-stage allow-list (pipeline/upstream.ts: keys that exist upstream and
 * have an effect, so an override can never replace a path, an input artifact or a typed field),
 * values are scalars whose text cannot leave its argument: it is passed as one argv element
 * (never through a shell) and, for hydra, as a quoted string.
 */

/**
 * Text an override value may hold: printable characters except quotes, backslash and `${`
 * (hydra/OmegaConf interpolation). Shell metacharacters such as `;`, backticks or `$(` are
 * allowed on purpose: they reach the stage as literal text because nothing ever evaluates them.
 */
// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
export const SAFE_OVERRIDE_TEXT = /^(?!.*\$\{)[^\u0000-\u001f\u007f'"\\]*$/;
/** The longest override value, in characters. */
export const MAX_OVERRIDE_LENGTH = 256;

export type OverrideValue = string | number | boolean;

/**
 * Stages whose overrides become HfArgumentParser options (`--key=value`, pipeline/contracts/args.ts).
 * The `=` form already keeps a value in its option, but a string value starting with `-` is
 * refused there too: it is never a sensible value and reads as an option wherever a value ends up
 * as an argument of its own. Hydra stages need no such rule: each override is one `key='value'`
 * element, which starts with its key, so no parser takes it for an option.
 */
export const OPTION_STYLE_OVERRIDE_STAGES: readonly string[] = ['stage1'];

/** Why an override value could be read as an option, or undefined. */
export function optionLikeValueProblem(value: OverrideValue): string | undefined {
  if (typeof value !== 'string' || !value.startsWith('-')) return undefined;
  return 'a string value may not start with "-" (a parser could read it as an option); give negative numbers as JSON numbers';
}

/** Hydra quoting: strings become quoted literals so `,`, `[` or spaces are not parsed as syntax. */
export function hydraValue(value: OverrideValue): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return formatNumber(value);
}

/** Numbers as the upstream scripts write them (4e-5 rather than 0.00004). */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return abs !== 0 && abs < 1e-3 ? value.toExponential() : String(value);
}
