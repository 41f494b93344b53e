/**
 * The Temporal worker process's CPU and memory while it watches BENCH_STAGES (default 100)
 * running stages over SSH on the test bed, with the production settings (poll 30 s, heartbeat
 * timeout 2 min, progress every 5 min). The worker is a process of its own (`recogdrive worker`),
 * measured from /proc; the Temporal server, the test bed and this driver are not counted.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DevServer } from '../infra/local/dev-server.ts';
import { ensureTemporalCli } from '../infra/local/temporal-cli.ts';
import { runStatusQuery } from '../workflows/messages.ts';
import { PROJECT_ROOT } from '../workers/project-root.ts';
import { localPipelineInput, seedDataset } from '../workers/local-input.ts';
import { startTestbed } from '../test/testbed/testbed.ts';

const stages = Number(process.env.BENCH_STAGES ?? 100);
const seconds = Number(process.env.BENCH_WATCH_SECONDS ?? 60);
const TICKS_PER_SECOND = 100; // USER_HZ on Linux

async function cpuTicks(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function rssMiB(pid: number): Promise<number> {
  const line = (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

const dir = await mkdtemp(join(tmpdir(), 'rd-bench-worker-'));
const server = await DevServer.start({ cli: await ensureTemporalCli(), uiPort: false });
const bed = await startTestbed({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-bench') });
const worker = spawn(process.execPath, [join(PROJECT_ROOT, 'workers', 'cli.ts'), 'worker'], {
  env: {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    RECOGDRIVE_DATA_DIR: dir,
    RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile,
    RECOGDRIVE_KNOWN_HOSTS: bed.knownHostsFile,
  },
  stdio: 'ignore',
});
const client = new Client({ connection: await Connection.connect({ address: server.address }) });
try {
  const dataset = await seedDataset(join(dir, 'dataset'));
  const base = localPipelineInput(dir, dataset, { stages: ['metricCache'] });
  const handles = await Promise.all(
    Array.from({ length: stages }, (_, i) => {
      const w = bed.workers[i % 2]!;
      const input = {
        ...base,
        images: { stage1: bed.images[0], unified: bed.images[0] },
        orchestration: { heartbeatTimeout: '2 minutes', progressInterval: '5 minutes', pollInterval: '30 seconds' },
        metricCache: {
          ...base.metricCache,
          compute: { backend: 'static', hosts: [{ address: w.address, port: w.port, user: w.user }] },
          env: { RECOGDRIVE_SIM_DURATION_MS: '3600000' },
        },
      };
      return client.workflow.start('recogdrivePipeline', { workflowId: `bench-load-${i}`, taskQueue: 'recogdrive', args: [input] });
    }),
  );
  const launchStart = Date.now();
  for (;;) {
    const states = await Promise.all(handles.map((h) => h.query(runStatusQuery).then((s) => s.stages.find((x) => x.stage === 'metricCache')!.phase)));
    if (states.every((p) => p === 'running')) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  console.log(`${stages} runs launched their containers over SSH in ${((Date.now() - launchStart) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 10_000)); // settle: every watcher in its poll loop
  const ticks0 = await cpuTicks(worker.pid!);
  const t0 = Date.now();
  let peak = 0;
  for (let s = 0; s < seconds; s++) {
    peak = Math.max(peak, await rssMiB(worker.pid!));
    await new Promise((r) => setTimeout(r, 1000));
  }
  const cpu = (((await cpuTicks(worker.pid!)) - ticks0) / TICKS_PER_SECOND / ((Date.now() - t0) / 1000)) * 100;
  console.log(`worker process watching ${stages} stages (poll 30 s): CPU ${cpu.toFixed(1)} % of one core, peak RSS ${peak.toFixed(0)} MiB`);
  await Promise.all(handles.map((h) => h.cancel()));
  await Promise.all(handles.map((h) => h.result().catch(() => undefined)));
} finally {
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  await client.connection.close();
  await bed.stop();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
