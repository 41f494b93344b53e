/**
 * Parses RECOGDRIVE_OUTPUT_CHECK: the JSON of a contract's OutputCheck (pipeline/contracts/types.ts),
 * as the launch spec renders it. Checked field by field, so a malformed value is named, not crashed on.
 */
import type { OutputCheck } from '../../pipeline/contracts/types.ts';

type Json = Record<string, unknown>;

/** The OutputCheck in `text`, or the reason it is not one. */
export function parseOutputCheck(text: string): { check: OutputCheck } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: `is not JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'is not a JSON object' };
  const spec = value as Json;
  try {
    return { check: checkOf(spec) };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}

function checkOf(spec: Json): OutputCheck {
  switch (spec.kind) {
    case 'final-checkpoint':
      return { kind: 'final-checkpoint', dir: relativePath(spec, 'dir') };
    case 'token-cache': {
      const files = spec.files;
      if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string' && f !== '')) {
        throw new Error('token-cache: "files" must be a non-empty list of file names');
      }
      return { kind: 'token-cache', files: files as string[], expectedTokens: optionalCount(spec, 'expectedTokens') };
    }
    case 'epoch-checkpoints': {
      const epochs = optionalCount(spec, 'epochs');
      if (epochs === undefined || epochs < 1) throw new Error('epoch-checkpoints: "epochs" must be a positive integer');
      return { kind: 'epoch-checkpoints', epochs };
    }
    case 'metric-cache':
      return { kind: 'metric-cache', expectedTokens: optionalCount(spec, 'expectedTokens') };
    case 'eval-csv': {
      const maxFailedTokens = optionalCount(spec, 'maxFailedTokens');
      if (maxFailedTokens === undefined) throw new Error('eval-csv: "maxFailedTokens" must be an integer >= 0');
      return { kind: 'eval-csv', expectedTokens: optionalCount(spec, 'expectedTokens'), maxFailedTokens };
    }
    case 'lightning-checkpoints':
      return { kind: 'lightning-checkpoints' };
    case 'torch-state-dict': {
      // An empty prefix is allowed (the bridge's --prefix ''): every key then passes.
      if (typeof spec.prefix !== 'string') throw new Error(`torch-state-dict: "prefix" must be a string (got ${JSON.stringify(spec.prefix)})`);
      return { kind: 'torch-state-dict', file: relativePath(spec, 'file'), manifest: relativePath(spec, 'manifest'), prefix: spec.prefix };
    }
    default:
      throw new Error(`"kind" must be one of final-checkpoint, token-cache, epoch-checkpoints, metric-cache, eval-csv, lightning-checkpoints, torch-state-dict (got ${JSON.stringify(spec.kind)})`);
  }
}

/** An integer >= 0; absent or null is undefined (JSON.stringify drops undefined fields). */
function optionalCount(spec: Json, field: string): number | undefined {
  const value = spec[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${String(spec.kind)}: "${field}" must be an integer >= 0 (got ${JSON.stringify(value)})`);
  }
  return value;
}

function relativePath(spec: Json, field: string): string {
  const value = spec[field];
  if (typeof value !== 'string' || value === '' || value.startsWith('/') || value.split('/').includes('..')) {
    throw new Error(`${String(spec.kind)}: "${field}" must be a path relative to the output folder (got ${JSON.stringify(value)})`);
  }
  return value;
}
