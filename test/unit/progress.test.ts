/** Progress from the real upstream line shapes, with their logging prefixes (pipeline/progress.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeProgress, ProgressTracker } from '../../pipeline/progress.ts';

/** The prefixes real lines carry: Stage 1's basicConfig, hydra's job logging (navsim scripts), nuplan's build_logger. */
const STAGE1 = '11/28/2025 12:00:00 - INFO - __main__ - ';
const HYDRA = '[2025-11-28 12:00:00,123][__main__][INFO] - ';
const NUPLAN = '2025-11-28 12:00:00,123 INFO {/recogdrive/navsim/planning/script/run_pdm_score_recogdrive.py:111}  ';

test('stage 1: total steps from the dataset lengths; "Epoch: E, Step: S" is 0-based (S + 1 steps done), ETA from the first step line', () => {
  const tracker = new ProgressTracker({ epochs: 2, batchSize: 2, gradientAccumulation: 1 });
  tracker.feed(`${STAGE1}Add dataset: navsim with length: 10`, 0);
  tracker.feed(`${STAGE1}Epoch: 0, Step: 0, Loss: 2.5000, Time: 0.1000s`, 1000);
  assert.equal(tracker.snapshot()!.step, 1, 'step 0 printed: one optimizer step is done');
  tracker.feed(`${STAGE1}Epoch: 0, Step: 2, Loss: 2.1000, Time: 0.1000s`, 3000);
  const p = tracker.snapshot()!;
  assert.equal(p.totalSteps, 10); // 10 samples / batch 2 × 2 epochs
  assert.equal(p.step, 3);
  assert.equal(p.loss, 2.1);
  assert.equal(p.fraction, 0.3);
  assert.equal(p.etaSeconds, 7); // 2 steps in 2 s from the first step line, 7 steps left
});

test('stage 2/3: the "Loading Valid Caches" bars (logs, train then val) are no training steps; the ETA starts at the first step line', () => {
  const tracker = new ProgressTracker({ epochs: 2, batchSize: 16 });
  // tqdm redraws with \r; the scanner hands each update over as a line of its own.
  assert.equal(tracker.feed('Loading Valid Caches:  50%|█████     | 596/1192 [00:30<00:30, 19.8it/s]', 30_000), true, 'a moving loading bar shows the stage alive');
  tracker.feed('Loading Valid Caches: 100%|██████████| 1192/1192 [01:00<00:00, 19.8it/s]', 60_000);
  assert.equal(tracker.snapshot()?.fraction, undefined, 'a loading bar at 1192/1192 is not 100% of the training');
  assert.equal(tracker.snapshot()?.step, undefined);
  tracker.feed(`${HYDRA}Num training samples: 85109`, 61_000);
  tracker.feed('Loading Valid Caches: 100%|██████████| 148/148 [00:08<00:00, 18.1it/s]', 69_000);
  tracker.feed(`${HYDRA}Num validation samples: 12146`, 69_500);
  const total = Math.ceil(85109 / 16) * 2;
  assert.equal(tracker.snapshot()!.totalSteps, total);
  assert.equal(tracker.snapshot()!.fraction, undefined);

  // XLA compiles, then a line every 10 steps (global_step % 10 == 0).
  tracker.feed(`${HYDRA}Epoch: 0, Step: 0, Loss: 0.9000, Time: 95.1234s`, 200_000);
  assert.equal(tracker.snapshot()!.etaSeconds, undefined, 'no rate from a single step line (and never from the loading bars)');
  tracker.feed(`${HYDRA}Epoch: 0, Step: 10, Loss: 0.8000, Time: 0.1234s`, 201_000);
  const p = tracker.snapshot()!;
  assert.equal(p.step, 11);
  assert.equal(p.epoch, 0);
  assert.equal(p.fraction, 11 / total);
  assert.equal(p.etaSeconds, Math.round(((total - 11) * 1) / 10), '10 steps in 1 s since the first step line');
});

test('GRPO lines carry the reward; a loss of nan does not leave the previous loss standing', () => {
  const tracker = new ProgressTracker({ epochs: 10, batchSize: 8 });
  tracker.feed(`${HYDRA}Num training samples: 85109`, 0);
  tracker.feed(`${HYDRA}Epoch: 1, Step: 20000, Loss: 0.1234, Reward: 0.8100, Time: 0.26 s`, 10);
  const p = tracker.snapshot()!;
  assert.equal(p.totalSteps, Math.ceil(85109 / 8) * 10);
  assert.equal(p.step, 20001);
  assert.equal(p.reward, 0.81);
  assert.equal(p.epoch, 1);
  tracker.feed(`${HYDRA}Epoch: 1, Step: 20010, Loss: nan, Reward: 0.8000, Time: 0.26 s`, 20);
  assert.equal(tracker.snapshot()!.loss, undefined);
  assert.equal(tracker.snapshot()!.step, 20011);
});

