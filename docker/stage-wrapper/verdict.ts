/**
 * The verdict of an attempt, written once by worker 0 after the command exited: DONE.json (with the
 * manifest and the contract's output check) for exit code 0, FAILED.json for anything else.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { markerFiles, MARKER_SCHEMA, type DoneMarker, type FailedMarker, type VerdictClaim } from '../../pipeline/markers.ts';
import { checkOutputs, type CheckResult } from '../../pipeline/verify/index.ts';
import type { CommandExit } from './child.ts';
import type { WrapperConfig } from './env.ts';
import { LocalOutputReader } from './local-reader.ts';
import { buildManifest, listOutputFiles } from './manifest.ts';
import { createExclusive, exists, replaceAtomically } from './markers-writer.ts';

export interface AttemptTimes {
  startedAt: Date;
  finishedAt: Date;
}

/** Exit code 0: MANIFEST.tsv, the output check, then DONE.json unless a verdict is already there. */
export async function recordDone(config: WrapperConfig, times: AttemptTimes, say: (line: string) => void): Promise<void> {
  const files = markerFiles(config.markers.layout);
  const donePath = join(config.markers.uri, files.done);
  // An earlier attempt's verdict stands, and so does the manifest its digest names.
  if (await exists(donePath)) {
    say(`a verdict already exists (${donePath}); leaving it and the manifest as they are`);
    return;
  }
  // One attempt, one verdict: the orchestrator may have declared this attempt failed (host lost, hang) meanwhile.
  if (!(await claimVerdict(config, 'done', say))) return;
  if (await exists(join(config.markers.uri, files.failed(config.attempt)))) {
    say(`attempt ${config.attempt} was already declared failed; writing no ${files.done}`);
    return;
  }
  const manifest = buildManifest(await listOutputFiles(config.outputDir, config.markers.layout), files.manifest);
  await replaceAtomically(join(config.markers.uri, files.manifest), manifest.content);
  const check = await runCheck(config);
  const marker: DoneMarker = {
    schema: MARKER_SCHEMA,
    stage: config.stage,
    attempt: config.attempt,
    worker: config.worker,
    exitCode: 0,
    startedAt: times.startedAt.toISOString(),
    finishedAt: times.finishedAt.toISOString(),
    manifest: manifest.summary,
    check: { spec: config.outputCheck, problems: check.problems, summary: check.summary },
  };
  if ((await createExclusive(donePath, `${JSON.stringify(marker, null, 2)}\n`)) === 'exists') {
    say(`a verdict already exists (${donePath}); leaving it as it is`);
  }
}

/** Non-zero exit or a signal: FAILED.json of this attempt, unless one is already there. */
export async function recordFailed(
  config: WrapperConfig,
  exit: CommandExit,
  lastLines: string[],
  finishedAt: Date,
  say: (line: string) => void,
): Promise<void> {
  const marker: FailedMarker = {
    schema: MARKER_SCHEMA,
    stage: config.stage,
    attempt: config.attempt,
    worker: config.worker,
    // A command that never started has no code of its own: record the one the wrapper exits with (126/127).
    exitCode: exit.signal === null ? exit.exitCode : null,
    signal: exit.signal,
    finishedAt: finishedAt.toISOString(),
    lastLines,
    writer: 'wrapper',
    ...(exit.error === undefined ? {} : { reason: exit.error }),
  };
  const path = join(config.markers.uri, markerFiles(config.markers.layout).failed(config.attempt));
  if (!(await claimVerdict(config, 'failed', say))) return;
  if ((await createExclusive(path, `${JSON.stringify(marker, null, 2)}\n`)) === 'exists') {
    say(`a verdict already exists (${path}); leaving it as it is`);
  }
}

/**
 * Claims the attempt's one verdict (attempt-<N>/VERDICT.json, created only if absent). False when
 * the attempt already has the other verdict: the caller then writes none.
 */
async function claimVerdict(config: WrapperConfig, verdict: VerdictClaim['verdict'], say: (line: string) => void): Promise<boolean> {
  const path = join(config.markers.uri, markerFiles(config.markers.layout).verdict(config.attempt));
  const claim: VerdictClaim = { verdict, writer: 'wrapper', at: new Date().toISOString() };
  if ((await createExclusive(path, `${JSON.stringify(claim)}\n`)) === 'created') return true;
  const existing = await readFile(path, 'utf8').then((text) => (JSON.parse(text) as Partial<VerdictClaim>).verdict, () => undefined);
  if (existing === verdict) return true;
  say(`attempt ${config.attempt} already has the verdict "${existing ?? 'unreadable'}" (${path}); recording no other`);
  return false;
}

/** The contract's output check over the local outputs; a check that cannot run is reported as its problem. */
async function runCheck(config: WrapperConfig): Promise<CheckResult> {
  try {
    return await checkOutputs(new LocalOutputReader(config.outputDir, config.markers.layout), config.outputCheck);
  } catch (error) {
    return { problems: [`the output check could not run: ${(error as Error).message}`], summary: {} };
  }
}
