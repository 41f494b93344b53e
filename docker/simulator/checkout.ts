/**
 * The ReCogDrive checkout the stages run (mounted at /recogdrive): which upstream code it stands
 * for, and which known defects of that code (pipeline/upstream.ts) it fixes. A seeded checkout
 * records this in `.recogdrive-sim/checkout.json`; without that file it is the plain public fork,
 * and the simulator fails wherever that fork fails.
 */
import type { ContainerFs } from './container-fs.ts';
import { SimulatorError } from './errors.ts';

/** Relative to the checkout root, which is every stage's working directory. */
export const CHECKOUT_FILE = '.recogdrive-sim/checkout.json';

/** The defects the simulator reproduces (names as in pipeline/upstream.ts UPSTREAM_FIXES). */
export const KNOWN_DEFECTS = ['feature-cache-real-scenes', 'torchax-grpo', 'eval-without-torchrun'] as const;
export type Defect = (typeof KNOWN_DEFECTS)[number];

export interface Checkout {
  upstream: string;
  fixes: ReadonlySet<Defect>;
}

export const PUBLIC_FORK = 'zorrofox/recogdrive@7ed3135';

export function readCheckout(fs: ContainerFs): Checkout {
  if (!fs.isFile(CHECKOUT_FILE)) return { upstream: PUBLIC_FORK, fixes: new Set() };
  const parsed = JSON.parse(fs.readText(CHECKOUT_FILE)) as { upstream?: unknown; fixes?: unknown };
  const fixes = Array.isArray(parsed.fixes) ? parsed.fixes.map(String) : [];
  const unknown = fixes.filter((f) => !(KNOWN_DEFECTS as readonly string[]).includes(f));
  if (unknown.length > 0) throw new SimulatorError(`${CHECKOUT_FILE}: unknown fixes ${unknown.join(', ')}`);
  return { upstream: typeof parsed.upstream === 'string' ? parsed.upstream : PUBLIC_FORK, fixes: new Set(fixes as Defect[]) };
}

/** `--fixes all|none|a,b`: the fixes a seeded checkout carries. */
export function parseFixes(text: string): Defect[] {
  if (text === 'all') return [...KNOWN_DEFECTS];
  if (text === 'none' || text === '') return [];
  const fixes = text.split(',').map((f) => f.trim());
  const unknown = fixes.filter((f) => !(KNOWN_DEFECTS as readonly string[]).includes(f));
  if (unknown.length > 0) throw new SimulatorError(`--fixes: unknown ${unknown.join(', ')} (known: ${KNOWN_DEFECTS.join(', ')}, or all, none)`);
  return fixes as Defect[];
}
