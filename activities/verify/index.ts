/** Verifies a stage's outputs and log markers against its contract's VerificationSpec. */
import type { OutputCheck, VerificationSpec } from '../../pipeline/contracts/index.ts';
import type { OutputReader } from '../artifacts/store.ts';
import type { VerifyReport } from '../types.ts';
import { checkEpochCheckpoints, checkFinalCheckpoint } from './checkpoints.ts';
import { checkEvalCsv } from './eval-csv.ts';
import { checkMetricCache } from './metric-cache.ts';
import type { CheckResult } from './result.ts';
import { checkTokenCache } from './token-cache.ts';

function checkOutputs(reader: OutputReader, check: OutputCheck): Promise<CheckResult> {
  switch (check.kind) {
    case 'final-checkpoint':
      return checkFinalCheckpoint(reader, check.dir);
    case 'epoch-checkpoints':
      return checkEpochCheckpoints(reader, check.epochs);
    case 'token-cache':
      return checkTokenCache(reader, check.files, check.expectedTokens);
    case 'metric-cache':
      return checkMetricCache(reader, check.expectedTokens);
    case 'eval-csv':
      return checkEvalCsv(reader, check.expectedTokens, check.maxFailedTokens);
  }
}

export async function verifyStageOutputs(
  reader: OutputReader,
  spec: VerificationSpec,
  seenPatterns: readonly string[],
): Promise<VerifyReport> {
  const seen = new Set(seenPatterns);
  const logProblems = [
    ...spec.logMustContain.filter((p) => !seen.has(p)).map((p) => `the log never said "${p}"`),
    ...spec.logMustNotContain.filter((p) => seen.has(p)).map((p) => `the log says "${p}"`),
  ];
  const outputs = await checkOutputs(reader, spec.outputs);
  const problems = [...outputs.problems, ...logProblems];
  return { ok: problems.length === 0, problems, summary: outputs.summary };
}
