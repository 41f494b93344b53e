/**
 * The completion markers and lineage records as read back from the artifact store: validated
 * here, at the edge, because anything (an older wrapper, a person, a half-written upload) may
 * have put them there.
 */
import { z } from 'zod';
import type { DoneMarker, VerdictClaim } from '../../pipeline/markers.ts';
import type { ArtifactRecord, RunRecord } from '../../pipeline/lineage.ts';
import { STAGES } from '../../pipeline/stages.ts';

const Count = z.number().int().min(0);
const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const Summary = z.record(z.string(), z.union([z.number(), z.string()]));

const DoneMarkerSchema = z.object({
  schema: z.literal(1),
  stage: z.string(),
  attempt: z.number().int().min(1),
  worker: Count,
  exitCode: z.literal(0),
  startedAt: z.string(),
  finishedAt: z.string(),
  manifest: z.object({ files: Count, bytes: Count, digest: Digest, list: z.string().min(1) }),
  check: z.object({ spec: z.unknown(), problems: z.array(z.string()), summary: Summary }),
});

const VerdictClaimSchema = z.object({ verdict: z.enum(['done', 'failed']), writer: z.enum(['wrapper', 'orchestrator']), at: z.string() });

const Sample = z.object({ path: z.string(), size: Count });
const StageName = z.enum(STAGES);
const Components = z.record(z.string(), z.string());

const ArtifactRecordSchema = z.object({
  schema: z.literal(1),
  stage: StageName,
  fingerprint: Digest,
  uri: z.string(),
  markers: z.object({ layout: z.enum(['beside', 'inside']), uri: z.string() }).optional(),
  artifactRoot: z.string(),
  components: Components,
  inputs: z.partialRecord(StageName, z.object({ fingerprint: Digest, uri: z.string() })),
  imageDigest: z.string(),
  producer: z.object({ runId: z.string(), workflowId: z.string(), attempt: z.number().int().min(1) }),
  verifiedAt: z.string(),
  manifest: z.object({ files: Count, bytes: Count, digest: Digest }),
  summary: Summary,
  samples: z.array(Sample),
});

const RunRecordSchema = z.object({
  schema: z.literal(1),
  runId: z.string(),
  experiment: z.string(),
  rerunOf: z.string().optional(),
  execution: z.string().optional(),
  plannedAt: z.string(),
  stages: z.array(
    z.object({
      stage: StageName,
      decision: z.string(),
      reason: z.string(),
      fingerprint: Digest.optional(),
      uri: z.string().optional(),
      components: Components.optional(),
    }),
  ),
});

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

function parse<T>(schema: z.ZodType<T>, text: string, what: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, problem: `${what} is not valid JSON` };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const first = result.error.issues[0]!;
  return { ok: false, problem: `${what} is malformed at ${first.path.join('.') || '(root)'}: ${first.message}` };
}

export const parseDoneMarker = (text: string): Parsed<DoneMarker> => parse(DoneMarkerSchema as z.ZodType<DoneMarker>, text, 'DONE.json');
export const parseVerdictClaim = (text: string): Parsed<VerdictClaim> => parse(VerdictClaimSchema, text, 'VERDICT.json');
export const parseArtifactRecord = (text: string): Parsed<ArtifactRecord> =>
  parse(ArtifactRecordSchema as z.ZodType<ArtifactRecord>, text, 'ARTIFACT.json');
export const parseRunRecord = (text: string): Parsed<RunRecord> => parse(RunRecordSchema as z.ZodType<RunRecord>, text, 'run record');

/** MANIFEST.tsv: "<path>\t<bytes>" lines. */
export function parseManifest(text: string): Array<{ path: string; size: number }> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const tab = line.lastIndexOf('\t');
      return { path: line.slice(0, tab), size: Number(line.slice(tab + 1)) };
    });
}
