/**
 * Every external name is derived from (run id, stage, attempt), never random, so a retried or
 * restarted step finds what an earlier try created instead of creating a second one.
 */
import { z } from 'zod';
import { isStageName, STAGE_SLUGS, type StageName } from './stages.ts';

/** FNV-1a, 32 bit: a short, stable disambiguator for names that had to be shortened or cleaned. */
export function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * A DNS-label-safe form of a run id ([a-z0-9-], at most `max` characters). When cleaning or
 * shortening changed the id, a hash of the original keeps distinct ids distinct.
 */
export function runSlug(runId: string, max = 40): string {
  const cleaned = runId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (cleaned === runId && cleaned.length <= max && cleaned.length > 0) return cleaned;
  const hash = shortHash(runId);
  const room = max - hash.length - 1;
  const head = cleaned.slice(0, room).replace(/-+$/, '');
  return head.length > 0 ? `${head}-${hash}` : `r-${hash}`;
}

/** Child workflow id of one stage of a run. */
export function stageWorkflowId(runId: string, stage: StageName): string {
  return `${runId}/${stage}`;
}

/** VM / TPU node name: rd-<run>-<stage>-<attempt>, at most 61 characters (GCE allows 63). */
export function computeName(runId: string, stage: StageName, attempt: number): string {
  return `rd-${runSlug(runId, 40)}-${STAGE_SLUGS[stage]}-${attempt}`;
}

/** Container name on every worker of the stage's compute: rd-<run>-<stage>. */
export function containerName(runId: string, stage: StageName): string {
  return `rd-${runSlug(runId, 40)}-${STAGE_SLUGS[stage]}`;
}

/** Folder of a run under the artifact root. */
export function runArtifactsUri(artifactRoot: string, runId: string): string {
  return `${artifactRoot}/runs/${runSlug(runId, 80)}`;
}

/** Where a stage of a run writes its outputs. */
export function stageArtifactUri(artifactRoot: string, runId: string, stage: StageName): string {
  return `${runArtifactsUri(artifactRoot, runId)}/${STAGE_SLUGS[stage]}`;
}

/** Where the logs of a stage's attempts are kept after the compute is gone. */
export function stageLogsUri(artifactRoot: string, runId: string, stage: StageName): string {
  return `${runArtifactsUri(artifactRoot, runId)}/logs/${STAGE_SLUGS[stage]}`;
}

/** The log of one worker in one attempt, under stageLogsUri. */
export function attemptLogName(attempt: number, worker: number): string {
  return `attempt-${attempt}-worker-${worker}.log`;
}

/** A worker's bring-up steps of one attempt (beside its container log). */
export function bringUpLogName(attempt: number, worker: number): string {
  return `attempt-${attempt}-worker-${worker}-bring-up.log`;
}

/** A run id for a run started by hand: <experiment>-<UTC yyyymmdd-hhmmss>. */
export function defaultRunId(experiment: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${experiment}-${stamp}`;
}

/**
 * Longest run id. Stage workflow ids (`<run>/<stage>`) and rerun ids (`<run>-rerun-<hash>`) are
 * derived from it, and a rerun names its source in `reuse.rerunOf`, which takes at most this many.
 */
export const RUN_ID_MAX_LENGTH = 200;
/** Letters, digits, `.`, `_`, `-` and `:` (scheduled runs end in `-2026-01-01T02:30:00Z`); no `/`, which only stage workflows have. */
const RUN_ID_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/**
 * Text from a request, shown safely in a one-line message: quoted, control and non-ASCII
 * characters escaped (no terminal escape sequences, no bidi tricks), long text shortened.
 */
export function quoted(text: string, max = 64): string {
  const head = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(head).replace(/[^\x20-\x7e]/g, (c) => (c === '…' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * Why `text` is not a run id (one sentence naming the rule), or undefined when it is one. The
 * one rule for every channel: the HTTP API, the CLI, schedules and the pipeline workflow itself.
 */
export function runIdProblem(text: string): string | undefined {
  if (text.length === 0) return 'a run id cannot be empty';
  const slash = text.lastIndexOf('/');
  if (slash > 0) {
    const run = text.slice(0, slash);
    const stage = text.slice(slash + 1);
    if (isStageName(stage) && runIdProblem(run) === undefined) return `${quoted(text)} is the workflow of stage ${stage} of run ${run}, not a run id: use ${run}`;
  }
  if (text.length > RUN_ID_MAX_LENGTH) return `${quoted(text)} is not a run id: it has ${text.length} characters; a run id has at most ${RUN_ID_MAX_LENGTH}`;
  if (!RUN_ID_SHAPE.test(text)) return `${quoted(text)} is not a run id: use letters, digits and . _ - : only, starting with a letter or digit`;
  return undefined;
}

/** A run id (= the pipeline workflow's id), checked by runIdProblem. */
export const RunId = z
  .string()
  .superRefine((text, ctx) => {
    const problem = runIdProblem(text);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ pattern: RUN_ID_SHAPE.source, minLength: 1, maxLength: RUN_ID_MAX_LENGTH, description: 'run id (= workflow id): letters, digits, . _ - :, at most 200' });
