/**
 * What must hold after every chaos run, whatever was done to it: one container per host per
 * attempt, nothing left behind, one verdict per attempt, and the fingerprints of an undisturbed
 * run of the same input. Each check returns problems (empty: it held) so the long suite can
 * tabulate them and the CI test can assert them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { besideMarkersUri, DONE_MARKER, type DoneMarker } from '../../pipeline/markers.ts';
import { containerName, stageArtifactUri } from '../../pipeline/naming.ts';
import { runRecordUri, type RunRecord } from '../../pipeline/lineage.ts';
import type { StageName } from '../../pipeline/stages.ts';
import { CREATE_LOG, type Testbed } from '../testbed/testbed.ts';

export interface CreateEntry {
  at: string;
  name: string;
  attempt: number;
}

/** Every `docker run`/`create` a test bed worker saw (the test bed runs with logCreates). */
export function createsOn(bed: Testbed, worker: number): CreateEntry[] {
  const file = path.join(bed.dir, `worker-${worker}`, CREATE_LOG);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [at = '', name = '', attempt = ''] = line.split('\t');
      return { at, name, attempt: Number(attempt) };
    });
}

/** How a run ended: its summary's stages, or the failure type the stage reported. */
export type Outcome =
  | { state: 'succeeded'; attempts: Partial<Record<StageName, number>>; fingerprints: Partial<Record<StageName, string>> }
  | { state: 'failed'; stageType: string | undefined; message: string }
  | { state: 'cancelled' | 'timed out'; message: string };

/** Fingerprints the run planned (its lineage run record) and, for outputs it verified, those of their ARTIFACT.json. */
export interface Fingerprints {
  planned: Partial<Record<StageName, string>>;
  recorded: Partial<Record<StageName, string>>;
}

const fileOf = (uri: string): string => (uri.startsWith('file://') ? uri.slice('file://'.length) : uri);

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function markersDir(artifactRoot: string, runId: string, stage: StageName): string {
  return fileOf(besideMarkersUri(stageArtifactUri(artifactRoot, runId, stage))!);
}

export function fingerprintsOf(artifactRoot: string, runId: string, stages: readonly StageName[]): Fingerprints {
  const record = readJson<RunRecord>(fileOf(runRecordUri(artifactRoot, runId)));
  const planned: Fingerprints['planned'] = {};
  const recorded: Fingerprints['recorded'] = {};
  for (const stage of stages) {
    const fp = record?.stages.find((s) => s.stage === stage)?.fingerprint;
    if (fp !== undefined) planned[stage] = fp;
    const artifact = readJson<{ fingerprint?: string }>(path.join(markersDir(artifactRoot, runId, stage), 'ARTIFACT.json'));
    if (artifact?.fingerprint !== undefined) recorded[stage] = artifact.fingerprint;
  }
  return { planned, recorded };
}

export interface RunUnderCheck {
  bed: Testbed;
  client: Client;
  artifactRoot: string;
  runId: string;
  /** The stages that ran, with the test bed workers of their slices. */
  slices: Partial<Record<StageName, readonly number[]>>;
  outcome: Outcome;
  baseline: Fingerprints;
}

/** (a) Each host of a slice was asked for its container at most once per attempt, and exactly once for the attempt that succeeded. */
export function checkCreates(run: RunUnderCheck): string[] {
  const problems: string[] = [];
  for (const [stage, workers] of Object.entries(run.slices) as Array<[StageName, number[]]>) {
    const name = containerName(run.runId, stage);
    const done = readJson<DoneMarker>(path.join(markersDir(run.artifactRoot, run.runId, stage), DONE_MARKER));
    const perHost = workers.map((w) => createsOn(run.bed, w).filter((c) => c.name === name));
    const attempts = new Set(perHost.flat().map((c) => c.attempt));
    if (done !== undefined) attempts.add(done.attempt);
    for (const attempt of [...attempts].sort()) {
      workers.forEach((worker, i) => {
        const count = perHost[i]!.filter((c) => c.attempt === attempt).length;
        const want = done?.attempt === attempt ? '=1' : '<=1';
        if (count > 1 || (want === '=1' && count !== 1)) problems.push(`${stage} attempt ${attempt}: ${count} containers created on host ${worker} (want ${want})`);
      });
    }
  }
  return problems;
}

