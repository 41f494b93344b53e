/**
 * Output growth reported by the stage wrapper (docker/stage-wrapper/growth.ts): the wrapper as a
 * real process (`node docker/stage-wrapper/main.ts -- sh -c '...'`) around a command that waits
 * for the test, which writes into the output folder itself, so every change is one the test made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DoneMarker } from '../../pipeline/markers.ts';
import { GROWTH_COST_FACTOR, growthIntervalFor, nextGrowthScanDelay, parseGrowthLine, type GrowthRecord } from '../../pipeline/output-growth.ts';
import { measureOutput, OutputGrowth } from '../../docker/stage-wrapper/growth.ts';
import type { WrapperProgressMarker } from '../../docker/stage-wrapper/progress.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const NODE = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
const MAIN = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'main.ts');
const CHECK = JSON.stringify({ kind: 'token-cache', files: ['a'], expectedTokens: undefined });

/** A bar as tqdm starts it: \r, the bar, no newline (it sits there until the next update). */
const RAY_BAR = 'Ray objects:   0%|          | 0/4 [00:00<?, ?it/s]';
/**
 * Prints the bar on stderr, then waits until the test creates `stop` (the command writes nothing
 * itself); a failed test removes the folders, which ends the wait too.
 */
const WAIT_FOR_STOP = `printf '\\r%s' '${RAY_BAR}' >&2; while [ ! -e "$CTL/stop" ] && [ -d "$CTL" ]; do sleep 0.05; done`;

interface Wrapper {
  stderr(): string;
  growthLines(): string[];
  done: Promise<number | null>;
}

