/** The chaos suite's checker can fail: each check flags the defect it exists for (no test bed needed). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { containerName, runSlug } from '../../pipeline/naming.ts';
import type { Testbed } from '../testbed/testbed.ts';
import { checkCreates, checkFingerprints, checkVerdicts, markersDir, type Outcome, type RunUnderCheck } from './checks.ts';

const RUN = 'chaos-check';
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function world(): { root: string; bed: Testbed; run(outcome: Outcome): RunUnderCheck } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chaos-checks-'));
  dirs.push(dir);
  const bed = { dir, workers: [{}, {}] } as unknown as Testbed;
  const root = `file://${dir}/artifacts`;
  return {
    root,
    bed,
    run: (outcome) => ({
      bed,
      client: undefined as unknown as Client,
      artifactRoot: root,
      runId: RUN,
      slices: { stage1: [0, 1] },
      outcome,
      baseline: { planned: { stage1: 'sha256:aaaa' }, recorded: { stage1: 'sha256:aaaa' } },
    }),
  };
}

function logCreate(bed: Testbed, worker: number, attempt: number): void {
  fs.mkdirSync(path.join(bed.dir, `worker-${worker}`), { recursive: true });
  fs.appendFileSync(path.join(bed.dir, `worker-${worker}`, 'creates.log'), `2026-01-01T00:00:00Z\t${containerName(RUN, 'stage1')}\t${attempt}\n`);
}

function writeMarker(root: string, file: string, value: unknown): void {
  const target = path.join(markersDir(root, RUN, 'stage1'), file);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, JSON.stringify(value));
}

const succeeded = (attempt: number, fingerprint = 'sha256:aaaa'): Outcome => ({ state: 'succeeded', attempts: { stage1: attempt }, fingerprints: { stage1: fingerprint } });

test('two containers created on one host for one attempt are flagged, one per host is not', () => {
  const w = world();
  logCreate(w.bed, 0, 1);
  logCreate(w.bed, 1, 1);
  writeMarker(w.root, 'DONE.json', { attempt: 1 });
  assert.deepEqual(checkCreates(w.run(succeeded(1))), []);
  logCreate(w.bed, 1, 1);
  assert.match(checkCreates(w.run(succeeded(1))).join('\n'), /attempt 1: 2 containers created on host 1/);
});

test('an attempt with both FAILED.json and the DONE.json, or with no verdict, is flagged', () => {
  const w = world();
  logCreate(w.bed, 0, 2);
  writeMarker(w.root, 'DONE.json', { attempt: 1 });
  writeMarker(w.root, 'attempt-1/FAILED.json', { attempt: 1 });
  const problems = checkVerdicts(w.run(succeeded(1))).join('\n');
  assert.match(problems, /attempt 1: 2 verdicts/);
  assert.match(problems, /attempt 2: 0 verdicts/);
  assert.match(problems, /succeeded on attempt 1, which has FAILED\.json/);
});

test('a success on an attempt other than the one DONE.json names is flagged', () => {
  const w = world();
  writeMarker(w.root, 'attempt-1/FAILED.json', { attempt: 1 });
  writeMarker(w.root, 'DONE.json', { attempt: 2 });
  assert.deepEqual(checkVerdicts(w.run(succeeded(2))), []);
  assert.match(checkVerdicts(w.run(succeeded(1))).join('\n'), /succeeded on attempt 1 but DONE\.json names attempt 2/);
});

test('fingerprints that differ from the undisturbed run, or are missing, are flagged', () => {
  const w = world();
  const record = (fp: string) => {
    const file = path.join(w.root.slice('file://'.length), 'lineage', 'runs', `${runSlug(RUN, 80)}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ stages: [{ stage: 'stage1', fingerprint: fp }] }));
    writeMarker(w.root, 'ARTIFACT.json', { fingerprint: fp });
  };
  assert.match(checkFingerprints(w.run(succeeded(1))).join('\n'), /planned fingerprint none/);
  record('sha256:aaaa');
  assert.deepEqual(checkFingerprints(w.run(succeeded(1))), []);
  record('sha256:bbbb');
  const problems = checkFingerprints(w.run(succeeded(1, 'sha256:bbbb'))).join('\n');
  assert.match(problems, /planned fingerprint bbbb/);
  assert.match(problems, /recorded fingerprint bbbb/);
  assert.match(problems, /result fingerprint bbbb/);
});
