/**
 * `recogdrive logs <run> <stage>`: a stage's log from the artifact store, where it outlives the
 * compute; `--follow` keeps printing while the stage runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { attemptLogName, bringUpLogName } from '../pipeline/naming.ts';
import type { StageName } from '../pipeline/stages.ts';
import type { StageStatus } from '../pipeline/status.ts';
import { artifactStoreFor } from './artifact-stores.ts';
import { LogNotFound, runStatus, RunWithoutStatus } from './runs.ts';

export { LogNotFound } from './runs.ts';

export interface LogsOptions {
  attempt?: number;
  worker: number;
  follow: boolean;
  /** The bring-up log of the attempt's machine instead of the stage's output. */
  bringUp?: boolean;
  write: (text: string) => void;
}

/** The stage's status in the run; LogNotFound when the run does not run it or ended before it had stages (RunNotFound from runStatus). */
export async function stageWithLogs(client: Client, runId: string, stage: StageName): Promise<StageStatus> {
  let status;
  try {
    status = await runStatus(client, runId);
  } catch (error) {
    if (error instanceof RunWithoutStatus) throw new LogNotFound(`${error.message}; it has no logs`);
    throw error;
  }
  const found = status.stages.find((s) => s.stage === stage);
  if (found?.logsUri === undefined) throw new LogNotFound(`run ${runId} does not run stage ${stage} (${found?.decision ?? 'not planned'}): it has no log`);
  return found;
}

export async function printStageLog(client: Client, runId: string, stage: StageName, options: LogsOptions): Promise<void> {
  const status = (): Promise<StageStatus> => stageWithLogs(client, runId, stage);
  const first = await status();
  const attempt = options.attempt ?? Math.max(1, first.attempt);
  const uri = `${first.logsUri}/${(options.bringUp === true ? bringUpLogName : attemptLogName)(attempt, options.worker)}`;
  const store = artifactStoreFor(uri);
  let printed = 0;
  const printNew = async (): Promise<boolean> => {
    const text = (await store.readText(uri)) ?? '';
    if (text.length <= printed) return false;
    options.write(text.slice(printed));
    printed = text.length;
    return true;
  };
  await printNew();
  if (!options.follow) {
    if (printed === 0) throw new LogNotFound(`no log yet at ${uri}`);
    return;
  }
  for (;;) {
    const current = await status();
    const done = current.state !== 'running' || current.attempt !== attempt;
    // One more read after the stage ended: the final save may add the last lines.
    const grew = await printNew();
    if (done && !grew) return;
    await sleep(1000);
  }
}
