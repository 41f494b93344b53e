/**
 * Lineage: which run/stage/attempt produced an artifact, from what, and which runs used it.
 * Everything lives in the artifact store under the artifact root, so any worker, the CLI and the
 * API answer the same:
 *
 *   <markers>/ARTIFACT.json                              the artifact's record (once verified), beside its
 *                                                        completion markers (pipeline/markers.ts)
 *   <root>/lineage/fingerprints/<stage>/<fp>.json        fingerprint index: the first verified output of a fingerprint
 *   <root>/lineage/consumers/<fp>/<run>--<stage>.json    one object per run stage that read or reused it
 *   <root>/lineage/runs/<run>.json                       a run's plan: decisions, fingerprints, components, source run
 *
 * One object per fact, created only if absent: no read-modify-write, so concurrent runs never
 * lose each other's entries.
 */
import type { FingerprintComponents } from './fingerprint.ts';
import type { MarkerLocation } from './markers.ts';
import { runSlug } from './naming.ts';
import { STAGE_SLUGS, type StageName } from './stages.ts';

export const LINEAGE_SCHEMA = 1;

/** A few files of a verified output with their sizes: checked again before the output is reused. */
export interface SampledFile {
  path: string;
  size: number;
}

export interface ArtifactRecord {
  schema: 1;
  stage: StageName;
  fingerprint: string;
  uri: string;
  /** Where its completion markers are; absent for outputs made before they moved beside the data (inside `uri`). */
  markers?: MarkerLocation;
  /** The artifact root of the producing run (its lineage folder holds the consumers of this artifact). */
  artifactRoot: string;
  components: FingerprintComponents;
  /** The artifacts it was made from. */
  inputs: Partial<Record<StageName, { fingerprint: string; uri: string }>>;
  imageDigest: string;
  producer: { runId: string; workflowId: string; attempt: number };
  verifiedAt: string;
  manifest: { files: number; bytes: number; digest: string };
  summary: Record<string, number | string>;
  samples: SampledFile[];
}

export type ConsumerUse = 'input' | 'reuse';

export interface ConsumerRecord {
  schema: 1;
  fingerprint: string;
  uri: string;
  runId: string;
  /** The stage of the consuming run that read it (input) or that took it as its own output (reuse). */
  stage: StageName;
  use: ConsumerUse;
  at: string;
}

export interface RunRecordStage {
  stage: StageName;
  decision: string;
  reason: string;
  fingerprint?: string;
  uri?: string;
  components?: FingerprintComponents;
}

export interface RunRecord {
  schema: 1;
  runId: string;
  experiment: string;
  /** The run this one reruns (partial rerun), if any. */
  rerunOf?: string;
  /**
   * The Temporal execution chain that planned it (firstExecutionRunId: kept across resets and
   * retries). A second `temporal workflow start` with a used run id is a new chain, and is refused.
   */
  execution?: string;
  plannedAt: string;
  stages: RunRecordStage[];
}

export function lineageRoot(artifactRoot: string): string {
  return `${artifactRoot}/lineage`;
}

export function fingerprintIndexUri(artifactRoot: string, stage: StageName, fingerprint: string): string {
  return `${lineageRoot(artifactRoot)}/fingerprints/${STAGE_SLUGS[stage]}/${fingerprintFileName(fingerprint)}.json`;
}

export function consumersUri(artifactRoot: string, fingerprint: string): string {
  return `${lineageRoot(artifactRoot)}/consumers/${fingerprintFileName(fingerprint)}`;
}

export function consumerRecordUri(artifactRoot: string, fingerprint: string, runId: string, stage: StageName): string {
  return `${consumersUri(artifactRoot, fingerprint)}/${runSlug(runId, 80)}--${STAGE_SLUGS[stage]}.json`;
}

export function runRecordUri(artifactRoot: string, runId: string): string {
  return `${lineageRoot(artifactRoot)}/runs/${runSlug(runId, 80)}.json`;
}

/** "sha256:abc..." → "sha256-abc..." (no colon in object names). */
function fingerprintFileName(fingerprint: string): string {
  return fingerprint.replace(':', '-');
}

/** The first characters of a fingerprint, for people. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.replace(/^sha256:/, '').slice(0, 12);
}

/** The record of a run's plan (what `rerunOf` of a later run compares against). */
export function runRecordOf(
  plan: {
    runId: string;
    experiment: string;
    rerunOf?: string;
    stages: ReadonlyArray<{ stage: StageName; decision: string; reason: string; fingerprint?: string; artifactUri?: string; components?: FingerprintComponents }>;
  },
  plannedAt: string,
  execution?: string,
): RunRecord {
  return {
    schema: 1,
    runId: plan.runId,
    experiment: plan.experiment,
    ...(plan.rerunOf === undefined ? {} : { rerunOf: plan.rerunOf }),
    ...(execution === undefined ? {} : { execution }),
    plannedAt,
    stages: plan.stages.map((s) => ({
      stage: s.stage,
      decision: s.decision,
      reason: s.reason,
      ...(s.fingerprint === undefined ? {} : { fingerprint: s.fingerprint }),
      ...(s.artifactUri === undefined ? {} : { uri: s.artifactUri }),
      ...(s.components === undefined ? {} : { components: s.components }),
    })),
  };
}

/** One consumer record per artifact a RUN stage reads and per output a REUSE stage takes over. */
export function consumerRecordsOf(
  plan: {
    runId: string;
    stages: ReadonlyArray<{
      stage: StageName;
      decision: string;
      fingerprint?: string;
      artifactUri?: string;
      inputs?: Partial<Record<StageName, { fingerprint: string; uri: string }>>;
    }>;
  },
  at: string,
): ConsumerRecord[] {
  const out: ConsumerRecord[] = [];
  for (const s of plan.stages) {
    if (s.decision === 'REUSE' && s.fingerprint !== undefined && s.artifactUri !== undefined) {
      out.push({ schema: 1, fingerprint: s.fingerprint, uri: s.artifactUri, runId: plan.runId, stage: s.stage, use: 'reuse', at });
    }
    if (s.decision !== 'RUN') continue;
    for (const input of Object.values(s.inputs ?? {})) {
      out.push({ schema: 1, fingerprint: input.fingerprint, uri: input.uri, runId: plan.runId, stage: s.stage, use: 'input', at });
    }
  }
  return out;
}

/** Where a recorded artifact's completion markers are. */
export function recordMarkers(record: Pick<ArtifactRecord, 'uri' | 'markers'>): MarkerLocation {
  return record.markers ?? { layout: 'inside', uri: record.uri };
}
