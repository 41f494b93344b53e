/**
 * Orchestration overhead on the embedded default: pipelines whose simulated stages run a fixed
 * time, measured from the processes' own start/exit times and the run's start/close times.
 *   overhead = (makespan − critical path of stage work) / critical path
 *   hand-off latency = next stage's process start − the exit of the last stage it waited for
 */
import { STAGES, STAGE_DEPENDENCIES, type StageName } from '../pipeline/stages.ts';
import type { RunSummary } from '../pipeline/status.ts';
import type { TestEnv } from '../test/helpers/local-env.ts';

export interface OverheadResult {
  runId: string;
  makespanMs: number;
  criticalPathMs: number;
  overhead: number;
  handoffsMs: Array<{ from: StageName; to: StageName; ms: number }>;
}

export function analyse(summary: RunSummary, makespanMs: number): Omit<OverheadResult, 'runId'> {
  const byStage = new Map(summary.stages.map((s) => [s.stage, s]));
  const finish = new Map<StageName, number>();
  for (const stage of STAGES) {
    const work = byStage.get(stage)!.workMs!;
    finish.set(stage, Math.max(0, ...STAGE_DEPENDENCIES[stage].map((d) => finish.get(d)!)) + work);
  }
  const criticalPathMs = Math.max(...finish.values());
  const handoffsMs = STAGES.filter((s) => STAGE_DEPENDENCIES[s].length > 0).map((stage) => {
    const last = STAGE_DEPENDENCIES[stage].reduce((a, b) => (byStage.get(a)!.processExitedAt! >= byStage.get(b)!.processExitedAt! ? a : b));
    return { from: last, to: stage, ms: byStage.get(stage)!.processStartedAt! - byStage.get(last)!.processExitedAt! };
  });
  return { makespanMs, criticalPathMs, overhead: (makespanMs - criticalPathMs) / criticalPathMs, handoffsMs };
}

export async function measureOverhead(env: TestEnv, runs: number, stageMs: number): Promise<OverheadResult[]> {
  const results: OverheadResult[] = [];
  for (let i = 0; i < runs; i++) {
    const runId = `bench-overhead-${stageMs}-${i}-${Date.now()}`;
    const handle = await env.start(runId, env.input({ durationMs: stageMs }));
    const summary = (await handle.result()) as RunSummary;
    const { startTime, closeTime } = await handle.describe();
    results.push({ runId, ...analyse(summary, closeTime!.getTime() - startTime.getTime()) });
  }
  return results;
}
