/**
 * Bringing up a bare VM, by step, and what moving data through Cloud Storage costs: one bare
 * test-bed VM (real sshd, podman, gcsfuse) brought up by the real steps (activities/bring-up/)
 * from an authenticated local registry and the Cloud Storage emulator, whose traffic from the VM
 * goes through a counting proxy. Then a container on the VM writes outputs through the gcsfuse
 * mount of the runs' bucket (what every stage does). Figures: seconds per step (login, pull, code,
 * data copied, data mounted, bucket mount), bytes and requests per step, requests per GB in and out.
 *
 *   BENCH_BRINGUP_MODEL_MB (default 256): the model copied to local disk, in 4 files;
 *   BENCH_BRINGUP_SMALL_FILES (default 1000): a dataset of 16 KiB files, copied;
 *   BENCH_BRINGUP_WRITE_MB (default 256): what the container writes (4 files + as many small files).
 * Local loopback and an in-memory emulator: the figures show the per-request and per-step costs
 * of the design, not Cloud Storage's throughput.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bringUpSlice } from '../activities/bring-up/run.ts';
import { loadSshKey } from '../activities/ssh/credentials.ts';
import { SshPool } from '../activities/ssh/pool.ts';
import type { BringUpSpec } from '../pipeline/bring-up.ts';
import { seedDataset } from '../workers/local-input.ts';
import { PROJECT_ROOT } from '../workers/project-root.ts';
import { archiveFolder, startBareWorld, uploadFolder, VM_ACCOUNT } from '../test/helpers/bare-world.ts';
import { gcsEmulatorUnmet } from '../test/helpers/gcs-emulator.ts';

const MODEL_MB = Number(process.env.BENCH_BRINGUP_MODEL_MB ?? 256);
const SMALL_FILES = Number(process.env.BENCH_BRINGUP_SMALL_FILES ?? 1000);
const WRITE_MB = Number(process.env.BENCH_BRINGUP_WRITE_MB ?? 256);
const SMALL = 16 * 1024;
const MB = 1024 * 1024;

const unmet = gcsEmulatorUnmet();
if (unmet !== undefined) {
  console.log(`bring-up bench skipped: ${unmet}`);
  process.exit(0);
}

const dir = await mkdtemp(join(tmpdir(), 'rd-bench-bring-up-'));
const world = await startBareWorld({ workers: 1, dir: join(PROJECT_ROOT, '.data', 'bench-bring-up'), buckets: ['code', 'data', 'runs'], countVmTraffic: true });
const traffic = world.vmTraffic!;
const key = await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: world.bed.privateKeyFile });
const pool = new SshPool({ key: key!, connectDeadlineMs: 20_000, keepaliveIntervalMs: 5_000, maxConnections: 4, maxChannelsPerConnection: 4 });
const w = world.bed.workers[0]!;
const endpoint = { host: w.address, port: w.port, user: w.user, hostKeys: [w.hostKey] };

function gb(bytes: number): number {
  return bytes / (1024 * MB);
}

try {
  // What a team uploads once: the code archive, a model, a dataset of many small files.
  const checkout = await seedDataset(join(dir, 'checkout'));
  await archiveFolder(checkout.dir, join(dir, 'recogdrive.tar.gz'), ['models', 'tests/dummy_data']);
  await world.storage.bucket('code').upload(join(dir, 'recogdrive.tar.gz'), { destination: 'recogdrive.tar.gz' });
  const md5 = (await world.storage.bucket('code').file('recogdrive.tar.gz').getMetadata())[0].md5Hash!;
  const model = join(dir, 'model');
  await mkdir(model);
  for (let i = 0; i < 4; i++) await writeFile(join(model, `shard-${i}.safetensors`), randomBytes((MODEL_MB * MB) / 4));
  const small = join(dir, 'dataset');
  await mkdir(small);
  for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(small, `token-${i}.gz`), randomBytes(SMALL));
  await uploadFolder(world.storage, model, 'data', 'models/InternVL3-2B');
  await uploadFolder(world.storage, small, 'data', 'navsim/logs');
  await uploadFolder(world.storage, join(checkout.dir, 'tests', 'dummy_data'), 'data', 'dummy_data');
  world.bed.setServiceAccount(0, VM_ACCOUNT);

  const spec: BringUpSpec = {
    image: `${world.image.slice(0, world.image.lastIndexOf(':'))}@${world.digest}`,
    registry: world.registry.host,
    repoDir: '/var/lib/recogdrive/repo',
    code: { kind: 'archive', uri: 'gs://code/recogdrive.tar.gz', md5 },
    data: [
      { uri: 'gs://data/models/InternVL3-2B', dir: '/var/lib/recogdrive/repo/models/InternVL3-2B', mode: 'copy' },
      { uri: 'gs://data/navsim/logs', dir: '/var/lib/recogdrive/repo/data/navsim_logs', mode: 'copy' },
      { uri: 'gs://data/dummy_data', dir: '/var/lib/recogdrive/repo/tests/dummy_data', mode: 'mount' },
    ],
    buckets: ['runs'],
  };
  // Traffic per step: a snapshot whenever a step starts.
  const marks: Array<{ step: string; label: string; requests: number; down: number; up: number }> = [];
  traffic.reset();
  const started = Date.now();
  const timings = await bringUpSlice([endpoint], spec, {
    pool,
    sudo: true,
    signal: new AbortController().signal,
    log: async (_worker, text) => {
      const header = /\] (\w+): (?!done|failed)(.*)$/m.exec(text);
      if (header !== null) marks.push({ step: header[1]!, label: header[2]!, requests: traffic.counts().total, ...traffic.bytes() });
    },
  });
  const totalMs = Date.now() - started;
  const end = { requests: traffic.counts().total, ...traffic.bytes() };
  console.log(`bring-up of one bare VM: ${(totalMs / 1000).toFixed(1)} s in all (model ${MODEL_MB} MiB, ${SMALL_FILES} files of 16 KiB, the stage image from the local registry)`);
  console.log('  step       seconds  GCS requests  MiB down   label');
  timings.forEach((t, i) => {
    const next = marks[i + 1] ?? end;
    const mark = marks[i]!;
    const down = (next.down - mark.down) / MB;
    console.log(`  ${t.step.padEnd(9)} ${(t.ms / 1000).toFixed(2).padStart(8)}  ${String(next.requests - mark.requests).padStart(12)}  ${down.toFixed(1).padStart(8)}   ${t.label}`);
  });
  console.log(`  in: ${(end.down / MB).toFixed(1)} MiB in ${end.requests} requests → ${(end.requests / Math.max(gb(end.down), 1e-9)).toFixed(0)} requests per GiB (the small-file dataset dominates; ${SMALL_FILES} files of 16 KiB)`);

  // Out: a stage's container writes its outputs through the gcsfuse mount of the runs' bucket.
  traffic.reset();
  const script = [
    'set -e',
    'mkdir -p /out/bench/checkpoints /out/bench/cache',
    `for i in 0 1 2 3; do head -c ${Math.floor((WRITE_MB * MB) / 8)} /dev/urandom > /out/bench/checkpoints/shard-$i.bin; done`,
    `for i in $(seq 1 ${SMALL_FILES}); do head -c ${Math.floor((WRITE_MB * MB) / 2 / SMALL_FILES)} /dev/urandom > /out/bench/cache/token-$i.gz; done`,
  ].join('\n');
  const writeStarted = Date.now();
  const wrote = await pool.exec(endpoint, ['docker', 'run', '--rm', '-v', '/mnt/artifacts/runs:/out', spec.image, '/bin/bash', '-c', script], { mergeStderr: true });
  const writeMs = Date.now() - writeStarted;
  if (wrote.code !== 0) throw new Error(`the writing container failed: ${wrote.stdout}`);
  const out = { requests: traffic.counts().total, byMethod: traffic.counts().byMethod, ...traffic.bytes() };
  const [objects] = await world.storage.bucket('runs').getFiles({ prefix: 'bench/' });
  const stored = objects.reduce((sum, o) => sum + Number(o.metadata.size ?? 0), 0);
  if (stored < WRITE_MB * MB * 0.99) throw new Error(`only ${(stored / MB).toFixed(1)} MiB of ${WRITE_MB} MiB reached the bucket`);
  console.log(
    `outputs through the gcsfuse mount: ${WRITE_MB} MiB (4 large files + ${SMALL_FILES} small) in ${(writeMs / 1000).toFixed(1)} s, ${(out.up / MB).toFixed(1)} MiB up in ${out.requests} requests → ${(out.requests / Math.max(gb(out.up), 1e-9)).toFixed(0)} requests per GiB (${JSON.stringify(out.byMethod)})`,
  );
} finally {
  pool.close();
  await world.stop();
  await rm(dir, { recursive: true, force: true });
}
