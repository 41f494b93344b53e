/**
 * orbax checkpoints as torchax.save_checkpoint writes them: `<name>.pt/checkpoint_<step>/`.
 * orbax writes into `checkpoint_<step>.orbax-checkpoint-tmp-*` and renames on commit (or, on
 * GCS, adds commit_success.txt); a tmp folder or a null commit timestamp is an unfinished save.
 */
import type { OutputReader } from './reader.ts';
import type { CheckResult } from './result.ts';

const COMMITTED_STEP = /^checkpoint_(\d+)$/;

/** The step of the committed checkpoint under `dir`, or a reason why there is none. */
async function committedStep(reader: OutputReader, dir: string): Promise<{ step: number } | { problem: string }> {
  const entries = await reader.list(dir);
  if (entries.length === 0) return { problem: `${dir} is missing` };
  const committed = entries.filter((e) => e.dir && COMMITTED_STEP.test(e.name));
  if (committed.length === 0) {
    const unfinished = entries.find((e) => e.name.includes('orbax-checkpoint-tmp'));
    return { problem: `${dir} was never committed${unfinished ? ` (found ${unfinished.name})` : ''}` };
  }
  const last = committed.map((e) => Number(COMMITTED_STEP.exec(e.name)![1])).sort((a, b) => b - a)[0]!;
  const folder = `${dir}/checkpoint_${last}`;
  const metadata = await reader.readText(`${folder}/_CHECKPOINT_METADATA`);
  const marker = await reader.readText(`${folder}/commit_success.txt`);
  if (marker !== undefined) return { step: last };
  if (metadata === undefined) return { problem: `${folder} has no _CHECKPOINT_METADATA` };
  try {
    const parsed = JSON.parse(metadata) as { commit_timestamp_nsecs?: unknown };
    if (parsed.commit_timestamp_nsecs === null || parsed.commit_timestamp_nsecs === undefined) {
      return { problem: `${folder} has no commit timestamp (unfinished save)` };
    }
  } catch {
    return { problem: `${folder}/_CHECKPOINT_METADATA is not valid JSON` };
  }
  return { step: last };
}

export async function checkFinalCheckpoint(reader: OutputReader, dir: string): Promise<CheckResult> {
  const found = await committedStep(reader, dir);
  return 'step' in found ? { problems: [], summary: { finalStep: found.step } } : { problems: [found.problem], summary: {} };
}

export async function checkEpochCheckpoints(reader: OutputReader, epochs: number): Promise<CheckResult> {
  const problems: string[] = [];
  let lastStep: number | undefined;
  let committed = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const found = await committedStep(reader, `checkpoint-epoch-${epoch}.pt`);
    if ('step' in found) {
      committed++;
      lastStep = found.step;
    } else {
      problems.push(found.problem);
    }
  }
  const summary: Record<string, number> = { checkpoints: committed, expectedCheckpoints: epochs };
  if (lastStep !== undefined) summary.lastStep = lastStep;
  return { problems, summary };
}
