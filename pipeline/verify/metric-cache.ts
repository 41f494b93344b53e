/**
 * The PDM metric cache: `<log>/<scenario_type>/<token>/metric_cache.pkl` plus the metadata CSV
 * the loader reads (only the first .csv in metadata/). A wrong split yields an empty-but-present
 * CSV, and a targeted re-run rewrites the CSV with only its own tokens, so rows are counted.
 */
import type { OutputReader } from './reader.ts';
import { formatCount, type CheckResult } from './result.ts';

export async function checkMetricCache(reader: OutputReader, expectedTokens: number | undefined): Promise<CheckResult> {
  const problems: string[] = [];
  const csvName = (await reader.list('metadata')).find((e) => !e.dir && e.name.includes('.csv'))?.name;
  const rows = csvName === undefined ? [] : csvRows(await reader.readText(`metadata/${csvName}`));
  if (csvName === undefined) problems.push('metadata/*.csv is missing');

  const cachedTokens = new Set<string>();
  for (const log of (await reader.list('')).filter((e) => e.dir && e.name !== 'metadata')) {
    for (const scenarioType of (await reader.list(log.name)).filter((e) => e.dir)) {
      for (const token of (await reader.list(`${log.name}/${scenarioType.name}`)).filter((e) => e.dir)) {
        const files = await reader.list(`${log.name}/${scenarioType.name}/${token.name}`);
        if (files.some((f) => f.name === 'metric_cache.pkl')) cachedTokens.add(token.name);
      }
    }
  }
  // The loader maps each row to its token by the second-to-last path component.
  const listedTokens = new Set(rows.map((row) => row.split('/').at(-2) ?? ''));
  const unlisted = [...cachedTokens].filter((t) => !listedTokens.has(t));
  const dangling = [...listedTokens].filter((t) => !cachedTokens.has(t));
  if (csvName !== undefined && rows.length === 0) problems.push(`metadata/${csvName} lists no tokens`);
  if (unlisted.length > 0) problems.push(`${formatCount(unlisted.length)} cached tokens are not in metadata/${csvName ?? '*.csv'}`);
  if (dangling.length > 0) problems.push(`${formatCount(dangling.length)} metadata rows point at missing metric_cache.pkl files`);
  if (expectedTokens !== undefined && rows.length > 0 && listedTokens.size !== expectedTokens) {
    problems.push(`metadata lists ${formatCount(listedTokens.size)} tokens, expected ${formatCount(expectedTokens)}`);
  }
  return { problems, summary: { tokens: cachedTokens.size, metadataRows: rows.length } };
}

/** Data rows of the one-column `file_name` CSV nuplan writes. */
function csvRows(text: string | undefined): string[] {
  if (text === undefined) return [];
  const [, ...rows] = text.split(/\r?\n/);
  return rows.map((r) => r.trim()).filter((r) => r !== '');
}
