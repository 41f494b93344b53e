/**
 * Docker-over-SSH executor on the test bed (real sshd + podman):
 *  - exit latency: container FinishedAt → the watcher returning (the long-lived `docker wait`);
 *  - the cost of watching many stages at once: this process's CPU and memory while it watches
 *    BENCH_STAGES (default 100) running containers with the production poll interval.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerSshExecutor } from '../activities/execution/docker-ssh.ts';
import type { WatchContext } from '../activities/execution/executor.ts';
import { loadSshKey } from '../activities/ssh/credentials.ts';
import { SshPool } from '../activities/ssh/pool.ts';
import type { ComputeLease } from '../activities/types.ts';
import { parsePipelineInput } from '../pipeline/input.ts';
import { defaultHostPath, type LaunchSpec } from '../pipeline/launch.ts';
import { buildPlan } from '../pipeline/plan.ts';
import { progressHintsFor } from '../pipeline/stage-run.ts';
import { PROJECT_ROOT } from '../workers/project-root.ts';
import { localPipelineInput, seedDataset } from '../workers/local-input.ts';
import { startTestbed, type Testbed } from '../test/testbed/testbed.ts';

const stages = Number(process.env.BENCH_STAGES ?? 100);
const exitSamples = Number(process.env.BENCH_EXIT_SAMPLES ?? 10);
const watchSeconds = Number(process.env.BENCH_WATCH_SECONDS ?? 60);

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const dir = await mkdtemp(join(tmpdir(), 'rd-bench-ssh-'));
const bed: Testbed = await startTestbed({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-bench') });
const pool = new SshPool({
  key: (await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile }))!,
  connectDeadlineMs: 60_000,
  keepaliveIntervalMs: 15_000,
  maxConnections: 64,
  maxChannelsPerConnection: 8,
});
const executor = new DockerSshExecutor({ pool, sudo: false, hostPathOf: (s) => defaultHostPath(s), pollConnectDeadlineMs: 10_000 });

try {
  const dataset = await seedDataset(join(dir, 'dataset'));
  const config = parsePipelineInput({ ...localPipelineInput(dir, dataset, { stages: ['metricCache'] }), images: { unified: bed.images[0] } });
  const planned = buildPlan(config, 'bench').stages.find((s) => s.stage === 'metricCache')!;
  const lease = (worker: number): ComputeLease => {
    const w = bed.workers[worker]!;
    return { name: `bench-${worker}`, backend: 'static', workers: [{ kind: 'ssh', host: w.address, port: w.port, user: w.user, hostKeys: [w.hostKey] }] };
  };
  const spec = (name: string, durationMs: number): LaunchSpec => ({
    ...planned.launch!,
    containerName: name,
    env: { ...planned.launch!.env, RECOGDRIVE_SIM_DURATION_MS: String(durationMs) },
    output: { ...planned.launch!.output },
  });
  const context = (signal: AbortSignal): WatchContext => ({
    heartbeat: () => {},
    cancelled: signal,
    reportProgress: async () => {},
    logs: { append: async () => {}, save: async () => {} },
    resumeFrom: undefined,
  });
  const watchRequest = (worker: number, launch: LaunchSpec, pollIntervalMs: number) => ({
    lease: lease(worker),
    launch,
    attempt: 1,
    logsUri: `file://${dir}/logs`,
    hangTimeoutMs: 3_600_000,
    pollIntervalMs,
    progressIntervalMs: 60_000,
    progressHints: progressHintsFor(config, 'metricCache'),
    logPatterns: [],
  });

  // 1. Exit latency with a 30 s poll: only `docker wait` can make it fast.
  const latencies: number[] = [];
  for (let i = 0; i < exitSamples; i++) {
    const launch = spec(`bench-exit-${i}`, 1500);
    await executor.launch({ lease: lease(0), launch, attempt: 1, compute: planned.compute! });
    const outcome = await executor.watch(watchRequest(0, launch, 30_000), context(new AbortController().signal));
    latencies.push(Date.now() - outcome.exitedAt);
    await executor.stop({ lease: lease(0), launch, attempt: 1, logsUri: `file://${dir}/logs` }, { append: async () => {}, save: async () => {} });
  }
  console.log(`exit → watcher knows: median ${quantile(latencies, 0.5)} ms, p90 ${quantile(latencies, 0.9)} ms, max ${Math.max(...latencies)} ms (${exitSamples} containers, poll interval 30 s)`);

  // 2. Many stages watched at once.
  const launches = Array.from({ length: stages }, (_, i) => ({ worker: i % 2, launch: spec(`bench-watch-${i}`, 3_600_000) }));
  const launchStart = Date.now();
  await Promise.all(launches.map(({ worker, launch }) => executor.launch({ lease: lease(worker), launch, attempt: 1, compute: planned.compute! })));
  console.log(`launched ${stages} containers on 2 workers in ${((Date.now() - launchStart) / 1000).toFixed(1)} s`);
  for (const pollIntervalMs of [30_000, 5_000]) {
    const abort = new AbortController();
    const watching = launches.map(({ worker, launch }) =>
      executor.watch(watchRequest(worker, launch, pollIntervalMs), context(abort.signal)).catch(() => undefined),
    );
    await new Promise((r) => setTimeout(r, 10_000)); // let every watcher start
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    let peakRss = 0;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 500);
    await new Promise((r) => setTimeout(r, watchSeconds * 1000));
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpu0);
    const cpuPercent = ((cpu.user + cpu.system) / 1000 / (Date.now() - t0)) * 100;
    console.log(
      `watching ${stages} stages, poll ${pollIntervalMs / 1000} s: CPU ${cpuPercent.toFixed(1)} % of one core, peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
    );
    abort.abort();
    await Promise.all(watching);
  }
  await Promise.all(
    launches.map(({ worker, launch }) =>
      executor.stop({ lease: lease(worker), launch, attempt: 1, logsUri: `file://${dir}/logs` }, { append: async () => {}, save: async () => {} }),
    ),
  );
} finally {
  pool.close();
  await bed.stop();
  await rm(dir, { recursive: true, force: true });
}
