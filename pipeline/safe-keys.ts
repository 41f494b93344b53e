/**
 * Object keys that reach JavaScript's prototype machinery. `JSON.parse` makes them ordinary own
 * properties, but an assignment `obj[key] = value` with `__proto__` replaces the prototype, and
 * merge or record code that looks them up finds inherited members: a key silently lost, or a
 * patch half-applied. No input or patch has a legitimate use for them, so they are refused.
 */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** A key's place in a JSON value, as a chain to its parent (paths are only built for what is reported). */
interface Place {
  key: string;
  parent: Place | undefined;
}

function dotted(place: Place): string {
  const keys: string[] = [];
  for (let at: Place | undefined = place; at !== undefined; at = at.parent) keys.push(at.key);
  return keys.reverse().join('.');
}

/**
 * Dotted paths (`stage1.env.__proto__`) of every prototype key anywhere in a JSON value. Walks
 * with its own stack: a file nested 100k levels deep must not overflow the call stack.
 */
export function prototypeKeyPaths(value: unknown): string[] {
  const found: string[] = [];
  const pending: Array<{ value: unknown; place: Place | undefined }> = [{ value, place: undefined }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const here = next.value;
    if (typeof here !== 'object' || here === null) continue;
    const keys = Array.isArray(here) ? here.map((_, i) => String(i)) : Object.keys(here);
    for (const key of keys) {
      const place = { key, parent: next.place };
      if (!Array.isArray(here) && PROTOTYPE_KEYS.includes(key)) found.push(dotted(place));
      pending.push({ value: (here as Record<string, unknown>)[key], place });
    }
  }
  return found.sort();
}

/** The pipeline input nests about 6 levels, a rerun's overrides as deep; nothing legitimate comes near this. */
export const MAX_JSON_DEPTH = 32;

/**
 * The first problem of a JSON document a user hands us (API body, input or overrides file,
 * schedule file), or undefined: nested deeper than MAX_JSON_DEPTH (code that walks it would
 * exhaust the stack) or holding a prototype key (unless `prototypeKeys: false`: the validator the
 * document goes to refuses them with their path). Iterative, so hostile depth cannot hurt here.
 */
export function jsonDocumentProblem(value: unknown, what = 'the document', options: { prototypeKeys?: boolean } = {}): string | undefined {
  const refuseKeys = options.prototypeKeys ?? true;
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: '', depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: current, path, depth } = next;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_JSON_DEPTH) return `${what} nests deeper than ${MAX_JSON_DEPTH} levels (at ${path || '(top)'})`;
    for (const key of Object.keys(current)) {
      const here = (path === '' ? key : `${path}.${key}`).slice(0, 200);
      if (refuseKeys && !Array.isArray(current) && PROTOTYPE_KEYS.includes(key)) {
        return `${here}: keys named ${PROTOTYPE_KEYS.join(', ')} are refused (they would reach the prototype of an object)`;
      }
      pending.push({ value: (current as Record<string, unknown>)[key], path: here, depth: depth + 1 });
    }
  }
  return undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets an own property, even one named `__proto__` (never the prototype). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy of a JSON value that only ever creates own properties. */
function copyJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyJson);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) define(out, key, copyJson(value[key]));
  return out;
}

/**
 * JSON Merge Patch (RFC 7396: objects merge, arrays and values replace, null removes) over own
 * keys only. Callers refuse prototype keys in the patch first (prototypeKeyPaths); should one
 * slip through it is still copied as an ordinary key, never followed to a prototype.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return copyJson(patch);
  const out = isPlainObject(target) ? (copyJson(target) as Record<string, unknown>) : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete out[key];
      continue;
    }
    define(out, key, applyMergePatch(Object.hasOwn(out, key) ? out[key] : undefined, value));
  }
  return out;
}
