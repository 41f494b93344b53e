/**
 * What the cloud providers (tpu-api, compute-engine) check and derive from a compute request
 * alike: project and placement checked before any API call, and the labels and metadata that
 * make a machine ours (owner label, the exact run id in metadata since labels are slugs).
 */
import { ApplicationFailure } from '@temporalio/common';
import { COMPUTE_FAILURES } from '../../pipeline/compute-failures.ts';
import { LEASE_OWNER } from '../../pipeline/janitor.ts';
import { runSlug, shortHash } from '../../pipeline/naming.ts';
import { STAGE_SLUGS } from '../../pipeline/stages.ts';
import type { ComputeRequest } from '../types.ts';

/** A Google Cloud project id / a zone name like us-east5-b. */
export const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
export const ZONE_NAME = /^[a-z]+-[a-z]+[0-9]+-[a-z]$/;

/** Bad input: never retried, no API call made. */
export function invalidConfig(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: COMPUTE_FAILURES['invalid-config'].type, message, nonRetryable: true });
}

/** Project (the request's, else the provider's default), zones and the placement zone, checked. `what`: "TPU" or "VM". */
export function checkPlacement(request: ComputeRequest & { compute: { zones: string[] } }, defaultProject: string | undefined, what: string): { project: string; zones: string[]; zone: string } {
  const project = request.project ?? defaultProject;
  if (project === undefined || project === '') throw invalidConfig(`no Google Cloud project for the ${what}: the request carries none (gcp.project) and the provider has no default`);
  if (!PROJECT_ID.test(project)) throw invalidConfig(`"${project}" is not a Google Cloud project id (gcp.project)`);
  const zones = request.compute.zones;
  if (!Array.isArray(zones) || zones.length === 0) throw invalidConfig(`no zone given for the ${what} (compute.zones is empty)`);
  const badZone = zones.find((z) => !ZONE_NAME.test(z));
  if (badZone !== undefined) throw invalidConfig(`"${badZone}" is not a zone name like us-east5-b`);
  const zone = request.placement?.zone ?? zones[0]!;
  if (!zones.includes(zone)) throw invalidConfig(`placement zone "${zone}" is not one of compute.zones (${zones.join(', ')})`);
  if (!Number.isInteger(request.attempt) || request.attempt < 1) throw invalidConfig(`attempt must be a positive integer, got ${request.attempt}`);
  return { project, zones, zone };
}

/** The labels of every machine we create (what the janitor lists by). */
export function machineLabels(request: ComputeRequest): Record<string, string> {
  return {
    run: runSlug(request.runId, 63),
    'run-hash': shortHash(request.runId),
    stage: STAGE_SLUGS[request.stage],
    attempt: String(request.attempt),
    owner: LEASE_OWNER,
  };
}

/**
 * Whether a machine of our derived name is this run's (owner label, exact run id in metadata):
 * the only machines acquire adopts and release deletes.
 */
export function ownedByRun(labels: Record<string, string> | null | undefined, metadata: Record<string, string> | null | undefined, runId: string): boolean {
  return labels?.owner === LEASE_OWNER && metadata?.['recogdrive-run'] === runId;
}

/** Metadata with the exact run id and stage, plus the SSH key line for `sshUser` when given. */
export function machineMetadata(request: ComputeRequest, ssh: { user: string; publicKey: string | undefined }): Record<string, string> {
  const metadata: Record<string, string> = { 'recogdrive-run': request.runId, 'recogdrive-stage': request.stage };
  if (ssh.publicKey !== undefined) metadata['ssh-keys'] = `${ssh.user}:${ssh.publicKey.trim()} ${ssh.user}`;
  return metadata;
}