test('evaluation: "Rank 0 processing scenario i / N" behind nuplan\'s prefix is step i of N; the "Loading logs" bar and other ranks are not', () => {
  const tracker = new ProgressTracker();
  assert.equal(tracker.feed('Loading logs: 100%|██████████| 147/147 [00:12<00:00, 11.9it/s]', 0), true);
  assert.equal(tracker.snapshot()?.fraction, undefined);
  tracker.feed(`${NUPLAN}Starting pdm scoring of 12146 scenarios...`, 1);
  assert.equal(tracker.feed(`${NUPLAN}Rank 0 processing scenario 5 / 1519 in thread_id=5c1e, node_id=0`, 1000), true);
  assert.equal(tracker.feed(`${NUPLAN}Rank 3 processing scenario 900 / 1518 in thread_id=77aa, node_id=0`, 1500), true, 'alive, but not the whole');
  const p = tracker.snapshot()!;
  assert.equal(p.step, 5);
  assert.equal(p.totalSteps, 1519);
  assert.equal(p.fraction, 5 / 1519);
  assert.equal(tracker.feed(`${NUPLAN}Rank 0 processing scenario 5 / 1519 in thread_id=5c1e, node_id=0`, 2000), false, 'the same counter again is no move');
});

test("navsim's per-thread \"Processing scenario i / N\" (one thread's chunk) shows the stage alive but sets no step", () => {
  const tracker = new ProgressTracker();
  assert.equal(tracker.feed(`${NUPLAN}Processing scenario 3 / 800 in thread_id=aa, node_id=0`, 0), true);
  assert.equal(tracker.feed(`${NUPLAN}Processing scenario 700 / 801 in thread_id=bb, node_id=0`, 1), true);
  assert.equal(tracker.snapshot(), undefined);
});

test('feature cache: batches from "Starting Inference on N samples" and the batch size; hydra-prefixed "Batch i:" lines and the Caching bar both count', () => {
  const tracker = new ProgressTracker({ batchSize: 4 });
  tracker.feed(`${HYDRA}Starting Inference on 100 samples...`, 0);
  assert.equal(tracker.snapshot()!.totalSteps, 25);
  assert.equal(tracker.feed('Caching:   0%|          | 0/25 [00:00<?, ?it/s]', 10), true);
  assert.equal(tracker.snapshot()!.fraction, 0);
  tracker.feed(`${HYDRA}Batch 0: 95.12s (4 samples). Avg: 23.7800 s/sample`, 100_000);
  assert.equal(tracker.snapshot()!.step, 1, 'batch 0 logged: one batch done');
  assert.equal(tracker.snapshot()!.etaSeconds, undefined, 'the rate starts after batch 0 (which includes compiling), not at the bar\'s 0/25');
  tracker.feed('Caching:  44%|████▍     | 11/25 [01:50<00:10,  1.00it/s]', 110_000);
  tracker.feed(`${HYDRA}Batch 10: 1.00s (4 samples). Avg: 2.2500 s/sample`, 110_000);
  const p = tracker.snapshot()!;
  assert.equal(p.step, 11);
  assert.equal(p.fraction, 11 / 25);
  assert.equal(p.etaSeconds, 14); // 10 batches in 10 s, 14 left
});

test('feature cache: an "Adjusted batch size" line changes the number of batches', () => {
  const tracker = new ProgressTracker({ batchSize: 6 });
  tracker.feed(`${HYDRA}Adjusted batch size: 8`, 0);
  tracker.feed(`${HYDRA}Starting Inference on 100 samples...`, 1);
  assert.equal(tracker.snapshot()!.totalSteps, 13);
});

test('metric cache: with expected files, growth gives the fraction; the Ray chunk bar (0/8 until the end) never moves it backwards', () => {
  const tracker = new ProgressTracker({ expectedFiles: 100 });
  assert.equal(tracker.feed('Ray objects:   0%|          | 0/8 [00:00<?, ?it/s]', 0), true);
  assert.equal(tracker.snapshot()!.fraction, 0);
  tracker.output({ files: 40, bytes: 4000 }, 40_000);
  assert.equal(tracker.snapshot()!.fraction, 0.4);
  assert.deepEqual(tracker.snapshot()!.output, { files: 40, bytes: 4000 });
  tracker.output({ files: 60, bytes: 6000 }, 60_000);
  assert.equal(tracker.snapshot()!.fraction, 0.6);
  assert.equal(tracker.snapshot()!.etaSeconds, 40, '20% in 20 s, 40% left');
  tracker.feed('Ray objects:  12%|█▎        | 1/8 [01:01<07:07, 61.00s/it]', 61_000);
  assert.equal(tracker.snapshot()!.fraction, 0.6, 'one chunk of eight is not a step back from 60%');
  tracker.output({ files: 100, bytes: 10_000 }, 80_000);
  tracker.feed('Ray objects: 100%|██████████| 8/8 [01:21<00:00, 10.1s/it]', 81_000);
  assert.equal(tracker.snapshot()!.fraction, 1);
});

