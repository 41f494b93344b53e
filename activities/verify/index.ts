/**
 * Output verification. A stage the orchestrator ran is verified from its completion markers
 * (./markers.ts: constant cost); `verifyStageOutputs` walks the whole output with the contract's
 * checker, for outputs made without the wrapper (and for comparison in the benchmark).
 */
import type { VerificationSpec } from '../../pipeline/contracts/index.ts';
import { isMarkerPath } from '../../pipeline/markers.ts';
import { checkOutputs, type OutputReader } from '../../pipeline/verify/index.ts';
import { withoutMarkers } from '../../pipeline/verify/reader.ts';
import type { VerifyReport } from '../types.ts';
import { checkLogPatterns, verifyFromMarkers, type OutputReaders } from './markers.ts';

export { outputReaders, verifyFromMarkers, type OutputReaders } from './markers.ts';
export { checkStillValid } from './reusable.ts';

export async function verifyStageOutputs(
  reader: OutputReader,
  spec: VerificationSpec,
  seenPatterns: readonly string[] | undefined,
): Promise<VerifyReport> {
  const outputs = await checkOutputs(withoutMarkers(reader, isMarkerPath), spec.outputs);
  const problems = [...outputs.problems, ...(seenPatterns === undefined ? [] : checkLogPatterns(spec, seenPatterns))];
  return { ok: problems.length === 0, problems, summary: outputs.summary };
}

/**
 * An output given by URI (providedArtifacts): from its markers when it has them (beside it, or
 * inside it in the old layout), else by walking it once with the contract's checker. Log lines
 * are unknown, so only outputs count.
 */
export async function verifyProvidedOutput(candidates: readonly OutputReaders[], data: OutputReader, spec: VerificationSpec): Promise<VerifyReport> {
  for (const readers of candidates) {
    if ((await readers.markers.stat(readers.files.done)) !== undefined) return verifyFromMarkers(readers, spec, undefined);
  }
  return verifyStageOutputs(data, spec, undefined);
}
