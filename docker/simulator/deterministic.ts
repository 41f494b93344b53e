/** Deterministic pseudo-data: the same token always yields the same features, scores and names. */
import { createHash } from 'node:crypto';

export function hashHex(text: string, length = 16): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** A number in [0, 1) derived from `text`. */
export function unitFloat(text: string): number {
  return Number.parseInt(hashHex(text, 12), 16) / 2 ** 48;
}

/** `count` numbers in [-scale, scale), derived from `seed`. */
export function floats(seed: string, count: number, scale = 1): number[] {
  return Array.from({ length: count }, (_, i) => round((unitFloat(`${seed}#${i}`) * 2 - 1) * scale));
}

/** Rounded to 6 decimals, so JSON and CSV stay short. */
export function round(value: number, digits = 6): number {
  return Number(value.toFixed(digits));
}
