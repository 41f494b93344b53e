/**
 * `recogdrive lineage` and `recogdrive plan --lookup`: lineage questions answered from the
 * artifact store alone (no Temporal needed), and a plan that says what would be reused.
 */
import { LineageStore } from '../activities/lineage/lineage-store.ts';
import type { PipelineConfig } from '../pipeline/input.ts';
import { shortFingerprint, type ArtifactRecord, type ConsumerRecord } from '../pipeline/lineage.ts';
import type { PlanContext } from '../pipeline/plan.ts';
import { artifactStoreFor, artifactStores } from './artifact-stores.ts';
import { configFromEnv, registryAccess } from './config.ts';
import { planImageDigests } from './plan-images.ts';

function lineageStore(): LineageStore {
  const stores = artifactStores();
  return new LineageStore((uri) => artifactStoreFor(uri, stores));
}

/** The producer record of the artifact at `uri` (its folder, without a trailing slash). */
export async function producedBy(uri: string): Promise<ArtifactRecord | undefined> {
  return lineageStore().producedBy(uri.replace(/\/+$/, ''));
}

/** The runs that read or reused the artifact at `uri`, looked up under its producer's artifact root (or `artifactRoot`). */
export async function usedBy(uri: string, artifactRoot?: string): Promise<{ record: ArtifactRecord; consumers: ConsumerRecord[] } | undefined> {
  const record = await producedBy(uri);
  if (record === undefined) return undefined;
  return { record, consumers: await lineageStore().usedBy(artifactRoot ?? record.artifactRoot, record.fingerprint) };
}

/**
 * What a plan can know without a backend: image digests (workers/plan-images.ts; resolved here
 * with this process's registry configuration unless given) and what the artifact store holds.
 */
export async function lookupForPlan(config: PipelineConfig, imageDigests?: Readonly<Record<string, string>>): Promise<PlanContext> {
  const digests = imageDigests ?? (await planImageDigests(config, registryAccess(configFromEnv()))).imageDigests;
  return lineageStore().lookup(config, digests);
}

export function formatProducer(record: ArtifactRecord): string {
  const lines = [
    `${record.uri}`,
    `  stage:       ${record.stage}`,
    `  produced by: run ${record.producer.runId}, attempt ${record.producer.attempt} (${record.producer.workflowId})`,
    `  verified:    ${record.verifiedAt}`,
    `  fingerprint: ${record.fingerprint}`,
    `  image:       ${record.imageDigest}`,
    `  files:       ${record.manifest.files} (${record.manifest.bytes} bytes, manifest ${shortFingerprint(record.manifest.digest)})`,
  ];
  for (const [stage, input] of Object.entries(record.inputs)) lines.push(`  input:       ${stage} ${input.uri} (${shortFingerprint(input.fingerprint)})`);
  return lines.join('\n');
}

export function formatConsumers(record: ArtifactRecord, consumers: readonly ConsumerRecord[]): string {
  if (consumers.length === 0) return `no run has used ${record.uri} yet`;
  return [`runs that used ${record.uri}:`, ...consumers.map((c) => `  ${c.runId.padEnd(40)} ${c.stage.padEnd(13)} ${c.use === 'reuse' ? 'reused it' : 'read it'}  ${c.at}`)].join('\n');
}
