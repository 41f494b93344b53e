/**
 * Output verification. A stage the orchestrator ran is verified from its completion markers
 * (./markers.ts: constant cost); `verifyStageOutputs` walks the whole output with the contract's
 * checker, for outputs made without the wrapper (and for comparison in the benchmark).
 */
import type { VerificationSpec } from '../../pipeline/contracts/index.ts';
import { checkOutputs, type OutputReader } from '../../pipeline/verify/index.ts';
import type { VerifyReport } from '../types.ts';
import { checkLogPatterns } from './markers.ts';

export { verifyFromMarkers } from './markers.ts';
export { checkStillValid } from './reusable.ts';

export async function verifyStageOutputs(reader: OutputReader, spec: VerificationSpec, seenPatterns: readonly string[]): Promise<VerifyReport> {
  const outputs = await checkOutputs(reader, spec.outputs);
  const problems = [...outputs.problems, ...checkLogPatterns(spec, seenPatterns)];
  return { ok: problems.length === 0, problems, summary: outputs.summary };
}