function startWrapper(script: string, env: Record<string, string>): Wrapper {
  const child = spawn(NODE, [MAIN, '--', 'sh', '-c', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return {
    stderr: () => stderr,
    growthLines: () => stderr.split(/\r|\n/).filter((line) => parseGrowthLine(line) !== undefined),
    done: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
}

async function withFolders(use: (dirs: { out: string; markers: string; ctl: string; parent: string }) => Promise<void>): Promise<void> {
  const parent = await mkdtemp(join(tmpdir(), 'rd-growth-'));
  const dirs = { parent, out: join(parent, 'out'), markers: join(parent, '_recogdrive', 'out'), ctl: join(parent, 'ctl') };
  await mkdir(dirs.out);
  await mkdir(dirs.ctl);
  try {
    await use(dirs);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function progressOf(markers: string): Promise<WrapperProgressMarker | undefined> {
  const text = await readFile(join(markers, 'attempt-1', 'progress.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as WrapperProgressMarker);
}

test('the wrapper prints a growth line only when the output grows, on a line of its own, and records it in progress.json', async () => {
  await withFolders(async ({ out, markers, ctl, parent }) => {
    const wrapper = startWrapper(WAIT_FOR_STOP, {
      RECOGDRIVE_STAGE: 'metricCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: out,
      RECOGDRIVE_MARKER_DIR: markers,
      RECOGDRIVE_OUTPUT_CHECK: CHECK,
      RECOGDRIVE_GROWTH_INTERVAL_MS: '50',
      // progress.json only at start and on growth: the growth writes it.
      RECOGDRIVE_PROGRESS_INTERVAL_MS: '3600000',
      CTL: ctl,
    });
    await until(() => (wrapper.stderr().includes(RAY_BAR) ? true : undefined), 'the bar');
    await until(() => progressOf(markers), 'the first progress.json');
    await sleep(600); // many walks of an unchanged (empty) folder
    assert.deepEqual(wrapper.growthLines(), [], 'nothing changed: nothing printed (the first walk is the baseline)');

    await writeFile(join(out, 'a.pkl'), '0123456789');
    await until(() => (wrapper.growthLines().length > 0 ? true : undefined), 'a growth line');
    assert.ok(wrapper.stderr().includes(`${RAY_BAR}\nrecogdrive-stage: output 1 files, 10 bytes\n`), `the bar's line is ended first: ${JSON.stringify(wrapper.stderr())}`);
    const first = await until(async () => ((await progressOf(markers))?.output?.files === 1 ? (await progressOf(markers))!.output : undefined), 'progress.json with the output');
    assert.equal(first!.bytes, 10);

    await sleep(600); // many walks of an unchanged folder
    assert.deepEqual(wrapper.growthLines(), ['recogdrive-stage: output 1 files, 10 bytes'], 'no growth, no line');

    // One change, made atomically: a file in a new folder.
    await mkdir(join(parent, 'staging'));
    await writeFile(join(parent, 'staging', 'b.pkl'), 'abcdefghij');
    await mkdir(join(out, 'log', 'unknown', 'token'), { recursive: true });
    await rename(join(parent, 'staging', 'b.pkl'), join(out, 'log', 'unknown', 'token', 'b.pkl'));
    await until(() => (wrapper.growthLines().length > 1 ? true : undefined), 'a second growth line');
    const second = await until(async () => {
      const output = (await progressOf(markers))?.output;
      return output?.files === 2 ? output : undefined;
    }, 'progress.json with the second totals');
    assert.equal(second.bytes, 20);
    assert.ok(Date.parse(first!.changedAt) <= Date.parse(second.changedAt) && Date.parse(second.changedAt) <= Date.parse(second.scannedAt));

    await writeFile(join(ctl, 'stop'), '');
    assert.equal(await wrapper.done, 0);
    assert.deepEqual(wrapper.growthLines(), ['recogdrive-stage: output 1 files, 10 bytes', 'recogdrive-stage: output 2 files, 20 bytes']);
    const done = JSON.parse(await readFile(join(markers, 'DONE.json'), 'utf8')) as DoneMarker;
    assert.deepEqual([done.manifest.files, done.manifest.bytes], [2, 20], 'the last growth line agrees with the manifest');
  });
});

test('only worker 0 walks and reports: another worker of the slice prints no growth line', async () => {
  await withFolders(async ({ out, markers, ctl }) => {
    const wrapper = startWrapper(WAIT_FOR_STOP, {
      RECOGDRIVE_STAGE: 'metricCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_WORKER: '1',
      RECOGDRIVE_OUTPUT_DIR: out,
      RECOGDRIVE_MARKER_DIR: markers,
      RECOGDRIVE_OUTPUT_CHECK: CHECK,
      RECOGDRIVE_GROWTH_INTERVAL_MS: '20',
      CTL: ctl,
    });
    await until(() => (wrapper.stderr().includes(RAY_BAR) ? true : undefined), 'the bar');
    for (let i = 0; i < 10; i++) {
      await writeFile(join(out, `f${i}`), 'x'.repeat(i + 1));
      await sleep(60);
    }
    await writeFile(join(ctl, 'stop'), '');
    assert.equal(await wrapper.done, 0);
    assert.deepEqual(wrapper.growthLines(), []);
    assert.equal(wrapper.stderr(), `\r${RAY_BAR}`, 'stderr is the command\'s, byte for byte');
  });
});

test("in the old layout (markers inside the output) the wrapper's own progress.json rewrites are not growth", async () => {
  await withFolders(async ({ out }) => {
    // Lines of growing length: every progress.json (lines, lastLine) differs in size from the last.
    const script = 'i=0; while [ $i -lt 25 ]; do i=$((i+1)); printf "line %s %0${i}d\\n" $i 0; sleep 0.04; done';
    const wrapper = startWrapper(script, {
      RECOGDRIVE_STAGE: 'metricCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: out,
      RECOGDRIVE_OUTPUT_CHECK: CHECK,
      RECOGDRIVE_GROWTH_INTERVAL_MS: '20',
      RECOGDRIVE_PROGRESS_INTERVAL_MS: '20',
    });
    assert.equal(await wrapper.done, 0);
    assert.deepEqual(wrapper.growthLines(), []);
    const progress = JSON.parse(await readFile(join(out, '_recogdrive', 'attempt-1', 'progress.json'), 'utf8')) as WrapperProgressMarker;
    assert.deepEqual([progress.output?.files, progress.output?.bytes], [0, 0], 'the walk saw no output files');
  });
});

test('measuring the output: files and bytes below the folder (linked files count, linked folders are not followed); a missing folder is empty', async () => {
  await withFolders(async ({ out, parent }) => {
    assert.deepEqual(await measureOutput(join(parent, 'missing'), 'beside'), { files: 0, bytes: 0 });
    await mkdir(join(out, 'l1', 'unknown', 't1'), { recursive: true });
    await writeFile(join(out, 'l1', 'unknown', 't1', 'metric_cache.pkl'), '12345');
    await writeFile(join(out, 'top'), '123');
    await symlink(join(out, 'top'), join(out, 'link-to-file'));
    await symlink(join(out, 'l1'), join(out, 'link-to-folder'));
    await symlink(join(out, 'nowhere'), join(out, 'dangling'));
    assert.deepEqual(await measureOutput(out, 'beside'), { files: 3, bytes: 11 });
    await mkdir(join(out, '_recogdrive', 'attempt-1'), { recursive: true });
    await writeFile(join(out, '_recogdrive', 'attempt-1', 'progress.json'), '{}');
    await writeFile(join(out, 'DONE.json'), '{}');
    assert.deepEqual(await measureOutput(out, 'inside'), { files: 3, bytes: 11 }, 'the old layout leaves its protocol files out');
    assert.deepEqual(await measureOutput(out, 'beside'), { files: 5, bytes: 15 }, 'beside the markers, nothing is special');
  });
});

test('walks never overlap and back off: the next starts no sooner than 20x the last walk took (at most ~5% of wall time)', async () => {
  const walks: { start: number; end: number }[] = [];
  let running = 0;
  let overlapped = false;
  const growth = new OutputGrowth({
    outputDir: '/unused',
    layout: 'beside',
    intervalMs: 1,
    onChange: () => {},
    measure: async () => {
      running++;
      overlapped ||= running > 1;
      const start = performance.now();
      await sleep(20);
      walks.push({ start, end: performance.now() });
      running--;
      return { files: walks.length, bytes: 0 };
    },
  });
  growth.start();
  await sleep(2_500);
  await growth.stop();
  assert.equal(overlapped, false);
  assert.ok(walks.length >= 2, `walks: ${walks.length}`);
  for (let i = 1; i < walks.length; i++) {
    const previous = walks[i - 1]!;
    // 2 ms of slack for timer rounding; a slower machine only spaces them more.
    assert.ok(walks[i]!.start - previous.start >= GROWTH_COST_FACTOR * (previous.end - previous.start) - 2, `walk ${i} started too soon`);
  }
});

test('a walk that changed nothing reports nothing; each change is reported once with when it happened', async () => {
  const totals = [{ files: 1, bytes: 1 }, { files: 1, bytes: 1 }, { files: 2, bytes: 5 }, { files: 2, bytes: 5 }, { files: 2, bytes: 4 }];
  let i = 0;
  const changes: GrowthRecord[] = [];
  const growth = new OutputGrowth({
    outputDir: '/unused',
    layout: 'beside',
    intervalMs: 5,
    onChange: (record) => changes.push(record),
    measure: () => Promise.resolve(totals[Math.min(i++, totals.length - 1)]!),
  });
  growth.start();
  await until(() => (i > totals.length + 2 ? true : undefined), 'the walks');
  await growth.stop();
  assert.deepEqual(changes.map((c) => [c.files, c.bytes]), [[2, 5], [2, 4]], 'the first walk is the baseline; a shrink is a change too');
  assert.deepEqual([growth.record?.files, growth.record?.bytes, growth.record?.changedAt], [2, 4, changes[1]!.changedAt]);
});

test('stopping cuts a walk in flight short and drops its partial totals (a long walk of a big cache must not delay the verdict)', async () => {
  const changes: GrowthRecord[] = [];
  let walks = 0;
  const growth = new OutputGrowth({
    outputDir: '/unused',
    layout: 'beside',
    intervalMs: 1,
    onChange: (record) => changes.push(record),
    // The baseline walk returns; the second one only ends when it is told to stop.
    measure: (_root, _layout, signal) =>
      ++walks === 1 ? Promise.resolve({ files: 1, bytes: 1 }) : new Promise((resolve) => signal.addEventListener('abort', () => resolve({ files: 99, bytes: 99 }))),
  });
  growth.start();
  await until(() => (walks >= 2 ? true : undefined), 'the second walk');
  await growth.stop();
  assert.deepEqual(changes, []);
  assert.deepEqual([growth.record?.files, growth.record?.bytes], [1, 1]);
  await withFolders(async ({ out }) => {
    await writeFile(join(out, 'a'), 'abc');
    assert.deepEqual(await measureOutput(out, 'beside', AbortSignal.abort()), { files: 0, bytes: 0 }, 'an aborted walk reads nothing more');
  });
});

test('the walk interval the executors set: about six walks per hang timeout, 30 s at most, 200 ms at least; the back-off delay', () => {
  assert.equal(growthIntervalFor(3_600_000), 30_000);
  assert.equal(growthIntervalFor(60_000), 10_000);
  assert.equal(growthIntervalFor(1_500), 250);
  assert.equal(growthIntervalFor(600), 200);
  assert.equal(nextGrowthScanDelay(30_000, 100), 29_900, 'a quick walk: the interval, counted from its start');
  assert.equal(nextGrowthScanDelay(30_000, 10_000), 190_000, 'a 10 s walk: the next starts 200 s after it started');
});
