/**
 * Lineage in the artifact store (layout: pipeline/lineage.ts): recording verified artifacts,
 * runs and their consumers, finding reusable outputs by fingerprint, and answering "what
 * produced X" and "which runs used X".
 */
import type { PipelineConfig } from '../../pipeline/input.ts';
import { markerFiles } from '../../pipeline/markers.ts';
import {
  consumerRecordUri,
  consumersUri,
  fingerprintIndexUri,
  recordMarkers,
  runRecordUri,
  shortFingerprint,
  type ArtifactRecord,
  type ConsumerRecord,
  type RunRecord,
} from '../../pipeline/lineage.ts';
import { planFingerprints, type PlanContext } from '../../pipeline/plan.ts';
import type { StageName } from '../../pipeline/stages.ts';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../pipeline/failures.ts';
import { parseArtifactRecord, parseRunRecord } from '../artifacts/markers.ts';
import { markerLocationsToTry, markerReaders, type StoreFor } from '../artifacts/marker-readers.ts';
import { checkStillValid } from '../verify/reusable.ts';

export type { StoreFor } from '../artifacts/marker-readers.ts';

/** A declared source (sources.code) is not in the store. */
export class MissingSourceError extends Error {
  override name = 'MissingSourceError';
}

export class UnknownRunError extends Error {}

/** A lineage record that was read but does not parse: there, but unusable (unlike a failed read). */
export class MalformedRecordError extends Error {}

export class LineageStore {
  private readonly storeFor: StoreFor;

  constructor(storeFor: StoreFor) {
    this.storeFor = storeFor;
  }

  /** Records a verified artifact: its own record next to it, and the fingerprint index (first producer stays). */
  async recordArtifact(artifactRoot: string, record: ArtifactRecord): Promise<{ indexed: boolean }> {
    const text = `${JSON.stringify(record, null, 2)}\n`;
    const markers = recordMarkers(record);
    await this.storeFor(markers.uri).createIfAbsent(`${markers.uri}/${markerFiles(markers.layout).artifact}`, text);
    const indexUri = fingerprintIndexUri(artifactRoot, record.stage, record.fingerprint);
    const store = this.storeFor(artifactRoot);
    if (await store.createIfAbsent(indexUri, text)) return { indexed: true };
    // The first producer stays canonical while its output is intact; one that was deleted or rewritten gives way.
    const existing = await store.readText(indexUri);
    const parsed = existing === undefined ? undefined : parseArtifactRecord(existing);
    if (parsed?.ok === true && parsed.value.uri === record.uri) return { indexed: true };
    const stale = parsed?.ok !== true || (await this.problemsOf(parsed.value)).length > 0;
    if (!stale) return { indexed: false };
    await store.writeText(indexUri, text);
    return { indexed: true };
  }

  /** Records a run's plan and, for every artifact it reads or reuses, that this run used it. */
  async recordRun(artifactRoot: string, run: RunRecord, consumers: readonly ConsumerRecord[]): Promise<void> {
    const store = this.storeFor(artifactRoot);
    const earlier = await this.readRun(artifactRoot, run.runId).catch((error: unknown) => {
      // An unreadable earlier record is replaced; a storage error is not (it is retried).
      if (error instanceof MalformedRecordError) return undefined;
      throw error;
    });
    if (earlier !== undefined && !sameRun(earlier, run)) {
      throw ApplicationFailure.create({
        type: FailureType.InvalidRunId,
        message: `run id ${run.runId} was already used by a run planned at ${earlier.plannedAt}${earlier.execution === undefined ? '' : ` (execution ${earlier.execution})`}: its outputs and records are under that id, so start this run with another id`,
        nonRetryable: true,
      });
    }
    await store.writeText(runRecordUri(artifactRoot, run.runId), `${JSON.stringify(run, null, 2)}\n`);
    await Promise.all(
      consumers.map((c) => store.createIfAbsent(consumerRecordUri(artifactRoot, c.fingerprint, c.runId, c.stage), `${JSON.stringify(c)}\n`)),
    );
  }

  async readRun(artifactRoot: string, runId: string): Promise<RunRecord | undefined> {
    const text = await this.storeFor(artifactRoot).readText(runRecordUri(artifactRoot, runId));
    if (text === undefined) return undefined;
    const parsed = parseRunRecord(text);
    if (!parsed.ok) throw new MalformedRecordError(`the record of run ${runId} is unreadable: ${parsed.problem}`);
    return parsed.value;
  }

  /** The lineage record of the artifact at `uri` (beside it, or inside it for older outputs); undefined when it has none. */
  async producedBy(uri: string): Promise<ArtifactRecord | undefined> {
    for (const markers of markerLocationsToTry(uri)) {
      const recordUri = `${markers.uri}/${markerFiles(markers.layout).artifact}`;
      const text = await this.storeFor(recordUri).readText(recordUri);
      if (text === undefined) continue;
      const parsed = parseArtifactRecord(text);
      if (!parsed.ok) throw new MalformedRecordError(`${recordUri}: ${parsed.problem}`);
      return parsed.value;
    }
    return undefined;
  }

