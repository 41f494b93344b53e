import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchContext } from '../../activities/execution/executor.ts';
import { LogScanner, withoutGrowthLines } from '../../activities/execution/log-scanner.ts';
import { WatchReporting } from '../../activities/execution/watch-reporting.ts';
import type { Progress } from '../../pipeline/progress.ts';
import { formatGrowthLine } from '../../pipeline/output-growth.ts';

const growth = (files: number, bytes: number) => `${formatGrowthLine({ files, bytes })}\n`;

test('a stage that printed progress and then only repeats warnings is stalled', () => {
  const scanner = new LogScanner({ epochs: 1, batchSize: 1 }, [], [], 0);
  scanner.feed('Epoch: 0, Step: 1, Loss: 1.0, Time: 0.1\n', 1_000);
  scanner.feed('WARNING: retrying collective\n', 5_000);
  assert.equal(scanner.stalled(5_000, 3_000), true, 'no progress since t=1s');
  scanner.feed('Epoch: 0, Step: 2, Loss: 0.9, Time: 0.1\n', 5_500);
  assert.equal(scanner.stalled(6_000, 3_000), false);
});

test('before its first progress line, any output keeps a stage alive (XLA compiles print little)', () => {
  const scanner = new LogScanner({}, [], [], 0);
  scanner.feed('Compiling JAX inference step...\n', 1_000);
  assert.equal(scanner.stalled(3_500, 3_000), false);
  assert.equal(scanner.stalled(4_500, 3_000), true);
});

test('a stage that neither prints nor writes is stalled hangTimeout after the watch started', () => {
  const scanner = new LogScanner({}, [], [], 10_000);
  assert.equal(scanner.stalled(13_000, 3_000), false);
  assert.equal(scanner.stalled(13_001, 3_000), true);
});

test('a stage that writes its output but prints nothing (the metric cache behind its Ray bar) is never stalled', () => {
  const scanner = new LogScanner({ expectedFiles: 1000 }, [], [], 0);
  scanner.feed('Ray objects:   0%|          | 0/8 [00:00<?, ?it/s]\n', 500);
  for (let t = 1_000, files = 1; t <= 600_000; t += 1_000, files++) {
    scanner.feed(growth(files, files * 100), t);
    assert.equal(scanner.stalled(t + 2_999, 3_000), false, `t=${t}`);
  }
  assert.equal(scanner.progress()!.fraction, 600 / 1000, 'and its fraction comes from the files written');
});

test('growth resets the hang clock after a progress line, and before the first one; the same totals again do not', () => {
  const scanner = new LogScanner({}, [], [], 0);
  scanner.feed(growth(1, 10), 2_000);
  assert.equal(scanner.stalled(4_500, 3_000), false, 'before any progress line: growth at t=2s');
  scanner.feed('Epoch: 0, Step: 0, Loss: 1.0, Time: 0.1\n', 5_000);
  scanner.feed(growth(1, 20), 7_000);
  assert.equal(scanner.stalled(9_500, 3_000), false, 'growth at t=7s');
  scanner.feed(growth(1, 20), 9_000);
  assert.equal(scanner.stalled(10_001, 3_000), true, 'a repeated line is no growth: nothing since t=7s');
});

test('growth lines are not stage output: they keep neither the "no output" clock nor the error tail nor the patterns', () => {
  const scanner = new LogScanner({}, ['output'], [], 0);
  scanner.feed('starting\n', 1_000);
  scanner.feed(growth(5, 50), 2_000);
  assert.equal(scanner.outputAt, 1_000);
  assert.equal(scanner.grewAt, 2_000);
  assert.deepEqual(scanner.lastLines(), ['starting']);
  assert.deepEqual(scanner.seenPatterns(), []);
  assert.deepEqual(scanner.output(), { files: 5, bytes: 50 });
  assert.deepEqual(scanner.progress()!.output, { files: 5, bytes: 50 }, 'the latest growth travels with the progress (heartbeat, status)');
  assert.equal(scanner.takeProgress()!.output!.files, 5);
  assert.equal(scanner.takeProgress(), undefined, 'taken once');
});

test("a growth line glued to another stream's unfinished line is still read, and the rest is output", () => {
  const scanner = new LogScanner({ expectedFiles: 4 }, [], [], 0);
  scanner.feed(`\rRay objects:   0%|          | 0/4 [00:00<?, ?it/s]${growth(1, 100)}`, 1_000);
  assert.deepEqual(scanner.output(), { files: 1, bytes: 100 });
  assert.deepEqual(scanner.lastLines(), ['Ray objects:   0%|          | 0/4 [00:00<?, ?it/s]']);
  assert.equal(scanner.progress()!.fraction, 0.25);
});

test('an unfinished tqdm update (redrawn with \\r, no newline yet) is output and progress at once, and counts once', () => {
  const scanner = new LogScanner({}, [], [], 0);
  scanner.feed('\rCaching:  10%|█         | 1/10 [00:01<00:09, 1.00it/s]', 1_000);
  assert.equal(scanner.outputAt, 1_000);
  assert.equal(scanner.progressedAt, 1_000);
  assert.equal(scanner.progress()!.step, 1);
  // The wrapper ends the bar's line before its own line; the finished update is not a second move.
  scanner.feed(`\n${growth(2, 20)}`, 2_000);
  assert.equal(scanner.progressedAt, 1_000);
  assert.equal(scanner.grewAt, 2_000);
  assert.deepEqual(scanner.lastLines(), ['Caching:  10%|█         | 1/10 [00:01<00:09, 1.00it/s]']);
});

