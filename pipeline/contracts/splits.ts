/** How many tokens each NAVSIM split has (navsim v1.1 scene filters), for output verification. */
export const SPLIT_TOKENS: Readonly<Record<string, number>> = { navtrain: 103_288, navtest: 12_146 };

/** The count a stage's output must hold: what the user said, else the split's known count (undefined for subsets). */
export function expectedTokens(explicit: number | undefined, split: string, known: Readonly<Record<string, number>> = SPLIT_TOKENS): number | undefined {
  return explicit ?? known[split];
}
