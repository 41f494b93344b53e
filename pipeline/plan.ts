/**
 * The plan of a run: for every stage its decision (RUN, REUSE, PROVIDED, SKIP) with the reason,
 * its fingerprint and, when it runs, the complete launch spec. Pure: shared by the pipeline
 * workflow, the CLI (`recogdrive plan`) and the API. What exists already (verified outputs, the
 * source run of a rerun) comes in through PlanContext, looked up by an activity.
 */
import { CONTRACTS, type VerificationSpec } from './contracts/index.ts';
import { describeChanges, fingerprintOf, providedFingerprint, stageComponents, type FingerprintComponents } from './fingerprint.ts';
import { buildLaunchSpec, type LaunchOptions, type LaunchSpec } from './launch.ts';
import { shortFingerprint, type ArtifactRecord, type RunRecord } from './lineage.ts';
import { stageArtifactUri, stageWorkflowId } from './naming.ts';
import { dependenciesOf, STAGES, type StageName } from './stages.ts';
import type { ComputeSpec, PipelineConfig } from './input.ts';
import { trainerNote, trainerOf } from './trainers.ts';
import { defectsOf, UPSTREAM_CODE, UPSTREAM_DEFECTS } from './upstream.ts';

export type StageDecision = 'RUN' | 'REUSE' | 'PROVIDED' | 'SKIP';

export interface StageLimits {
  maxAttempts: number;
  timeoutMs: number;
  hangTimeoutMs: number;
}

export interface PlannedStage {
  stage: StageName;
  title: string;
  decision: StageDecision;
  reason: string;
  dependsOn: StageName[];
  /** Where the stage's outputs are (RUN: will be written; REUSE/PROVIDED: already there). */
  artifactUri?: string;
  /** What the output depends on, hashed (RUN, REUSE and PROVIDED stages). */
  fingerprint?: string;
  components?: FingerprintComponents;
  /** The artifacts this stage reads, by stage. */
  inputs?: Partial<Record<StageName, { fingerprint: string; uri: string }>>;
  /** REUSE: the verified record of the output taken over. */
  reused?: { runId: string; attempt: number; verifiedAt: string };
  workflowId?: string;
  launch?: LaunchSpec;
  imageDigest?: string;
  compute?: ComputeSpec;
  verification?: VerificationSpec;
  limits?: StageLimits;
  notes: string[];
}

export interface Plan {
  runId: string;
  experiment: string;
  artifactRoot: string;
  rerunOf?: string;
  /** False when image tags were not resolved to digests (a plan made without a backend). */
  imagesResolved: boolean;
  stages: PlannedStage[];
}

/** What already exists, as far as the plan is concerned. Empty for a plan made without looking. */
export interface PlanContext {
  /** Image reference → "sha256:..." digest. */
  imageDigests?: Readonly<Record<string, string>>;
  /** Verified outputs whose fingerprint is the one this plan computes for the stage. */
  found?: Readonly<Partial<Record<StageName, ArtifactRecord>>>;
  /** Records of providedArtifacts that have one (their fingerprint stands for them downstream). */
  provided?: Readonly<Partial<Record<StageName, ArtifactRecord>>>;
  /** Verified outputs of this plan's fingerprints that can no longer be reused, and why (deleted, rewritten). */
  stale?: Readonly<Partial<Record<StageName, string>>>;
  /** The plan of the run this one reruns. */
  previous?: RunRecord;
  /** sources.code's archive as the store reports it ("<uri> md5=<base64> generation=<n>"), read by the lookup. */
  codeVersion?: string;
}

/** Fingerprint and components of every stage that is run, reused or provided; in DAG order. */
export function planFingerprints(
  config: PipelineConfig,
  context: PlanContext = {},
): Partial<Record<StageName, { fingerprint: string; components?: FingerprintComponents }>> {
  const selected = new Set<StageName>(config.stages);
  const out: Partial<Record<StageName, { fingerprint: string; components?: FingerprintComponents }>> = {};
  for (const stage of STAGES) {
    const providedUri = config.providedArtifacts[stage];
    if (!selected.has(stage)) {
      if (providedUri !== undefined) out[stage] = { fingerprint: context.provided?.[stage]?.fingerprint ?? providedFingerprint(providedUri) };
      continue;
    }
    const image = config.images[CONTRACTS[stage].image];
    const inputs: Partial<Record<StageName, string>> = {};
    for (const dep of dependenciesOf(config, stage)) inputs[dep] = out[dep]?.fingerprint;
    const components = stageComponents(config, stage, context.imageDigests?.[image], inputs, context.codeVersion);
    out[stage] = { fingerprint: fingerprintOf(stage, components), components };
  }
  return out;
}