  /** Why a recorded output can no longer be reused (deleted, rewritten); empty when it still can. */
  private problemsOf(record: ArtifactRecord): Promise<string[]> {
    return checkStillValid(markerReaders(this.storeFor, record.uri, recordMarkers(record)), record);
  }

  /** Every run stage that read or reused the artifact with this fingerprint. */
  async usedBy(artifactRoot: string, fingerprint: string): Promise<ConsumerRecord[]> {
    const folder = consumersUri(artifactRoot, fingerprint);
    const reader = this.storeFor(artifactRoot).reader(folder);
    const entries = (await reader.list('')).filter((e) => !e.dir && e.name.endsWith('.json'));
    const records = await Promise.all(entries.map(async (e) => reader.readText(e.name)));
    return records
      .filter((t): t is string => t !== undefined)
      .map((t) => JSON.parse(t) as ConsumerRecord)
      .sort((a, b) => a.at.localeCompare(b.at) || a.runId.localeCompare(b.runId));
  }

  /**
   * What a plan needs to know of what exists: records of provided artifacts, verified outputs of
   * the plan's fingerprints that are still intact, and the source run of a rerun. Only a definite
   * not-found (ENOENT, HTTP 404) counts as absent; any other read error rejects the whole lookup.
   */
  async lookup(config: PipelineConfig, imageDigests: Readonly<Record<string, string>>): Promise<PlanContext> {
    const root = config.artifactRoot;
    const provided: Partial<Record<StageName, ArtifactRecord>> = {};
    for (const [stage, uri] of Object.entries(config.providedArtifacts) as Array<[StageName, string]>) {
      // No record (or an unusable one): the artifact is known by its URI. A failed read is thrown,
      // never taken for "no record": that would silently change this fingerprint and all downstream.
      const record = await this.producedBy(uri).catch((error: unknown) => {
        if (error instanceof MalformedRecordError) return undefined;
        throw error;
      });
      if (record !== undefined && record.stage === stage) provided[stage] = record;
    }
    let previous: RunRecord | undefined;
    if (config.reuse.rerunOf !== undefined) {
      previous = await this.readRun(root, config.reuse.rerunOf);
      if (previous === undefined) throw new UnknownRunError(`run ${config.reuse.rerunOf} has no record under ${root}/lineage: nothing to rerun`);
    }

    const codeVersion = await this.codeVersion(config);
    const found: Partial<Record<StageName, ArtifactRecord>> = {};
    const stale: Partial<Record<StageName, string>> = {};
    if (config.reuse.policy !== 'never') {
      const fingerprints = planFingerprints(config, { imageDigests, provided, ...(codeVersion === undefined ? {} : { codeVersion }) });
      await Promise.all(
        config.stages.map(async (stage) => {
          const fingerprint = fingerprints[stage]!.fingerprint;
          const text = await this.storeFor(root).readText(fingerprintIndexUri(root, stage, fingerprint));
          if (text === undefined) return;
          const parsed = parseArtifactRecord(text);
          if (!parsed.ok) {
            stale[stage] = `the fingerprint index entry ${shortFingerprint(fingerprint)} is unreadable: ${parsed.problem}`;
            return;
          }
          const record = parsed.value;
          const problems = await this.problemsOf(record);
          if (problems.length === 0) found[stage] = record;
          else stale[stage] = `the verified output of run ${record.producer.runId} can no longer be reused: ${problems.join('; ')}`;
        }),
      );
    }
    return { imageDigests, provided, found, stale, ...(previous === undefined ? {} : { previous }), ...(codeVersion === undefined ? {} : { codeVersion }) };
  }

  /** sources.code's archive as the store reports it: a missing archive is bad input, found before any machine exists. */
  private async codeVersion(config: PipelineConfig): Promise<string | undefined> {
    const code = config.sources?.code;
    if (code === undefined || !('archive' in code)) return undefined;
    const stat = await this.storeFor(code.archive).stat(code.archive);
    if (stat === undefined) throw new MissingSourceError(`sources.code.archive ${code.archive} does not exist`);
    return `${code.archive} ${stat.version ?? `size=${stat.size}`}`;
  }
}

/**
 * Whether a run record already stored is this run's: the same execution chain (a reset or a
 * retried activity), or, for records from before the chain was recorded, the same planning time
 * (a retried recordRun sends the same record).
 */
function sameRun(earlier: RunRecord, run: RunRecord): boolean {
  if (earlier.execution !== undefined && run.execution !== undefined) return earlier.execution === run.execution;
  return earlier.plannedAt === run.plannedAt;
}
