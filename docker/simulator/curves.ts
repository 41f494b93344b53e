/** Plausible training curves: loss falls and reward rises with progress (0..1), deterministically. */

export function lossAt(progress: number, start = 2.4, floor = 0.15): number {
  return floor + (start - floor) * Math.exp(-3 * progress);
}

export function rewardAt(progress: number): number {
  return 0.62 + 0.28 * (1 - Math.exp(-3 * progress));
}
