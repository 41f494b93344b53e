/**
 * One attempt, one verdict: the real stage wrapper and the orchestrator's recordAttemptFailure
 * claim attempt-<N>/VERDICT.json before writing DONE.json or FAILED.json, so the second of two
 * contradicting verdicts is refused; and a reader treats FAILED.json as final for its attempt
 * even when a DONE.json of that attempt exists (written by something that did not claim).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';
import { markerReaders } from '../../activities/artifacts/marker-readers.ts';
import { createActivities } from '../../activities/index.ts';
import { verifyFromMarkers } from '../../activities/verify/index.ts';
import type { VerificationSpec } from '../../pipeline/contracts/types.ts';
import { markerLocation, type FailedMarker } from '../../pipeline/markers.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const NODE = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
const WRAPPER = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'main.ts');
const SPEC: VerificationSpec = {
  outputs: { kind: 'token-cache', files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens: 2 },
  logMustContain: [],
  logMustNotContain: [],
};
const folders: string[] = [];
after(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

/** A run's stage folder: `<parent>/cache` with its markers beside it in `<parent>/_recogdrive/cache`. */
async function stageFolder(): Promise<{ output: string; markers: string }> {
  const parent = await mkdtemp(join(tmpdir(), 'rd-verdict-'));
  folders.push(parent);
  const output = join(parent, 'cache');
  return { output, markers: markerLocation(`file://${output}`, 'beside').uri.slice('file://'.length) };
}

/** The real wrapper around a command that writes a complete 2-token cache and exits 0, as attempt 1. */
async function runWrapper(folder: { output: string; markers: string }): Promise<void> {
  const script = `for i in 0 1; do d="$RECOGDRIVE_OUTPUT_DIR/log/token-$i"; mkdir -p "$d"; echo f > "$d/internvl_feature.gz"; echo t > "$d/trajectory_target.gz"; done`;
  await promisify(execFile)(NODE, [WRAPPER, '--', 'sh', '-c', script], {
    env: {
      PATH: process.env.PATH,
      RECOGDRIVE_STAGE: 'featureCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: folder.output,
      RECOGDRIVE_MARKER_DIR: folder.markers,
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(SPEC.outputs),
    },
  });
}

const verify = (folder: { output: string; markers: string }) =>
  verifyFromMarkers(markerReaders(() => new FileArtifactStore(), `file://${folder.output}`, { layout: 'beside', uri: `file://${folder.markers}` }), SPEC, undefined);

const activities = createActivities({ compute: {}, executors: {}, artifactStores: [new FileArtifactStore()], localImage: { base: PROJECT_ROOT, dirs: [] } });

const orchestratorFailure = (folder: { output: string; markers: string }) => {
  const marker: FailedMarker = {
    schema: 1,
    stage: 'featureCache',
    attempt: 1,
    worker: 0,
    exitCode: null,
    signal: null,
    finishedAt: new Date().toISOString(),
    lastLines: [],
    writer: 'orchestrator',
    reason: 'StageInfrastructureError: host lost',
  };
  return activities.recordAttemptFailure({ outputUri: `file://${folder.output}`, markers: { layout: 'beside', uri: `file://${folder.markers}` }, marker });
};

test('a wrapper finishing an attempt the orchestrator already declared failed writes no DONE.json', async () => {
  const folder = await stageFolder();
  assert.equal(await orchestratorFailure(folder), true);
  await runWrapper(folder);
  await assert.rejects(readFile(join(folder.markers, 'DONE.json'), 'utf8'), { code: 'ENOENT' });
  const report = await verify(folder);
  assert.equal(report.ok, false);
  assert.equal(report.doneAttempt, undefined, 'no earlier verdict for the next attempt to take');
});

test('the orchestrator cannot declare failed an attempt whose wrapper recorded DONE first', async () => {
  const folder = await stageFolder();
  await runWrapper(folder);
  assert.equal(await orchestratorFailure(folder), false);
  await assert.rejects(readFile(join(folder.markers, 'attempt-1', 'FAILED.json'), 'utf8'), { code: 'ENOENT' });
  const report = await verify(folder);
  assert.equal(report.ok, true, report.problems.join('; '));
  assert.equal(report.doneAttempt, 1);
});

test('without a claim, a DONE.json of an attempt that has a FAILED.json is ignored and reported', async () => {
  const folder = await stageFolder();
  await runWrapper(folder);
  // Writers from before claims (an older wrapper in the image, an older orchestrator): no VERDICT.json, both files for attempt 1.
  await rm(join(folder.markers, 'attempt-1', 'VERDICT.json'));
  await mkdir(join(folder.markers, 'attempt-1'), { recursive: true });
  await writeFile(join(folder.markers, 'attempt-1', 'FAILED.json'), JSON.stringify({ schema: 1, attempt: 1, writer: 'orchestrator' }));
  const report = await verify(folder);
  assert.equal(report.ok, false);
  assert.equal(report.doneAttempt, undefined);
  assert.equal(report.ignoredDoneAttempt, 1);
  assert.match(report.problems.join('\n'), /DONE\.json of attempt 1 is ignored: the attempt was declared failed/);
});
