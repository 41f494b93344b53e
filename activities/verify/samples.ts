/** A few files of a manifest, picked by its digest (the same manifest always gives the same picks). */
import { sha256Hex } from '../../pipeline/fingerprint.ts';
import type { SampledFile } from '../../pipeline/lineage.ts';

export const SAMPLED_FILES = 8;

export function sampleFiles(files: readonly SampledFile[], digest: string, count = SAMPLED_FILES): SampledFile[] {
  if (files.length <= count) return [...files];
  const picked = new Set<number>();
  for (let i = 0; picked.size < count; i++) picked.add(Number.parseInt(sha256Hex(`${digest}#${i}`).slice(0, 12), 16) % files.length);
  return [...picked].sort((a, b) => a - b).map((i) => files[i]!);
}

/** Problems with sampled files as they are now: missing, or another size than recorded. */
export async function checkSamples(
  stat: (path: string) => Promise<{ size: number } | undefined>,
  samples: readonly SampledFile[],
): Promise<string[]> {
  // One at a time: eight small reads, and the storage client warns about many parallel requests on one stream.
  const problems: string[] = [];
  for (const sample of samples) {
    const now = await stat(sample.path);
    if (now === undefined) problems.push(`${sample.path} is listed in the manifest but missing`);
    else if (now.size !== sample.size) problems.push(`${sample.path} has ${now.size} bytes, the manifest says ${sample.size}`);
  }
  return problems;
}
