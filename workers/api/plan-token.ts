/**
 * Plan tokens: a dry run of a rerun returns an HMAC over what would run; the confirm recomputes
 * the plan and starts the rerun only when its token is the same, i.e. the plan the caller saw
 * (source run, rerun input, every stage's decision and fingerprint) is still the plan.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '../../pipeline/fingerprint.ts';
import { RUN_ID_MAX_LENGTH } from '../../pipeline/naming.ts';
import type { StageDecision } from '../../pipeline/plan.ts';
import type { StageName } from '../../pipeline/stages.ts';

export interface PlanFacts {
  source: string;
  input: unknown;
  stages: ReadonlyArray<{ stage: StageName; decision: StageDecision; fingerprint: string | null }>;
}

const TOKEN_VERSION = 'recogdrive-plan-v1';

/** Hex HMAC-SHA256 over the canonical JSON of the facts. */
export function planToken(secret: string, facts: PlanFacts): string {
  const stages = facts.stages.map((s) => ({ stage: s.stage, decision: s.decision, fingerprint: s.fingerprint }));
  return createHmac('sha256', secret)
    .update(canonicalJson({ v: TOKEN_VERSION, source: facts.source, input: facts.input, stages }))
    .digest('hex');
}

export function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * The id of the rerun a token confirms: a repeated confirm with the same token finds the same run.
 * The source's id is shortened when the whole would exceed a run id's length (the hash, of a token
 * that covers the source, keeps them distinct).
 */
export function rerunId(source: string, token: string): string {
  const suffix = `-rerun-${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
  return `${source.slice(0, RUN_ID_MAX_LENGTH - suffix.length)}${suffix}`;
}
