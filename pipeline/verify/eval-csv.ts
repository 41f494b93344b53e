/**
 * The PDM-score CSV of evaluation: one row per token and a final `average` row. Per-token
 * exceptions are recorded as valid=False, so the job "succeeds" even if every token failed.
 */
import type { OutputReader } from './reader.ts';
import { formatCount, type CheckResult } from './result.ts';

export async function checkEvalCsv(
  reader: OutputReader,
  expectedTokens: number | undefined,
  maxFailedTokens: number,
): Promise<CheckResult> {
  const csvs = (await reader.list('')).filter((e) => !e.dir && e.name.endsWith('.csv')).map((e) => e.name);
  const latest = csvs.sort().at(-1);
  if (latest === undefined) return { problems: ['no results CSV was written'], summary: {} };
  const [header = '', ...lines] = ((await reader.readText(latest)) ?? '').split(/\r?\n/).filter((l) => l.trim() !== '');
  const columns = header.split(',');
  const tokenCol = columns.indexOf('token');
  const validCol = columns.indexOf('valid');
  const scoreCol = columns.indexOf('score');
  if (tokenCol < 0 || validCol < 0 || scoreCol < 0) {
    return { problems: [`${latest} lacks the token/valid/score columns`], summary: {} };
  }
  const rows = lines.map((l) => l.split(','));
  const average = rows.find((r) => r[tokenCol] === 'average');
  const tokens = rows.filter((r) => r[tokenCol] !== 'average');
  const failed = tokens.filter((r) => !/^true$/i.test(r[validCol] ?? '')).length;
  const problems: string[] = [];
  if (average === undefined) problems.push(`${latest} has no average row`);
  if (expectedTokens !== undefined && tokens.length !== expectedTokens) {
    problems.push(`${latest} scores ${formatCount(tokens.length)} tokens, expected ${formatCount(expectedTokens)}`);
  }
  if (failed > maxFailedTokens) problems.push(`${formatCount(failed)} tokens failed to score (allowed ${maxFailedTokens})`);
  const score = Number(average?.[scoreCol]);
  return {
    problems,
    summary: { csv: latest, tokens: tokens.length, failedTokens: failed, ...(Number.isFinite(score) ? { pdmScore: score } : {}) },
  };
}
