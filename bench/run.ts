/**
 * `npm run bench`: orchestration overhead on the embedded default with a real Temporal server,
 * then (when the test bed's sshd and podman are installed) the docker-over-SSH executor's exit
 * latency and its cost of watching many stages (bench/ssh-watch.ts), and the Temporal worker
 * process's CPU and memory while it watches that many runs (bench/ssh-worker-load.ts). Figures, not pass/fail:
 * the machines are shared and noisy, so compare medians across runs.
 *   BENCH_RUNS (default 3) pipelines per stage length; BENCH_STAGE_MS (default "2000,10000");
 *   BENCH_STAGES (default 100) watched stages; BENCH_SKIP_SSH=1 skips the SSH part.
 * Then cloud TPU recovery: preemption → replacement running, and orphans after a chaos run
 * (bench/preemption.ts; BENCH_TPU_CREATE_MS, BENCH_PREEMPTIONS, BENCH_CHAOS_RUNS, BENCH_SKIP_CLOUD=1).
 * Then the object-store cost of the completion protocol, verification, reuse and planning
 * against the Cloud Storage emulator (bench/artifact-store.ts; BENCH_CACHE_FILES, BENCH_SKIP_ARTIFACTS=1).
 * Then the bring-up of a bare VM by step and the bytes and requests per GB moved in and out of
 * Cloud Storage through gcsfuse (bench/bring-up.ts; BENCH_BRINGUP_MODEL_MB, BENCH_SKIP_BRINGUP=1).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../workers/project-root.ts';
import { startTestEnv } from '../test/helpers/local-env.ts';
import { measureOverhead, type OverheadResult } from './orchestration-overhead.ts';

const runs = Number(process.env.BENCH_RUNS ?? 3);
const stageLengths = (process.env.BENCH_STAGE_MS ?? '2000,10000').split(',').map(Number);

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function report(stageMs: number, results: OverheadResult[]): string {
  const handoffs = results.flatMap((r) => r.handoffsMs.map((h) => h.ms));
  const overheads = results.map((r) => r.overhead * 100);
  return [
    `stage length ${stageMs} ms, ${results.length} runs of the 6-stage DAG:`,
    `  makespan        median ${quantile(results.map((r) => r.makespanMs), 0.5)} ms`,
    `  critical path   median ${quantile(results.map((r) => r.criticalPathMs), 0.5)} ms (sum of stage process lifetimes on the longest path)`,
    `  overhead        median ${quantile(overheads, 0.5).toFixed(1)} %, max ${Math.max(...overheads).toFixed(1)} %`,
    `  exit → next start (${handoffs.length} hand-offs)  median ${quantile(handoffs, 0.5)} ms, p90 ${quantile(handoffs, 0.9)} ms, max ${Math.max(...handoffs)} ms`,
  ].join('\n');
}

const env = await startTestEnv();
const all: Record<string, OverheadResult[]> = {};
try {
  await measureOverhead(env, 1, 200); // warm-up: bundle, first workflow tasks, node caches
  for (const stageMs of stageLengths) {
    all[stageMs] = await measureOverhead(env, runs, stageMs);
    console.log(report(stageMs, all[stageMs]));
  }
} finally {
  await env.close();
}
const dir = join(PROJECT_ROOT, 'bench', 'results');
await mkdir(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify({ runs, stageLengths, results: all }, null, 2));
console.log(`details: ${file}`);

/** A bench in a process of its own, so its CPU and memory figures include nothing of this one. */
async function runBench(file: string): Promise<void> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bench', file)], { stdio: 'inherit' });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) process.exitCode = code ?? 1;
}

if (process.env.BENCH_SKIP_SSH === '1') {
  console.log('docker-over-SSH bench skipped (BENCH_SKIP_SSH=1)');
} else if (!existsSync('/usr/sbin/sshd') || !existsSync('/usr/bin/podman')) {
  console.log('docker-over-SSH bench skipped: run `bash test/testbed/install.sh` first (sshd, podman)');
} else {
  for (const bench of ['ssh-watch.ts', 'ssh-worker-load.ts']) await runBench(bench);
  if (process.env.BENCH_SKIP_CLOUD === '1') console.log('cloud TPU recovery bench skipped (BENCH_SKIP_CLOUD=1)');
  else await runBench('preemption.ts');
  if (process.env.BENCH_SKIP_BRINGUP === '1') console.log('bring-up bench skipped (BENCH_SKIP_BRINGUP=1)');
  else await runBench('bring-up.ts');
}

if (process.env.BENCH_SKIP_ARTIFACTS === '1') console.log('artifact-store bench skipped (BENCH_SKIP_ARTIFACTS=1)');
else await runBench('artifact-store.ts');
