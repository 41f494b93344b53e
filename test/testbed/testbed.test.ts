/**
 * The test bed itself, through a real SSH client (ssh2 with the test bed's key and host keys
 * pinned from its known_hosts): each worker is its own container host answering to `docker`,
 * the stage image runs the simulator with real bind mounts, exit codes come back through
 * `docker wait`, and the failure knobs (dropped connection, stopped worker) do what they say.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join as shellJoin } from 'shlex';
import { Client } from 'ssh2';
import { isAlive, listProcesses } from './processes.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

const skip = testbedSkip();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-testbed-test-'));
const repoDir = path.join(tmp, 'repo');
let bed: Testbed;

before(async () => {
  if (skip) return;
  const seeded = spawnSync(process.execPath, [path.join(ROOT, 'docker/simulator/main.ts'), 'seed', '--dir', repoDir, '--fixes', 'all'], { encoding: 'utf8' });
  assert.equal(seeded.status, 0, seeded.stderr);
  bed = await startTestbed({ workers: 2, dir: path.join(tmp, 'bed') });
});

after(async () => {
  if (!skip) await bed?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- SSH with ssh2, as the orchestrator connects ------------------------------------------

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** The key pinned for a worker in the test bed's known_hosts file, as its wire blob. */
function pinnedKey(worker: number): Buffer {
  const { port } = bed.workers[worker]!;
  const line = fs
    .readFileSync(bed.knownHostsFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`[127.0.0.1]:${port} `));
  assert.ok(line, `known_hosts has worker ${worker}`);
  return Buffer.from(line.split(' ')[2]!, 'base64');
}

function connect(worker: number, pinned = pinnedKey(worker)): Promise<Client> {
  const { address, port, user } = bed.workers[worker]!;
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: address,
      port,
      username: user,
      privateKey: fs.readFileSync(bed.privateKeyFile),
      hostVerifier: (key: Buffer) => key.equals(pinned),
      readyTimeout: 10_000,
    });
  });
}

function exec(client: Client, command: string): Promise<Exec> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, stream) => {
      if (error) return reject(error);
      let stdout = '';
      let stderr = '';
      let code = -1;
      stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      stream.on('exit', (status: number | null, signalName?: string) => (code = status ?? (signalName === undefined ? -1 : 128)));
      stream.on('close', () => resolve({ code, stdout, stderr }));
    });
  });
}

/** An argv as the orchestrator sends it: POSIX-quoted, run by the remote login shell. */
async function run(client: Client, argv: string[]): Promise<Exec> {
  return exec(client, shellJoin(argv));
}

async function ok(client: Client, argv: string[]): Promise<string> {
  const result = await run(client, argv);
  assert.equal(result.code, 0, `${argv.join(' ')} exited ${result.code}\n${result.stderr}`);
  return result.stdout;
}

async function withClient<T>(worker: number, use: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(worker);
  try {
    return await use(client);
  } finally {
    client.end();
  }
}

// ---- the stage, as the plan renders it (spec-tpu.json), scaled down ---------------------

const STAGE1 = [
  'python', 'internvl_chat/internvl/train/internvl_chat_finetune_torchax.py',
  '--model_name_or_path', 'models/InternVL3-2B', '--conv_style', 'internvl2_5', '--output_dir', 'work_dirs/stage1_output',
  '--meta_path', 'data/meta.json', '--force_image_size', '448', '--max_dynamic_patch', '1', '--down_sample_ratio', '0.5',
  '--bf16', 'True', '--num_train_epochs', '1', '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '1',
  '--learning_rate', '4e-5', '--weight_decay', '0.05', '--warmup_ratio', '0.0', '--logging_steps', '1', '--max_seq_length', '2048',
  '--do_train', 'True', '--grad_checkpoint', 'False', '--group_by_length', 'False', '--dynamic_image_size', 'False',
  '--use_thumbnail', 'False', '--ps_version', 'v2',
];

/** `docker run -d` of Stage 1 with the repo and a fresh output folder bind-mounted, as dockerRunArgs renders it. */
function stage1Run(name: string, output: string, worker: number, env: Record<string, string> = {}): string[] {
  fs.mkdirSync(output, { recursive: true });
  return [
    'docker', 'run', '-d', '--name', name, '--label', 'recogdrive.owner=recogdrive', '--privileged', '--net=host',
    '--workdir', '/recogdrive', '-v', `${repoDir}:/recogdrive`, '-v', `${output}:/recogdrive/work_dirs/stage1_output`,
    ...Object.entries({ PYTHONPATH: '/recogdrive/internvl_chat', RECOGDRIVE_SIM_DURATION_MS: '300', ...env, RECOGDRIVE_WORKER: String(worker) })
      .flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    bed.images[0]!, ...STAGE1,
  ];
}

