/**
 * The torch file docker/bridge/orbax_to_torch.py makes from a torchax/orbax checkpoint, for the GPU
 * scripts that `torch.load(path)["state_dict"]` (Stage 3's reference policy, the evaluation): the
 * file itself (present, non-empty) and the bridge's manifest, which lists every key with its shape
 * and dtype. The torch file is a pickle/zip the checker cannot read without torch, so the manifest
 * is what is counted; the bridge writes it only after the torch file was renamed into place.
 */
import type { OutputReader } from './reader.ts';
import type { CheckResult } from './result.ts';

interface TensorEntry {
  shape?: unknown;
  dtype?: unknown;
}

interface Manifest {
  prefix?: unknown;
  count?: unknown;
  tensors?: unknown;
}

export async function checkTorchStateDict(reader: OutputReader, file: string, manifestPath: string, prefix: string): Promise<CheckResult> {
  const problems: string[] = [];
  const summary: Record<string, number> = {};
  const stat = await reader.stat(file);
  if (stat === undefined) problems.push(`${file} is missing: the bridge wrote no torch file`);
  else if (stat.size === 0) problems.push(`${file} is empty`);
  else summary.bytes = stat.size;

  const text = await reader.readText(manifestPath);
  if (text === undefined) return { problems: [...problems, `${manifestPath} is missing: the bridge did not finish`], summary };
  let manifest: Manifest;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    manifest = parsed as Manifest;
  } catch (error) {
    return { problems: [...problems, `${manifestPath} is not a manifest (${(error as Error).message})`], summary };
  }
  const tensors = manifest.tensors;
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    return { problems: [...problems, `${manifestPath} has no "tensors" object`], summary };
  }
  const entries = Object.entries(tensors as Record<string, TensorEntry>);
  summary.tensors = entries.length;
  if (entries.length === 0) problems.push(`${manifestPath} lists no tensor: the checkpoint's params were empty`);
  if (manifest.prefix !== prefix) problems.push(`${manifestPath} was written with prefix ${JSON.stringify(manifest.prefix)}, expected ${JSON.stringify(prefix)}`);
  const unprefixed = entries.map(([key]) => key).filter((key) => !key.startsWith(prefix));
  if (unprefixed.length > 0) {
    problems.push(`${unprefixed.length} of ${entries.length} keys lack the prefix ${JSON.stringify(prefix)} (e.g. ${JSON.stringify(unprefixed[0])}): the GPU scripts would skip them`);
  }
  const malformed = entries.filter(([, entry]) => !isShape(entry?.shape) || typeof entry?.dtype !== 'string' || entry.dtype === '').map(([key]) => key);
  if (malformed.length > 0) problems.push(`${malformed.length} manifest entries lack a shape or dtype (e.g. ${JSON.stringify(malformed[0])})`);
  if (manifest.count !== entries.length) {
    problems.push(`${manifestPath} says count ${JSON.stringify(manifest.count)} but lists ${entries.length} tensors`);
  }
  return { problems, summary };
}

function isShape(value: unknown): boolean {
  return Array.isArray(value) && value.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
}
