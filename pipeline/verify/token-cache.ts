/**
 * The hidden-state cache: `<log>/<token>/` folders that must each hold every builder file. The
 * trainer skips incomplete tokens silently, so a short cache would train on less data unnoticed.
 */
import type { OutputReader } from './reader.ts';
import { formatCount, type CheckResult } from './result.ts';

export async function checkTokenCache(
  reader: OutputReader,
  files: readonly string[],
  expectedTokens: number | undefined,
): Promise<CheckResult> {
  let complete = 0;
  const incomplete: string[] = [];
  for (const log of (await reader.list('')).filter((e) => e.dir)) {
    for (const token of (await reader.list(log.name)).filter((e) => e.dir)) {
      const present = new Set((await reader.list(`${log.name}/${token.name}`)).map((e) => e.name));
      const missing = files.filter((f) => !present.has(f));
      if (missing.length === 0) complete++;
      else incomplete.push(`${log.name}/${token.name} lacks ${missing.join(', ')}`);
    }
  }
  const problems: string[] = [];
  if (incomplete.length > 0) {
    problems.push(`${formatCount(incomplete.length)} token folders are incomplete (e.g. ${incomplete.slice(0, 3).join('; ')})`);
  }
  if (complete === 0) problems.push('the cache holds no complete token');
  else if (expectedTokens !== undefined && complete !== expectedTokens) {
    problems.push(`cached ${formatCount(complete)} complete tokens, expected ${formatCount(expectedTokens)}`);
  }
  return { problems, summary: { tokens: complete, incompleteTokens: incomplete.length } };
}