function finalCheckpoints(output: string): string[] {
  const dir = path.join(output, 'final_checkpoint.pt');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, '_CHECKPOINT_METADATA'))) : [];
}

// ---- tests ---------------------------------------------------------------------------

test('docker in an SSH session is the worker\'s own podman, with a pinned host key and the TPU hygiene commands harmless', { skip }, async () => {
  for (const worker of [0, 1]) {
    await withClient(worker, async (client) => {
      const which = await exec(client, 'command -v docker; echo "$RECOGDRIVE_TESTBED_WORKER"');
      assert.deepEqual(which.stdout.trim().split('\n'), [path.join(bed.dir, `worker-${worker}`, 'bin', 'docker'), String(worker)]);
      assert.match(await ok(client, ['docker', 'image', 'inspect', '--format', '{{.Id}}', bed.images[0]!]), /^[0-9a-f]{64}\n$/);
      await ok(client, ['sudo', '-n', 'docker', 'ps', '-a']);
      await ok(client, ['sh', '-c', 'rm -f /tmp/libtpu_lockfile; for d in /dev/vfio/[0-9]* /dev/accel[0-9]*; do [ -e "$d" ] && fuser -k "$d"; done; true']);
      assert.equal((await exec(client, 'fuser -k /dev/vfio/* 2>/dev/null || true')).code, 0);
    });
  }
  // Worker 1's key does not pass for worker 0: the pin is checked.
  await assert.rejects(connect(0, pinnedKey(1)));
  // OpenSSH's client takes the same key and known_hosts file.
  const openssh = spawnSync(
    'ssh',
    ['-i', bed.privateKeyFile, '-p', String(bed.workers[1]!.port), '-o', `UserKnownHostsFile=${bed.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'GlobalKnownHostsFile=/dev/null', 'root@127.0.0.1', 'command -v docker; docker ps -a --format "{{.Names}}"'],
    { encoding: 'utf8', timeout: 20_000 },
  );
  assert.equal(openssh.status, 0, openssh.stderr);
  assert.equal(openssh.stdout.split('\n')[0], path.join(bed.dir, 'worker-1', 'bin', 'docker'));
});

test('the same container name runs independently on each worker', { skip }, async () => {
  const name = 'rd-same-name';
  const clients = await Promise.all([connect(0), connect(1)]);
  try {
    await Promise.all(
      clients.map((client, worker) =>
        ok(client, ['docker', 'run', '-d', '--name', name, '-e', `RECOGDRIVE_WORKER=${worker}`, bed.images[0]!, 'sh', '-c', 'echo "worker $RECOGDRIVE_WORKER"; exec sleep 60']),
      ),
    );
    for (const [worker, client] of clients.entries()) {
      assert.match(await ok(client, ['docker', 'ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.ID}}']), /^[0-9a-f]{12}\n$/);
      assert.equal((await ok(client, ['docker', 'logs', name])).trim(), `worker ${worker}`);
    }
    await ok(clients[0]!, ['docker', 'rm', '-f', name]);
    assert.equal((await run(clients[0]!, ['docker', 'inspect', '--format', '{{.State.Status}}', name])).code === 0, false);
    assert.equal((await ok(clients[1]!, ['docker', 'inspect', '--format', '{{.State.Status}}', name])).trim(), 'running');
    await ok(clients[1]!, ['docker', 'rm', '-f', name]);
  } finally {
    for (const client of clients) client.end();
  }
});

test('the stage image runs Stage 1 with real bind mounts and commits its final checkpoint', { skip }, async () => {
  const output = path.join(tmp, 'stage1-ok');
  await withClient(0, async (client) => {
    await ok(client, stage1Run('rd-stage1', output, 0));
    assert.equal((await ok(client, ['docker', 'wait', 'rd-stage1'])).trim(), '0');
    const state = await ok(client, ['docker', 'inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}', 'rd-stage1']);
    assert.equal(state.trim(), 'exited 0 false');
    const logs = await ok(client, ['docker', 'logs', '--timestamps', 'rd-stage1']);
    assert.match(logs, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z \S+ \S+ - INFO - __main__ - Saved final checkpoint to \/recogdrive\/work_dirs\/stage1_output\/final_checkpoint\.pt$/m);
    // --since with the timestamp of a line returns what followed it.
    const first = logs.split('\n')[0]!.split(' ')[0]!;
    const since = await ok(client, ['docker', 'logs', '--timestamps', '--since', first, 'rd-stage1']);
    assert.ok(since.length > 0 && since.length < logs.length, 'logs --since returns the later lines');
    await ok(client, ['docker', 'rm', '-f', 'rd-stage1']);
  });
  const checkpoints = finalCheckpoints(output);
  assert.equal(checkpoints.length, 1, `one committed final checkpoint: ${checkpoints.join(', ')}`);
  assert.match(checkpoints[0]!, /^checkpoint_\d+$/);
});

test('the feature cache runs under /bin/bash -c after the pip fix, with a read-only mount, and caches every token', { skip }, async () => {
  const stage1 = path.join(tmp, 'feature-stage1');
  const cache = path.join(tmp, 'feature-cache');
  for (const dir of [stage1, cache]) fs.mkdirSync(dir, { recursive: true });
  const env = {
    PYTHONPATH: '/recogdrive:/recogdrive/internvl_chat', NAVSIM_EXP_ROOT: '/recogdrive/tests/work_dirs',
    OPENSCENE_DATA_ROOT: '/recogdrive/tests/dummy_data', NUPLAN_MAPS_ROOT: '/recogdrive/tests/dummy_maps',
    NUPLAN_MAP_VERSION: 'nuplan-maps-v1.0', HYDRA_FULL_ERROR: '1', RECOGDRIVE_SIM_DURATION_MS: '300',
  };
  const script =
    'pip install --upgrade hydra-core==1.3.2 omegaconf pytest && python navsim/planning/script/run_caching_recogdrive_torchax.py ' +
    'agent=recogdrive_agent agent.vlm_path=models/InternVL3-2B agent.vlm_type=internvl train_test_split=navtrain ' +
    'cache_path=/recogdrive/data/cache_output experiment_name=caching_job dataloader.params.batch_size=4 dataloader.params.num_workers=0';
  const result = await withClient(1, (client) =>
    run(client, [
      'docker', 'run', '--rm', '--privileged', '--net=host', '--workdir', '/recogdrive', '-v', `${repoDir}:/recogdrive`,
      '-v', `${stage1}:/recogdrive/work_dirs/stage1_output:ro`, '-v', `${cache}:/recogdrive/data/cache_output`,
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), bed.images[0]!, '/bin/bash', '-c', script,
    ]),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /Successfully installed hydra-core-1\.3\.2/);
  assert.match(result.stdout, /\]\[__main__\]\[INFO\] - Caching Complete\.$/m);
  const tokens = fs.readdirSync(cache, { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('internvl_feature.gz'));
  assert.equal(tokens.length, 12);
});

test('docker wait returns the exit code of a worker-targeted crash (1) and of an OOM kill (137)', { skip }, async () => {
  const clients = await Promise.all([connect(0), connect(1)]);
  try {
    const crash = { RECOGDRIVE_SIM_FAULT: 'crash', RECOGDRIVE_SIM_FAULT_WORKER: '1' };
    await Promise.all(clients.map((client, worker) => ok(client, stage1Run('rd-crash', path.join(tmp, `crash-${worker}`), worker, crash))));
    await ok(clients[0]!, stage1Run('rd-oom', path.join(tmp, 'oom'), 0, { RECOGDRIVE_SIM_FAULT: 'oom', RECOGDRIVE_SIM_FAULT_AT: '0.25' }));
    const [healthy, crashed, oom] = await Promise.all([
      ok(clients[0]!, ['docker', 'wait', 'rd-crash']),
      ok(clients[1]!, ['docker', 'wait', 'rd-crash']),
      ok(clients[0]!, ['docker', 'wait', 'rd-oom']),
    ]);
    assert.deepEqual([healthy.trim(), crashed.trim(), oom.trim()], ['0', '1', '137']);
    assert.equal((await ok(clients[1]!, ['docker', 'inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'rd-crash'])).trim(), 'exited 1');
    const tail = await exec(clients[1]!, `${shellJoin(['docker', 'logs', '--tail', '1', 'rd-crash'])} 2>&1`);
    assert.equal(tail.stdout.trim(), 'RuntimeError: simulated crash in internvl_chat_finetune_torchax.py');
    await Promise.all([ok(clients[0]!, ['docker', 'rm', '-f', 'rd-crash', 'rd-oom']), ok(clients[1]!, ['docker', 'rm', '-f', 'rd-crash'])]);
  } finally {
    for (const client of clients) client.end();
  }
});

test('docker stop ends a hung stage with SIGTERM: exit 143', { skip }, async () => {
  await withClient(1, async (client) => {
    await ok(client, stage1Run('rd-hang', path.join(tmp, 'hang'), 1, { RECOGDRIVE_SIM_FAULT: 'hang', RECOGDRIVE_SIM_FAULT_AT: '0' }));
    assert.equal((await ok(client, ['docker', 'inspect', '--format', '{{.State.Status}}', 'rd-hang'])).trim(), 'running');
    await ok(client, ['docker', 'stop', '-t', '5', 'rd-hang']);
    assert.equal((await ok(client, ['docker', 'wait', 'rd-hang'])).trim(), '143');
    await ok(client, ['docker', 'rm', '-f', 'rd-hang']);
  });
});

test('dropConnections closes an open connection and its running command while the listener keeps accepting', { skip }, async () => {
  const client = await connect(0);
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.on('error', () => {});
  const running = exec(client, 'sleep 30').catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const started = Date.now();
  await bed.dropConnections(0);
  await closed;
  await running;
  assert.ok(Date.now() - started < 5000, 'the client saw the connection close at once');
  await withClient(0, async (again) => assert.equal((await exec(again, 'echo back')).stdout, 'back\n'));
});

test('stopWorker makes a worker refuse connections; startWorker brings it back on the same port with the same host key', { skip }, async () => {
  const { port } = bed.workers[1]!;
  await bed.stopWorker(1);
  await assert.rejects(connect(1), /ECONNREFUSED/);
  await withClient(0, async (client) => assert.equal((await exec(client, 'echo up')).code, 0));
  await bed.startWorker(1);
  assert.equal(bed.workers[1]!.port, port);
  await withClient(1, async (client) => assert.equal((await exec(client, 'docker ps -q')).code, 0));
});

test('startTestbed cleans up what a killed run left in its folder', { skip }, async () => {
  const dir = path.join(tmp, 'killed');
  const first = await startTestbed({ workers: 1, dir });
  // "Killed": no stop(); an sshd and a container are left behind.
  await withClient0(first, ['docker', 'run', '-d', '--name', 'left-behind', first.images[0]!, 'sleep', '60']);
  const oldListener = Number(fs.readFileSync(path.join(dir, 'worker-0/ssh/sshd.pid'), 'utf8'));
  const second = await startTestbed({ workers: 1, dir, images: [] });
  try {
    assert.equal(isAlive(oldListener), false, 'the old sshd is gone');
    assert.equal((await second.docker(0, ['ps', '-aq'])).stdout, '');
  } finally {
    await second.stop();
  }
});

test('stop() leaves no sshd and no container of the test bed', { skip }, async () => {
  await withClient(0, (client) => ok(client, ['docker', 'run', '-d', '--name', 'running-at-stop', bed.images[0]!, 'sleep', '60']));
  await bed.stop();
  const left = listProcesses().filter((p) => p.cmdline.includes(bed.dir));
  assert.deepEqual(left.map((p) => p.cmdline), []);
  for (const worker of [0, 1]) assert.equal((await bed.docker(worker, ['ps', '-aq'])).stdout, '');
  await assert.rejects(connect(0), /ECONNREFUSED/);
});

/** One command on worker 0 of another test bed (its own key and host key). */
async function withClient0(other: Testbed, argv: string[]): Promise<void> {
  const blob = Buffer.from(other.workers[0]!.hostKey.split(' ')[1]!, 'base64');
  const client = await new Promise<Client>((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ host: '127.0.0.1', port: other.workers[0]!.port, username: 'root', privateKey: fs.readFileSync(other.privateKeyFile), hostVerifier: (key: Buffer) => key.equals(blob) });
  });
  try {
    assert.equal((await run(client, argv)).code, 0);
  } finally {
    client.end();
  }
}
