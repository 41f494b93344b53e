import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogScanner } from '../../activities/execution/log-scanner.ts';

test('a stage that printed progress and then only repeats warnings is stalled', () => {
  const scanner = new LogScanner({ epochs: 1, batchSize: 1 }, []);
  scanner.feed('Epoch: 0, Step: 1, Loss: 1.0, Time: 0.1\n', 1_000);
  scanner.feed('WARNING: retrying collective\n', 5_000);
  assert.equal(scanner.stalled(5_000, 5_000, 3_000), true, 'no progress since t=1s');
  scanner.feed('Epoch: 0, Step: 2, Loss: 0.9, Time: 0.1\n', 5_500);
  assert.equal(scanner.stalled(6_000, 5_500, 3_000), false);
});

test('before its first progress line, any output keeps a stage alive (XLA compiles print little)', () => {
  const scanner = new LogScanner({}, []);
  scanner.feed('Compiling JAX inference step...\n', 1_000);
  assert.equal(scanner.stalled(3_500, 1_000, 3_000), false);
  assert.equal(scanner.stalled(4_500, 1_000, 3_000), true);
});

test('lines split across chunks and \\r-separated tqdm updates are each seen once', () => {
  const scanner = new LogScanner({}, ['Caching Complete.']);
  scanner.feed('Caching:  50%|##  | 1/2\rCaching: 100%|####| 2/2\nCaching Comp', 0);
  scanner.feed('lete.\n', 1);
  assert.deepEqual(scanner.seenPatterns(), ['Caching Complete.']);
  assert.equal(scanner.progress()?.fraction, 1);
  assert.deepEqual(scanner.lastLines(), ['Caching:  50%|##  | 1/2', 'Caching: 100%|####| 2/2', 'Caching Complete.']);
});

test('patterns a previous watcher saw survive a re-attach mid-log', () => {
  const scanner = new LogScanner({}, ['Done storing metadata csv file.', 'Starting metric caching of 0 files'], ['Done storing metadata csv file.', 'unrelated']);
  assert.deepEqual(scanner.seenPatterns(), ['Done storing metadata csv file.']);
});
