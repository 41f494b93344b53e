/** Runs a stage contract's output check over a reader: the counting half of verification. */
import type { OutputCheck } from '../contracts/types.ts';
import { checkEpochCheckpoints, checkFinalCheckpoint } from './checkpoints.ts';
import { checkEvalCsv } from './eval-csv.ts';
import { checkLightningCheckpoints } from './lightning.ts';
import { checkMetricCache } from './metric-cache.ts';
import type { OutputReader } from './reader.ts';
import type { CheckResult } from './result.ts';
import { checkTokenCache } from './token-cache.ts';
import { checkTorchStateDict } from './torch-state-dict.ts';

export function checkOutputs(reader: OutputReader, check: OutputCheck): Promise<CheckResult> {
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
    case 'lightning-checkpoints':
      return checkLightningCheckpoints(reader);
    case 'torch-state-dict':
      return checkTorchStateDict(reader, check.file, check.manifest, check.prefix);
  }
}

export type { CheckResult } from './result.ts';
export type { OutputReader, OutputEntry, ObjectStat } from './reader.ts';
