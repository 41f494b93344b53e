/** Every stage contract, by stage name: the one place that says what each stage runs. */
import type { StageName } from '../stages.ts';
import type { StageContract } from './types.ts';
import { stage1 } from './stage1.ts';
import { featureCache } from './feature-cache.ts';
import { stage2 } from './stage2.ts';
import { metricCache } from './metric-cache.ts';
import { stage3 } from './stage3.ts';
import { stage2Export, stage3Export } from './exports.ts';
import { evaluation } from './eval.ts';

export const CONTRACTS: Readonly<Record<StageName, StageContract>> = {
  stage1,
  featureCache,
  stage2,
  stage2Export,
  metricCache,
  stage3,
  stage3Export,
  eval: evaluation,
};

export type { StageContract, OutputCheck, VerificationSpec, RenderedStage, ImageKey } from './types.ts';