export function buildPlan(config: PipelineConfig, runId: string, context: PlanContext = {}, options: LaunchOptions = {}): Plan {
  const selected = new Set<StageName>(config.stages);
  const fingerprints = planFingerprints(config, context);
  const rerunFrom = config.reuse.fromStage === undefined ? new Set<StageName>() : descendantsOf(config.reuse.fromStage, config);
  const imagesResolved = config.stages.every((s) => context.imageDigests?.[config.images[CONTRACTS[s].image]] !== undefined);

  // Decide in DAG order: a stage's launch mounts the URIs its inputs were decided to have.
  const artifactUris: Partial<Record<StageName, string>> = {};
  const stages: PlannedStage[] = [];
  for (const stage of STAGES) {
    const contract = CONTRACTS[stage];
    const base = { stage, title: contract.title, dependsOn: [...dependenciesOf(config, stage)], notes: [] as string[] };
    const fp = fingerprints[stage];
    if (!selected.has(stage)) {
      const uri = config.providedArtifacts[stage];
      if (uri === undefined) {
        stages.push({ ...base, decision: 'SKIP', reason: 'not in stages and not needed by a selected stage' });
      } else {
        artifactUris[stage] = uri;
        stages.push({ ...base, decision: 'PROVIDED', reason: 'output given in providedArtifacts', artifactUri: uri, fingerprint: fp!.fingerprint });
      }
      continue;
    }

    const fingerprint = fp!.fingerprint;
    const components = fp!.components!;
    const inputs: Partial<Record<StageName, { fingerprint: string; uri: string }>> = {};
    for (const dep of dependenciesOf(config, stage)) inputs[dep] = { fingerprint: fingerprints[dep]!.fingerprint, uri: artifactUris[dep]! };
    const identity = { fingerprint, components, inputs };

    const found = context.found?.[stage];
    const runReason = whyRun(config, stage, fingerprint, components, rerunFrom, found, context.previous, context.stale?.[stage]);
    if (runReason === undefined && found !== undefined) {
      artifactUris[stage] = found.uri;
      stages.push({
        ...base,
        ...identity,
        decision: 'REUSE',
        reason: `verified output of run ${found.producer.runId} (attempt ${found.producer.attempt}) has the same fingerprint ${shortFingerprint(fingerprint)}`,
        artifactUri: found.uri,
        reused: { runId: found.producer.runId, attempt: found.producer.attempt, verifiedAt: found.verifiedAt },
      });
      continue;
    }

    artifactUris[stage] = stageArtifactUri(config.artifactRoot, runId, stage);
    const settings = config[stage];
    const image = config.images[contract.image];
    stages.push({
      ...base,
      ...identity,
      decision: 'RUN',
      reason: runReason ?? 'no verified output with this fingerprint',
      artifactUri: artifactUris[stage],
      workflowId: stageWorkflowId(runId, stage),
      launch: buildLaunchSpec(config, runId, stage, artifactUris, options),
      imageDigest: context.imageDigests?.[image] ?? `unresolved ${image}`,
      compute: settings.compute,
      verification: contract.verification(config),
      limits: { maxAttempts: settings.maxAttempts, timeoutMs: settings.timeout, hangTimeoutMs: settings.hangTimeout },
      notes: [`On retry: ${contract.retry}`, ...declaredFixes(config, stage), ...[trainerNote(config, stage)].filter((n) => n !== undefined), ...contract.notes(config)],
    });
  }
  return {
    runId,
    experiment: config.experiment,
    artifactRoot: config.artifactRoot,
    ...(config.reuse.rerunOf === undefined ? {} : { rerunOf: config.reuse.rerunOf }),
    imagesResolved,
    stages,
  };
}

/** Why a selected stage must run although a verified output may exist; undefined when it may be reused. */
function whyRun(
  config: PipelineConfig,
  stage: StageName,
  fingerprint: string,
  components: FingerprintComponents,
  rerunFrom: ReadonlySet<StageName>,
  found: ArtifactRecord | undefined,
  previous: RunRecord | undefined,
  stale?: string,
): string | undefined {
  const { fromStage, force, policy } = config.reuse;
  if (force.includes(stage)) return 'forced (reuse.force)';
  if (fromStage === stage) return `rerun from ${stage}`;
  if (rerunFrom.has(stage)) return `downstream of ${fromStage}, which reruns`;
  if (policy === 'never') return 'reuse.policy is "never"';
  if (found !== undefined) return undefined;
  if (stale !== undefined) return stale;

  const before = previous?.stages.find((s) => s.stage === stage);
  if (before?.components !== undefined && before.fingerprint !== fingerprint) {
    const changes = describeChanges(before.components, components);
    if (changes.length > 0) return `changed since run ${previous!.runId}: ${changes.join('; ')}`;
  }
  if (before?.fingerprint === fingerprint) {
    return `run ${previous!.runId} has no verified, complete output with this fingerprint (${shortFingerprint(fingerprint)})`;
  }
  return `no verified output with fingerprint ${shortFingerprint(fingerprint)}`;
}

/** The upstream defects this stage would hit, which the input says its checkout fixes. */
function declaredFixes(config: PipelineConfig, stage: StageName): string[] {
  return defectsOf(stage, trainerOf(config, stage))
    .filter((fix) => config.upstreamFixes.includes(fix))
    .map((fix) => `Runs only because upstreamFixes declares "${fix}": the checkout must ${UPSTREAM_DEFECTS[fix].fix} (${UPSTREAM_CODE} does not).`);
}

/** A stage and every stage downstream of it. */
export function descendantsOf(stage: StageName, config: { legacyDag?: boolean } = {}): Set<StageName> {
  const out = new Set<StageName>([stage]);
  for (const candidate of STAGES) {
    if (dependenciesOf(config, candidate).some((dep) => out.has(dep))) out.add(candidate);
  }
  return out;
}
