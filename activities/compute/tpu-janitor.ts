/**
 * The janitor's view of the tpu-api backend: every node and queued resource labelled
 * owner=recogdrive in the scoped projects × zones, and deleting exactly the one listed.
 *
 * Cloud labels are slugs, so `labels.run` / `labels.stage` of a record come from the node's
 * metadata (`recogdrive-run`, `recogdrive-stage`: the exact run id and stage name the janitor
 * needs to ask Temporal). Without that metadata the record has no `run` label (the slug is kept
 * as `run-label`), so the janitor keeps it rather than guessing a wrong, "unknown" run.
 *
 * A node made by one of our queued resources is listed as that queued resource (deleting it with
 * force takes the node too). A record names the full resource; deleteLease compares the
 * creation time (and for a node its unique id) before deleting, so a newer resource that took
 * the same name is left alone.
 */
import * as grpc from '@grpc/grpc-js';
import { LEASE_OWNER, type LeaseRecord } from '../../pipeline/janitor.ts';
import {
  PROJECT_ID,
  ZONE_NAME,
  classifyTpuError,
  codeOf,
  deleteResource,
  invalid,
  isoTime,
  locationName,
  parseResourceName,
  type DeleteSettings,
  type TpuClient,
} from './tpu-common.ts';

/** Where the janitor looks: each project with its zones. */
export interface TpuScope {
  project: string;
  zones: string[];
}

export function checkScope(scope: readonly TpuScope[]): void {
  for (const { project, zones } of scope) {
    if (!PROJECT_ID.test(project)) throw invalid(`scope: "${project}" is not a Google Cloud project id`);
    const bad = zones.find((z) => !ZONE_NAME.test(z));
    if (bad !== undefined) throw invalid(`scope: "${bad}" is not a zone name like us-east5-b`);
  }
}

interface Labelled {
  name?: string | null;
  createTime?: unknown;
  labels?: Record<string, string> | null;
  metadata?: Record<string, string> | null;
}

function record(kind: 'node' | 'queued-resource', resource: Labelled, zone: string, uid?: string): LeaseRecord | undefined {
  const labels = resource.labels ?? {};
  if (labels.owner !== LEASE_OWNER || !resource.name) return undefined;
  const metadata = resource.metadata ?? {};
  const out: Record<string, string> = { ...labels, kind };
  delete out.run;
  if (labels.run !== undefined) out['run-label'] = labels.run;
  if (metadata['recogdrive-run']) out.run = metadata['recogdrive-run'];
  if (metadata['recogdrive-stage']) out.stage = metadata['recogdrive-stage'];
  if (uid) out['tpu-id'] = uid;
  return { name: resource.name, backend: 'tpu-api', labels: out, createdAt: isoTime(resource.createTime), zone };
}

/** Our nodes and queued resources in every scoped project × zone (all pages). */
export async function listTpuLeases(client: TpuClient, scope: readonly TpuScope[], pageSize: number): Promise<LeaseRecord[]> {
  checkScope(scope);
  const leases: LeaseRecord[] = [];
  for (const { project, zones } of scope) {
    for (const zone of zones) {
      const parent = locationName(project, zone);
      const where = (during: string) => ({ node: parent, zone, during });
      const queued = new Set<string>();
      try {
        for await (const qr of client.listQueuedResourcesAsync({ parent, pageSize }, { autoPaginate: false })) {
          // the node spec carries the labels and metadata the node will have.
          const node = qr.tpu?.nodeSpec?.[0]?.node ?? {};
          const found = record('queued-resource', { name: qr.name, createTime: qr.createTime, labels: node.labels, metadata: node.metadata }, zone);
          if (qr.name) queued.add(qr.name);
          if (found !== undefined) leases.push(found);
        }
        for await (const node of client.listNodesAsync({ parent, pageSize }, { autoPaginate: false })) {
          if (node.queuedResource && queued.has(node.queuedResource)) continue;
          const found = record('node', node, zone, node.id === undefined || node.id === null ? undefined : String(node.id));
          if (found !== undefined) leases.push(found);
        }
      } catch (error) {
        throw classifyTpuError(error, where('listing'));
      }
    }
  }
  return leases;
}

/** Deletes the node or queued resource `lease` names if it is still the one listed. False when it is gone (or replaced). */
export async function deleteTpuLease(settings: DeleteSettings, scope: readonly TpuScope[], lease: LeaseRecord): Promise<boolean> {
  if (lease.backend !== 'tpu-api') throw invalid(`the tpu-api backend was asked to delete a ${lease.backend} lease (${lease.name})`);
  const target = parseResourceName(lease.name);
  if (target === undefined) throw invalid(`not a Cloud TPU node or queued resource name: ${JSON.stringify(lease.name)}`);
  // only what this backend could have listed: a record is data, not an instruction.
  if (!scope.some((s) => s.project === target.project && s.zones.includes(target.zone))) {
    throw invalid(`${lease.name} is outside this worker's janitor scope`);
  }
  const { client } = settings;
  let current: { createTime?: unknown; id?: unknown };
  try {
    [current] = target.kind === 'node' ? await client.getNode({ name: lease.name }) : await client.getQueuedResource({ name: lease.name });
  } catch (error) {
    if (codeOf(error) === grpc.status.NOT_FOUND) return false;
    throw classifyTpuError(error, { node: lease.name, zone: target.zone, during: 'reading (janitor)' });
  }
  if (isoTime(current.createTime) !== lease.createdAt) return false;
  const uid = lease.labels['tpu-id'];
  if (target.kind === 'node' && uid !== undefined && String(current.id) !== uid) return false;
  return deleteResource(settings, target.kind, lease.name, target.zone);
}
