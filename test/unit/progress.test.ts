import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressTracker } from '../../pipeline/progress.ts';

test('stage 1 progress: total steps from the dataset length, fraction and ETA from step lines', () => {
  const tracker = new ProgressTracker({ epochs: 2, batchSize: 2, gradientAccumulation: 1 });
  tracker.feed('Add dataset: navsim with length: 10', 0);
  tracker.feed('Epoch: 0, Step: 1, Loss: 2.5000, Time: 0.1', 1000);
  tracker.feed('Epoch: 0, Step: 3, Loss: 2.1000, Time: 0.1', 3000);
  const p = tracker.snapshot()!;
  assert.equal(p.totalSteps, 10);
  assert.equal(p.step, 3);
  assert.equal(p.loss, 2.1);
  assert.equal(p.fraction, 0.3);
  assert.equal(p.etaSeconds, 7); // 2 steps in 2 s, 7 steps left
});

test('stage 2/3 progress: steps per epoch from the number of training samples; GRPO lines carry the reward', () => {
  const tracker = new ProgressTracker({ epochs: 10, batchSize: 8 });
  tracker.feed('Num training samples: 85109', 0);
  tracker.feed('Epoch: 1, Step: 20000, Loss: 0.1234, Reward: 0.8100, Time: 0.26 s', 10);
  const p = tracker.snapshot()!;
  assert.equal(p.totalSteps, Math.ceil(85109 / 8) * 10);
  assert.equal(p.reward, 0.81);
  assert.equal(p.epoch, 1);
});

test('tqdm counters give caching progress; unrelated lines change nothing', () => {
  const tracker = new ProgressTracker();
  assert.equal(tracker.feed('Compiling JAX inference step...', 0), false);
  assert.equal(tracker.feed('Caching:  40%|####      | 4/10 [00:01<00:01]', 5), true);
  assert.equal(tracker.snapshot()!.fraction, 0.4);
  assert.equal(tracker.feed('some warning', 6), false);
});
