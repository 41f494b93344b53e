/**
 * PyTorch Lightning checkpoints as the upstream GPU scripts leave them: pl.Trainer with
 * default_root_dir = output_dir and its default TensorBoard logger, so ModelCheckpoint writes
 * `lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt` (a new version folder per run in
 * the same output: a retry writes the next one). It keeps the 5 best by val/loss_epoch; with no
 * validation metric it saves nothing at all, which is what this check catches.
 */
import type { OutputReader } from './reader.ts';
import type { CheckResult } from './result.ts';

const VERSION = /^version_(\d+)$/;
const CHECKPOINT = /^epoch=(\d+)-step=(\d+)\.ckpt$/;

export interface LightningCheckpoint {
  path: string;
  epoch: number;
  step: number;
}

/** The checkpoints of the newest version folder, newest epoch first; the folder when none. */
export async function newestLightningCheckpoints(reader: OutputReader): Promise<{ version?: number; checkpoints: LightningCheckpoint[] }> {
  const versions = (await reader.list('lightning_logs'))
    .filter((e) => e.dir && VERSION.test(e.name))
    .map((e) => Number(VERSION.exec(e.name)![1]))
    .sort((a, b) => b - a);
  const version = versions[0];
  if (version === undefined) return { checkpoints: [] };
  const dir = `lightning_logs/version_${version}/checkpoints`;
  const checkpoints = (await reader.list(dir))
    .filter((e) => !e.dir && CHECKPOINT.test(e.name))
    .map((e) => {
      const [, epoch, step] = CHECKPOINT.exec(e.name)!;
      return { path: `${dir}/${e.name}`, epoch: Number(epoch), step: Number(step) };
    })
    .sort((a, b) => b.epoch - a.epoch || b.step - a.step);
  return { version, checkpoints };
}

export async function checkLightningCheckpoints(reader: OutputReader): Promise<CheckResult> {
  const { version, checkpoints } = await newestLightningCheckpoints(reader);
  if (version === undefined) return { problems: ['lightning_logs/version_*/ is missing: the trainer never started'], summary: {} };
  const empty: string[] = [];
  for (const c of checkpoints) if (((await reader.stat(c.path))?.size ?? 0) === 0) empty.push(c.path);
  const problems = [
    ...(checkpoints.length === 0
      ? [`lightning_logs/version_${version}/checkpoints holds no epoch=*-step=*.ckpt: ModelCheckpoint saved nothing (it monitors val/loss_epoch, which an empty validation set never logs)`]
      : []),
    ...empty.map((p) => `${p} is empty`),
  ];
  const newest = checkpoints[0];
  return {
    problems,
    summary: { version, checkpoints: checkpoints.length, ...(newest === undefined ? {} : { newestCheckpoint: newest.path, lastEpoch: newest.epoch }) },
  };
}