test('growth without expected files reports the output but no fraction; a step counter stays the source of the fraction', () => {
  const tracker = new ProgressTracker({ epochs: 1, batchSize: 1 });
  tracker.output({ files: 3, bytes: 300 }, 0);
  assert.deepEqual(tracker.snapshot(), { line: 'recogdrive-stage: output 3 files, 300 bytes', output: { files: 3, bytes: 300 }, updatedAt: 0 });
  tracker.feed(`${HYDRA}Num training samples: 10`, 1);
  tracker.feed(`${HYDRA}Epoch: 0, Step: 4, Loss: 1.0, Time: 0.1s`, 2);
  tracker.output({ files: 4, bytes: 900 }, 3);
  const p = tracker.snapshot()!;
  assert.equal(p.fraction, 0.5);
  assert.deepEqual(p.output, { files: 4, bytes: 900 });
  assert.match(p.line, /Epoch: 0, Step: 4/);
});

test('a bar of unknown description shows the stage alive but sets no fraction; a redraw of the same counter is no move', () => {
  const tracker = new ProgressTracker();
  assert.equal(tracker.feed('Compiling JAX inference step...', 0), false);
  assert.equal(tracker.feed('Extracting: 100%|██████████| 5/5 [00:01<00:00, 4.9it/s]', 1), true);
  assert.equal(tracker.snapshot(), undefined, 'a wrong 100% is worse than none');
  assert.equal(tracker.feed('Caching:  40%|####      | 4/10 [00:01<00:01]', 5), true);
  assert.equal(tracker.feed('Caching:  40%|####      | 4/10 [00:01<00:01]', 6), false, 'the same update again');
  assert.equal(tracker.snapshot()!.fraction, 0.4);
  assert.equal(tracker.feed('some warning', 7), false);
});

test("PyTorch Lightning's epoch bar (the GPU scripts) gives the step across epochs and the total from the epochs hint", () => {
  const tracker = new ProgressTracker({ epochs: 10, batchSize: 8 });
  tracker.feed('Epoch 0:   0%|          | 0/20 [00:00<?, ?it/s]', 0);
  tracker.feed('Epoch 0:  50%|█████     | 10/20 [00:02<00:02,  4.40it/s, v_num=0]', 2_000);
  tracker.feed('Epoch 2:  25%|██▌       | 5/20 [00:01<00:03,  4.40it/s, v_num=0, train/loss_step=0.412]', 12_000);
  const p = tracker.snapshot()!;
  assert.equal(p.epoch, 2);
  assert.equal(p.step, 45);
  assert.equal(p.totalSteps, 200);
  assert.equal(p.fraction, 45 / 200);
  assert.equal(p.loss, 0.412, "the bar's train/loss_step");
  // A validation bar keeps the stage alive but is no training step.
  assert.equal(tracker.feed('Validation DataLoader 0: 100%|██████████| 4/4 [00:00<00:00, 12.0it/s]', 13_000), true);
  assert.equal(tracker.snapshot()!.step, 45);
});

test("the run keeps a stage's known total steps when an update of the same attempt lacks them, with the fraction and ETA they imply", () => {
  const known = { step: 4, totalSteps: 10, fraction: 0.4, etaSeconds: 6, line: 'Epoch: 0, Step: 3', updatedAt: 4_000 };
  const update = { step: 6, line: 'Epoch: 0, Step: 5', updatedAt: 6_000 };
  assert.deepEqual(mergeProgress(known, update), { step: 6, totalSteps: 10, fraction: 0.6, etaSeconds: 4, line: 'Epoch: 0, Step: 5', updatedAt: 6_000 });
  // No step moved (an output-growth update): the known ETA stands rather than none.
  assert.equal(mergeProgress(known, { step: 4, line: '', updatedAt: 5_000 }).etaSeconds, 6);
  // An update with its own total (the tracker that saw the total line) replaces everything; so does the first one.
  const own = { step: 2, totalSteps: 20, fraction: 0.1, line: '', updatedAt: 7_000 };
  assert.deepEqual(mergeProgress(known, own), own);
  assert.deepEqual(mergeProgress(undefined, update), update);
});

test('a tracker restored from another one\'s state (a retried watcher) keeps totals, batch size, ETA baseline and the counters already seen', () => {
  const first = new ProgressTracker({ batchSize: 4 });
  first.feed(`${HYDRA}Adjusted batch size: 8`, 0);
  first.feed(`${HYDRA}Starting Inference on 80 samples...`, 0);
  first.feed(`${HYDRA}Batch 0: 1.00s (8 samples). ETA: 9.00s`, 1_000);
  const state = JSON.parse(JSON.stringify(first.state())) as ReturnType<ProgressTracker['state']>;

  const resumed = new ProgressTracker({ batchSize: 4 });
  resumed.restore(state);
  assert.equal(resumed.snapshot()!.totalSteps, 10, '80 samples in batches of 8');
  assert.equal(resumed.feed(`${HYDRA}Batch 0: 1.00s (8 samples). ETA: 9.00s`, 1_500), false, 'a line the first tracker saw is no move');
  resumed.feed(`${HYDRA}Batch 4: 1.00s (8 samples). ETA: 5.00s`, 5_000);
  const p = resumed.snapshot()!;
  assert.equal(p.fraction, 0.5);
  assert.equal(p.etaSeconds, 5, '4 batches in 4 s since the first tracker\'s baseline, 5 left');
});