/** (b) No container of the orchestrator on any host, no open workflow of the run, no pending activity (waits up to `waitMs` for cleanup). */
export async function checkLeftovers(run: RunUnderCheck, waitMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const problems: string[] = [];
    for (let w = 0; w < run.bed.workers.length; w++) {
      const { stdout } = await run.bed.docker(w, ['ps', '-a', '--filter', 'label=recogdrive.owner=recogdrive', '--format', '{{.Names}} {{.Status}}']);
      for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) problems.push(`container left on host ${w}: ${line}`);
    }
    const ids = [run.runId, ...Object.keys(run.slices).map((stage) => `${run.runId}/${stage}`)];
    for (const id of ids) {
      try {
        const description = await run.client.workflow.getHandle(id).describe();
        if (description.status.name === 'RUNNING') problems.push(`workflow ${id} still running`);
        // A run the suite terminated (timed out) keeps its pending activities on record: not a leftover of the system's.
        const pending = description.status.name === 'TERMINATED' ? [] : (description.raw.pendingActivities ?? []);
        if (pending.length > 0) problems.push(`workflow ${id}: pending activities ${pending.map((a) => a.activityType?.name).join(', ')}`);
      } catch (error) {
        if ((error as Error).name !== 'WorkflowNotFoundError') problems.push(`describe ${id}: ${(error as Error).message}`);
      }
    }
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(1000);
  }
}

/** (c) Every attempt has exactly one verdict (FAILED.json or the DONE.json naming it), and a success is the attempt DONE.json names. */
export function checkVerdicts(run: RunUnderCheck): string[] {
  const problems: string[] = [];
  for (const stage of Object.keys(run.slices) as StageName[]) {
    const dir = markersDir(run.artifactRoot, run.runId, stage);
    const done = readJson<DoneMarker>(path.join(dir, DONE_MARKER));
    const failed = new Set(
      (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        .map((entry) => /^attempt-(\d+)$/.exec(entry))
        .filter((m): m is RegExpExecArray => m !== null && fs.existsSync(path.join(dir, m[0], 'FAILED.json')))
        .map((m) => Number(m[1])),
    );
    const launched = createsOn(run.bed, run.slices[stage]![0]!)
      .concat(...(run.slices[stage]!.slice(1).map((w) => createsOn(run.bed, w))))
      .filter((c) => c.name === containerName(run.runId, stage))
      .map((c) => c.attempt);
    const succeededAttempt = run.outcome.state === 'succeeded' ? run.outcome.attempts[stage] : undefined;
    const last = Math.max(0, done?.attempt ?? 0, succeededAttempt ?? 0, ...failed, ...launched);
    for (let attempt = 1; attempt <= last; attempt++) {
      const verdicts = (failed.has(attempt) ? 1 : 0) + (done?.attempt === attempt ? 1 : 0);
      if (verdicts !== 1) problems.push(`${stage} attempt ${attempt}: ${verdicts} verdicts (FAILED.json ${failed.has(attempt) ? 'and' : 'without'} DONE.json${done?.attempt === attempt ? '' : ' of another attempt or none'})`);
    }
    if (succeededAttempt !== undefined && done?.attempt !== succeededAttempt) {
      problems.push(`${stage} succeeded on attempt ${succeededAttempt} but DONE.json names attempt ${done?.attempt ?? 'none'}`);
    }
    if (succeededAttempt !== undefined && failed.has(succeededAttempt)) problems.push(`${stage} succeeded on attempt ${succeededAttempt}, which has FAILED.json`);
    if (run.outcome.state === 'failed' && done !== undefined && !failed.has(done.attempt) && done.attempt === last) {
      problems.push(`${stage}: the run failed but DONE.json of attempt ${done.attempt} stands unrefuted`);
    }
  }
  return problems;
}

/** (d) The planned and recorded fingerprints are those of the undisturbed run of the same input. */
export function checkFingerprints(run: RunUnderCheck): string[] {
  const problems: string[] = [];
  const now = fingerprintsOf(run.artifactRoot, run.runId, Object.keys(run.slices) as StageName[]);
  for (const stage of Object.keys(run.baseline.planned) as StageName[]) {
    const want = run.baseline.planned[stage];
    if (now.planned[stage] !== want) problems.push(`${stage}: planned fingerprint ${short(now.planned[stage])}, undisturbed ${short(want)}`);
    if (run.outcome.state === 'succeeded') {
      if (now.recorded[stage] !== run.baseline.recorded[stage]) problems.push(`${stage}: recorded fingerprint ${short(now.recorded[stage])}, undisturbed ${short(run.baseline.recorded[stage])}`);
      if (run.outcome.fingerprints[stage] !== want) problems.push(`${stage}: result fingerprint ${short(run.outcome.fingerprints[stage])}, undisturbed ${short(want)}`);
    }
  }
  return problems;
}

const short = (fp: string | undefined): string => (fp === undefined ? 'none' : fp.slice(7, 19));

/** All four checks, named. */
export async function checkRun(run: RunUnderCheck): Promise<Record<'creates' | 'leftovers' | 'verdicts' | 'fingerprints', string[]>> {
  return {
    creates: checkCreates(run),
    leftovers: await checkLeftovers(run),
    verdicts: checkVerdicts(run),
    fingerprints: checkFingerprints(run),
  };
}
