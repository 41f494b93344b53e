/**
 * GPU workers of the test bed, through a real SSH client as the orchestrator connects: a worker
 * with GPUs answers `docker run --gpus all|N` as Docker with the NVIDIA container toolkit does
 * (the container sees RECOGDRIVE_SIM_GPUS, what the stage simulator reads as its GPUs), a worker
 * without GPUs refuses `--gpus` with Docker's own error and exit code.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'ssh2';
import { NO_GPU_RUNTIME_ERROR } from './podman.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-gpu-workers-'));
let bed: Testbed;
let image: string;
const CPU = 0;
const GPU = 1;

before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 2, dir: path.join(tmp, 'bed'), gpus: [0, 2], images: ['recogdrive-tpu:unified'] });
  image = bed.images[0]!;
});

after(async () => {
  if (!skip) await bed?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one command on a worker over SSH (key auth, the worker's host key pinned). */
async function ssh(worker: number, command: string): Promise<Exec> {
  const { address, port, user, hostKey } = bed.workers[worker]!;
  const pinned = Buffer.from(hostKey.split(' ')[1]!, 'base64');
  const client = await new Promise<Client>((resolve, reject) => {
    const c = new Client();
    c.once('ready', () => resolve(c));
    c.once('error', reject);
    c.connect({ host: address, port, username: user, privateKey: fs.readFileSync(bed.privateKeyFile), hostVerifier: (key: Buffer) => key.equals(pinned), readyTimeout: 10_000 });
  });
  try {
    return await new Promise<Exec>((resolve, reject) => {
      client.exec(command, (error, stream) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        stream.on('data', (d: Buffer) => (stdout += d.toString()));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        stream.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    });
  } finally {
    client.end();
  }
}

const printGpus = `bash -c 'echo "gpus=\${RECOGDRIVE_SIM_GPUS:-none} visible=\${NVIDIA_VISIBLE_DEVICES:-none}"'`;

test('a GPU worker: docker run --gpus all gives the container its GPUs (RECOGDRIVE_SIM_GPUS=2), --gpus 1 one of them, more than it has → exit 125', { skip, timeout: 120_000 }, async () => {
  assert.equal(bed.workers[GPU]!.gpus, 2);
  const all = await ssh(GPU, `docker run --rm --net=host --gpus all ${image} ${printGpus}`);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout.trim(), 'gpus=2 visible=all');
  const one = await ssh(GPU, `sudo -n docker run --rm --gpus=1 ${image} ${printGpus}`);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout.trim(), 'gpus=1 visible=0', 'through sudo as well');
  const none = await ssh(GPU, `docker run --rm ${image} ${printGpus}`);
  assert.equal(none.stdout.trim(), 'gpus=none visible=none', 'without --gpus the container sees no GPU');
  const tooMany = await ssh(GPU, `docker run --rm --gpus 3 ${image} true`);
  assert.equal(tooMany.code, 125);
  assert.match(tooMany.stderr, /requested 3 GPUs, this worker has 2/);
});

test('a GPU worker: a detached container started as the executor starts it keeps RECOGDRIVE_SIM_GPUS in its environment', { skip, timeout: 120_000 }, async () => {
  const started = await ssh(GPU, `docker run -d --name gpu-detached --label recogdrive.owner=recogdrive --privileged --net=host --shm-size=16g --workdir /tmp -e A=1 --gpus all ${image} bash -c 'sleep 30'`);
  assert.equal(started.code, 0, started.stderr);
  try {
    const env = await ssh(GPU, `docker inspect --format '{{json .Config.Env}}' gpu-detached`);
    assert.ok((JSON.parse(env.stdout) as string[]).includes('RECOGDRIVE_SIM_GPUS=2'), env.stdout);
  } finally {
    await ssh(GPU, 'docker rm -f gpu-detached');
  }
});

test('a worker without GPUs refuses --gpus as Docker without a GPU runtime: its error on stderr, exit 125, no container; without --gpus it runs', { skip, timeout: 120_000 }, async () => {
  assert.equal(bed.workers[CPU]!.gpus, 0);
  const refused = await ssh(CPU, `docker run -d --name no-gpu --gpus all ${image} true`);
  assert.equal(refused.code, 125);
  assert.equal(refused.stderr.trim(), NO_GPU_RUNTIME_ERROR);
  assert.equal(refused.stderr.trim(), 'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].');
  assert.equal((await ssh(CPU, 'docker ps -aq --filter name=no-gpu')).stdout.trim(), '');
  const plain = await ssh(CPU, `docker run --rm ${image} ${printGpus}`);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout.trim(), 'gpus=none visible=none');
});