test('an unfinished wrapper growth line is not output', () => {
  const scanner = new LogScanner({}, [], [], 0);
  scanner.feed('recogdrive-stage: output 12 fi', 1_000);
  assert.equal(scanner.outputAt, 0);
  scanner.feed('les, 400 bytes\n', 1_500);
  assert.equal(scanner.outputAt, 0);
  assert.deepEqual(scanner.output(), { files: 12, bytes: 400 });
});

test('lines split across chunks and \\r-separated tqdm updates are each seen once', () => {
  const scanner = new LogScanner({}, ['Caching Complete.']);
  scanner.feed('Caching:  50%|##  | 1/2\rCaching: 100%|####| 2/2\nCaching Comp', 0);
  scanner.feed('lete.\n', 1);
  assert.deepEqual(scanner.seenPatterns(), ['Caching Complete.']);
  assert.equal(scanner.progress()?.fraction, 1);
  assert.deepEqual(scanner.lastLines(), ['Caching:  50%|##  | 1/2', 'Caching: 100%|####| 2/2', 'Caching Complete.']);
});

test("a failed worker's log tail (docker logs --tail) loses its wrapper's growth lines, not the text they were glued to", () => {
  assert.deepEqual(
    withoutGrowthLines(['Traceback (most recent call last):', growth(3, 30).trim(), `\rRay objects:   0%|  | 0/8${growth(4, 40).trim()}`, 'ValueError: boom']),
    ['Traceback (most recent call last):', '\rRay objects:   0%|  | 0/8', 'ValueError: boom'],
  );
});

test('patterns a previous watcher saw survive a re-attach mid-log', () => {
  const scanner = new LogScanner({}, ['Done storing metadata csv file.', 'Starting metric caching of 0 files'], ['Done storing metadata csv file.', 'unrelated']);
  assert.deepEqual(scanner.seenPatterns(), ['Done storing metadata csv file.']);
});

/** A watch context that records heartbeats and reports, resuming from `resumeFrom`. */
function recordingContext(resumeFrom: unknown) {
  const beats: unknown[] = [];
  const reports: Progress[] = [];
  const context: WatchContext = {
    heartbeat: (details) => beats.push(JSON.parse(JSON.stringify(details))), // as Temporal carries it: JSON
    cancelled: new AbortController().signal,
    reportProgress: async (progress) => {
      reports.push(progress);
    },
    logs: { append: async () => {}, save: async () => {} },
    resumeFrom,
  };
  return { context, beats, reports };
}

const STAGE1_HINTS = { epochs: 2, batchSize: 2, gradientAccumulation: 1 };
const TOTAL_LINE = '11/28/2025 12:00:00 - INFO - __main__ - Add dataset: navsim with length: 10\n';
const step = (s: number) => `11/28/2025 12:00:00 - INFO - __main__ - Epoch: 0, Step: ${s}, Loss: 2.0, Time: 0.1s\n`;

test('a retried watcher resumes from the heartbeat: total steps, bar and ETA survive although it never reads the total line again', async () => {
  const first = recordingContext(undefined);
  const scanner = new LogScanner(STAGE1_HINTS, ['Training complete'], [], 0);
  const reporting = new WatchReporting(scanner, first.context, 0);
  scanner.feed(TOTAL_LINE + step(0), 1_000);
  scanner.feed(step(2), 3_000);
  await reporting.tick(3_000, { offset: 123 });
  const heartbeat = first.beats.at(-1) as { offset: number; progress: Progress };
  assert.equal(heartbeat.offset, 123, "the executor's own checkpoint is kept");
  assert.equal(heartbeat.progress.totalSteps, 10);

  // The worker dies; the retried watcher reads on from offset 123: only later step lines.
  const second = recordingContext(heartbeat);
  const resumed = new LogScanner(STAGE1_HINTS, ['Training complete'], [], 10_000);
  const again = new WatchReporting(resumed, second.context, 0);
  resumed.feed(step(4), 5_000);
  await again.tick(5_000, { offset: 456 });
  const progress = second.reports.at(-1)!;
  assert.equal(progress.totalSteps, 10, 'total steps known');
  assert.equal(progress.step, 5);
  assert.equal(progress.fraction, 0.5, 'the bar');
  assert.equal(progress.etaSeconds, 5, 'ETA from the rate since the first watcher\'s baseline: 4 steps in 4 s, 5 left');
  // And once more: the second watcher's heartbeat carries it on.
  assert.equal((second.beats.at(-1) as { progress: Progress }).progress.totalSteps, 10);
});

test('a retried watcher reports the restored progress at once, before any new progress line', async () => {
  const scanner = new LogScanner(STAGE1_HINTS, [], [], 0);
  scanner.feed(TOTAL_LINE + step(0) + step(2), 3_000);
  const checkpoint = { since: 'x', ...scanner.checkpoint() };
  const retried = recordingContext(JSON.parse(JSON.stringify(checkpoint)));
  const resumed = new LogScanner(STAGE1_HINTS, [], [], 10_000);
  await new WatchReporting(resumed, retried.context, 0).tick(10_000, { since: 'y' });
  assert.equal(retried.reports.at(-1)?.totalSteps, 10);
});

test('heartbeat details a watcher cannot read (an older worker\'s, or garbage) restore nothing and break nothing', () => {
  for (const details of [undefined, null, 'text', { offset: 3 }, { seen: ['p'], progress: { step: 3 } }, { tracker: { datasetSamples: -1, counters: [] } }]) {
    const scanner = new LogScanner(STAGE1_HINTS, ['p'], [], 0);
    assert.equal(scanner.resume(details), false, JSON.stringify(details));
    assert.equal(scanner.progress(), undefined);
  }
  const older = new LogScanner(STAGE1_HINTS, ['p'], [], 0);
  older.resume({ offset: 3, seen: ['p', 'not a pattern of this stage'] });
  assert.deepEqual(older.seenPatterns(), ['p'], 'seen patterns of an older heartbeat still count');
});
