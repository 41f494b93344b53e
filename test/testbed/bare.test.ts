/**
 * Bare test-bed workers (startTestbed({ bare: true })), through a real SSH client: each is a
 * machine of its own for the paths a stage uses (/var/lib/recogdrive, /mnt/artifacts in a
 * private mount namespace), starts with no image, mounts an emulator bucket with gcsfuse, keeps
 * its docker credentials, answers as a GCE metadata server would, and is made new by resetWorker.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { InstancesClient } from '@google-cloud/compute';
import { Storage } from '@google-cloud/storage';
import { setTimeout as sleep } from 'node:timers/promises';
import { ComputeEngineComputeProvider } from '../../activities/compute/compute-engine.ts';
import { PROJECT, startFakeTpuCloud, ZONES } from '../helpers/cloud-env.ts';
import { join as shellJoin } from 'shlex';
import { Client } from 'ssh2';
import { gcsEmulatorSkip, startGcsEmulator, type GcsEmulator } from '../helpers/gcs-emulator.ts';
import { isAlive, listProcesses } from './processes.ts';
import { bareTestbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = bareTestbedSkip() || gcsEmulatorSkip();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-bare-test-'));
const BUCKET = `bare-${path.basename(tmp).slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
const IMAGE = 'localhost/testbed-busybox:1';
let bed: Testbed;
let emulator: GcsEmulator;
let registry: http.Server;
let registryHost: string;

/** A registry that only answers the login handshake: GET /v2/ is 401 without credentials, 200 with. */
async function startLoginRegistry(): Promise<void> {
  registry = http.createServer((request, response) => {
    if (request.url === '/v2/' && request.headers.authorization?.startsWith('Basic ') === true) {
      response.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
    } else {
      response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="testbed"', 'Docker-Distribution-API-Version': 'registry/2.0' }).end();
    }
  });
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
}

before(async () => {
  if (skip) return;
  emulator = await startGcsEmulator();
  await emulator.createBucket(BUCKET);
  await startLoginRegistry();
  bed = await startTestbed({
    workers: 2,
    dir: path.join(tmp, 'bed'),
    bare: true,
    insecureRegistries: [registryHost],
    gcsEndpoint: `${emulator.apiEndpoint}/storage/v1/`,
  });
  // A one-file image (busybox) for containers on the bare VMs, imported over SSH as a test would pull one.
  const rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'mv', 'ls', 'echo']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  execFileSync('tar', ['-C', rootfs, '-cf', path.join(tmp, 'rootfs.tar'), '.']);
});

after(async () => {
  if (!skip) {
    await bed?.stop();
    await emulator?.stop();
    registry?.close();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- SSH ------------------------------------------------------------------------------------

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function connect(worker: number): Promise<Client> {
  const { address, port, user, hostKey } = bed.workers[worker]!;
  const pinned = Buffer.from(hostKey.split(' ')[1]!, 'base64');
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host: address, port, username: user, privateKey: fs.readFileSync(bed.privateKeyFile), hostVerifier: (key: Buffer) => key.equals(pinned), readyTimeout: 10_000 });
  });
}

/** Runs a shell command on a worker over SSH (one connection per call). */
async function ssh(worker: number, command: string): Promise<Exec> {
  const client = await connect(worker);
  try {
    return await new Promise((resolve, reject) => {
      client.exec(command, (error, stream) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        let code = -1;
        stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        stream.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        stream.on('exit', (status: number | null) => (code = status ?? 128));
        stream.on('close', () => resolve({ code, stdout, stderr }));
      });
    });
  } finally {
    client.end();
  }
}

async function ok(worker: number, command: string): Promise<string> {
  const result = await ssh(worker, command);
  assert.equal(result.code, 0, `worker ${worker}: ${command} exited ${result.code}\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

const importImage = (worker: number): Promise<string> => ok(worker, shellJoin(['docker', 'import', path.join(tmp, 'rootfs.tar'), IMAGE]));

/** The command that mounts the test bucket on a VM, as a bring-up script would with RECOGDRIVE_GCS_ENDPOINT set. */
const MOUNT = `mkdir -p /mnt/artifacts/${BUCKET} && gcsfuse --anonymous-access --custom-endpoint "$RECOGDRIVE_GCS_ENDPOINT" --implicit-dirs -o allow_other ${BUCKET} /mnt/artifacts/${BUCKET}`;

/** Mounts of `bucket` by gcsfuse that any process on this machine sees. */
function gcsfuseMountsOf(bucket: string): string[] {
  const found: string[] = [];
  for (const p of listProcesses()) {
    try {
      for (const line of fs.readFileSync(`/proc/${p.pid}/mountinfo`, 'utf8').split('\n')) {
        if (line.includes(` - fuse.gcsfuse ${bucket} `)) found.push(`${p.pid}: ${line}`);
      }
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function gcsfusePids(worker: number): number[] {
  const inVm = new Set(bed.vmProcesses(worker));
  return listProcesses()
    .filter((p) => p.comm === 'gcsfuse' && inVm.has(p.pid))
    .map((p) => p.pid);
}

// ---- tests ------------------------------------------------------------------------------------

test('a bare worker has no image, an empty /var/lib/recogdrive and /mnt/artifacts, gcsfuse on PATH and its VM variables', { skip }, async () => {
  assert.deepEqual(bed.images, []);
  for (const worker of [0, 1]) {
    assert.equal((await ok(worker, 'docker images --quiet')).trim(), '');
    assert.equal(await ok(worker, 'ls -A /var/lib/recogdrive /mnt/artifacts'), '/mnt/artifacts:\n\n/var/lib/recogdrive:\n');
    assert.match(await ok(worker, 'command -v gcsfuse'), /\/worker-\d\/bin\/gcsfuse\n$/);
    const env = await ok(worker, 'echo "$GCE_METADATA_HOST $RECOGDRIVE_GCS_ENDPOINT"');
    assert.equal(env, `${bed.workers[worker]!.metadataHost} ${emulator.apiEndpoint}/storage/v1/\n`);
  }
  assert.notEqual(bed.workers[0]!.metadataHost, bed.workers[1]!.metadataHost);
});

test("what worker 0 writes in /var/lib/recogdrive is not on worker 1 nor in the test process's, and its containers mount worker 0's", { skip }, async () => {
  await ok(0, 'mkdir -p /var/lib/recogdrive/probe && echo zero > /var/lib/recogdrive/probe/who');
  await ok(1, 'mkdir -p /var/lib/recogdrive/probe && echo one > /var/lib/recogdrive/probe/who');
  assert.equal(await ok(0, 'cat /var/lib/recogdrive/probe/who'), 'zero\n');
  assert.equal(await ok(1, 'cat /var/lib/recogdrive/probe/who'), 'one\n');
  assert.equal(fs.existsSync('/var/lib/recogdrive/probe/who'), false, 'the test process sees the host, not a VM');
  assert.equal(fs.readFileSync(path.join(bed.vmPath(0, '/var/lib/recogdrive'), 'probe', 'who'), 'utf8'), 'zero\n');

  // podman resolves a bind mount's source in the VM's namespace (a container started over SSH).
  for (const [worker, who] of [[0, 'zero'], [1, 'one']] as const) {
    await importImage(worker);
    const seen = await ok(worker, shellJoin(['docker', 'run', '--rm', '-v', '/var/lib/recogdrive/probe:/probe', IMAGE, '/bin/cat', '/probe/who']));
    assert.equal(seen, `${who}\n`);
  }
});

test('gcsfuse over SSH mounts an emulator bucket that a container writes through (rename, O_EXCL) and the Storage API reads back', { skip }, async () => {
  await ok(0, MOUNT);
  const script = [
    'echo shard > /out/run/part.tmp',
    'mv /out/run/part.tmp /out/run/part',
    'set -C',
    'echo first > /out/run/marker',
    // noclobber opens with O_EXCL: the second create of the same file fails.
    'if echo second > /out/run/marker 2>/dev/null; then echo clobbered; exit 3; fi',
    'ls /out/run',
  ].join('\n');
  await ok(0, `mkdir -p /mnt/artifacts/${BUCKET}/run`);
  const listed = await ok(0, shellJoin(['docker', 'run', '--rm', '-v', `/mnt/artifacts/${BUCKET}:/out`, IMAGE, '/bin/sh', '-c', script]));
  assert.equal(listed, 'marker\npart\n');

  const storage = new Storage({ apiEndpoint: emulator.apiEndpoint, projectId: emulator.projectId });
  const [files] = await storage.bucket(BUCKET).getFiles({ prefix: 'run/' });
  assert.deepEqual(files.map((f) => f.name).filter((n) => n !== 'run/').sort(), ['run/marker', 'run/part']);
  assert.equal((await storage.bucket(BUCKET).file('run/part').download())[0].toString(), 'shard\n');
  assert.equal((await storage.bucket(BUCKET).file('run/marker').download())[0].toString(), 'first\n');

  // The mount is the VM's: worker 1 and the test process see an empty folder (or none).
  assert.equal((await ssh(1, `ls -A /mnt/artifacts/${BUCKET} 2>/dev/null`)).stdout, '');
  assert.equal(fs.existsSync(path.join('/mnt/artifacts', BUCKET, 'run')), false);
  assert.ok(gcsfusePids(0).length > 0, 'gcsfuse runs in worker 0');
});

test('docker login credentials and the insecure registry setting stay on the VM that logged in', { skip }, async () => {
  await ok(0, `echo ya29.token | docker login --username oauth2accesstoken --password-stdin ${registryHost}`);
  const authFile = path.join(path.dirname(bed.vmPath(0, '/var/lib/recogdrive')), 'auth.json');
  assert.ok((JSON.parse(fs.readFileSync(authFile, 'utf8')) as { auths: Record<string, unknown> }).auths[registryHost], 'worker 0 keeps its login');
  const other = await ssh(1, `docker logout ${registryHost}`);
  assert.notEqual(other.code, 0, 'worker 1 never logged in');
  assert.match(other.stderr, /not logged in/);
});

test('the metadata server answers only with Metadata-Flavor: Google, 404 without a service account, the token and email with one', { skip }, async () => {
  const base = `http://${bed.workers[0]!.metadataHost}/computeMetadata/v1/instance/service-accounts/default`;
  const flavor = { 'Metadata-Flavor': 'Google' };
  assert.equal((await fetch(`${base}/token`)).status, 403);
  assert.equal((await fetch(`${base}/token`, { headers: flavor })).status, 404, 'no service account by default');

  bed.setServiceAccount(0, { email: 'trainer@p.iam.gserviceaccount.com', token: 'ya29.fake' });
  assert.equal((await fetch(`${base}/token`)).status, 403, 'still needs the header');
  const token = await fetch(`${base}/token?scopes=https://www.googleapis.com/auth/cloud-platform`, { headers: flavor });
  assert.equal(token.status, 200);
  assert.equal(token.headers.get('metadata-flavor'), 'Google');
  assert.deepEqual(await token.json(), { access_token: 'ya29.fake', expires_in: 3599, token_type: 'Bearer' });
  assert.equal(await (await fetch(`${base}/email`, { headers: flavor })).text(), 'trainer@p.iam.gserviceaccount.com');
  assert.equal((await fetch(`http://${bed.workers[1]!.metadataHost}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: flavor })).status, 404, "worker 1's VM has none");
  // From the VM, as a bring-up script asks for it.
  const fromVm = await ok(0, `curl -sf -H 'Metadata-Flavor: Google' "http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/email"`);
  assert.equal(fromVm, 'trainer@p.iam.gserviceaccount.com');
});

test('resetWorker makes a used worker a bare VM again: no image, container, files, mount, credentials or service account', { skip }, async () => {
  await ok(0, shellJoin(['docker', 'run', '-d', '--name', 'left-behind', IMAGE, '/bin/sh', '-c', 'while :; do :; done']));
  const gcsfuseBefore = gcsfusePids(0);
  assert.ok(gcsfuseBefore.length > 0);
  const port = bed.workers[0]!.port;

  await bed.resetWorker(0);

  assert.equal(bed.workers[0]!.port, port);
  assert.equal((await ok(0, 'docker ps -a --quiet; docker images --quiet')).trim(), '');
  assert.equal(await ok(0, 'ls -A /var/lib/recogdrive /mnt/artifacts'), '/mnt/artifacts:\n\n/var/lib/recogdrive:\n');
  assert.equal((await ok(0, 'grep -c fuse.gcsfuse /proc/self/mountinfo || true')).trim(), '0');
  assert.ok(gcsfuseBefore.every((pid) => !isAlive(pid)), 'the old VM gcsfuse is gone');
  assert.deepEqual(gcsfuseMountsOf(BUCKET), []);
  assert.equal((await ssh(0, `docker logout ${registryHost}`)).code === 0, false, 'no credentials on the new VM');
  const token = await fetch(`http://${bed.workers[0]!.metadataHost}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' } });
  assert.equal(token.status, 404);
  // Worker 1 was not touched.
  assert.equal(await ok(1, 'cat /var/lib/recogdrive/probe/who'), 'one\n');
  assert.notEqual((await ok(1, 'docker images --quiet')).trim(), '');
});

test("startTestbed ends what a killed run's bare VMs left: gcsfuse, its mount, containers, the namespace", { skip }, async () => {
  const dir = path.join(tmp, 'killed');
  const bucket = `${BUCKET}-killed`;
  await emulator.createBucket(bucket);
  const first = await startTestbed({ workers: 1, dir, bare: true, gcsEndpoint: `${emulator.apiEndpoint}/storage/v1/` });
  const onFirst = async (command: string): Promise<void> => {
    const saved = bed;
    bed = first;
    try {
      await ok(0, command);
    } finally {
      bed = saved;
    }
  };
  // "Killed": no stop(); a gcsfuse mount and a container using it are left behind.
  await onFirst(MOUNT.replaceAll(BUCKET, bucket));
  await onFirst(shellJoin(['docker', 'import', path.join(tmp, 'rootfs.tar'), IMAGE]));
  await onFirst(shellJoin(['docker', 'run', '-d', '-v', `/mnt/artifacts/${bucket}:/out`, IMAGE, '/bin/sh', '-c', 'while :; do :; done']));
  const left = first.vmProcesses(0);
  assert.ok(gcsfuseMountsOf(bucket).length > 0);

  const second = await startTestbed({ workers: 1, dir, bare: true });
  try {
    assert.deepEqual(left.filter((pid) => isAlive(pid)), [], 'every process of the old VM is gone');
    assert.deepEqual(gcsfuseMountsOf(bucket), []);
    assert.equal((await second.docker(0, ['ps', '-aq'])).stdout, '');
  } finally {
    await second.stop();
    await first.stop(); // its metadata server (nothing else of it is left)
  }
});

test('with bareVms, a VM created on the fake Compute Engine API lands on a bare worker with the service account it asked for', { skip }, async () => {
  for (const worker of [0, 1]) await ok(worker, 'echo old > /var/lib/recogdrive/old-vm');
  const cloud = await startFakeTpuCloud(bed, { bareVms: true, serviceAccount: { email: '123-compute@developer.gserviceaccount.com', token: 'ya29.default' } });
  const instances = new InstancesClient(ComputeEngineComputeProvider.fakeClientOptions(cloud.gce.port));
  try {
    const insert = (name: string, email: string) =>
      instances.insert({
        project: PROJECT,
        zone: ZONES[0],
        instanceResource: {
          name,
          machineType: `zones/${ZONES[0]}/machineTypes/n2-standard-8`,
          disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: 'projects/cos-cloud/global/images/family/cos-stable', diskSizeGb: 50 } }],
          networkInterfaces: [{}],
          serviceAccounts: [{ email, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }],
        },
      });
    await insert('vm-default', 'default');
    await insert('vm-trainer', 'trainer@p.iam.gserviceaccount.com');
    const emailOf = async (worker: number): Promise<string> =>
      (await fetch(`http://${bed.workers[worker]!.metadataHost}/computeMetadata/v1/instance/service-accounts/default/email`, { headers: { 'Metadata-Flavor': 'Google' } })).text();
    const deadline = Date.now() + 30_000;
    while ((await emailOf(0)) !== '123-compute@developer.gserviceaccount.com' || (await emailOf(1)) !== 'trainer@p.iam.gserviceaccount.com') {
      assert.ok(Date.now() < deadline, `the VMs' service accounts: ${await emailOf(0)}, ${await emailOf(1)}`);
      await sleep(100);
    }
    assert.deepEqual([cloud.gceSlotOf(`projects/${PROJECT}/zones/${ZONES[0]}/instances/vm-default`), cloud.gceSlotOf(`projects/${PROJECT}/zones/${ZONES[0]}/instances/vm-trainer`)], [0, 1]);
    for (const worker of [0, 1]) assert.equal(await ok(worker, 'ls -A /var/lib/recogdrive; docker images --quiet'), '', `worker ${worker} is a new VM`);
  } finally {
    await instances.close();
    await cloud.stop();
  }
});

test('stop() leaves no gcsfuse process, mount, VM process or container', { skip }, async () => {
  await importImage(1);
  await ok(1, MOUNT);
  const gcsfuse = gcsfusePids(1);
  assert.ok(gcsfuse.length > 0);
  assert.ok(gcsfuseMountsOf(BUCKET).length > 0, 'the mount is seen from its VM');
  await ok(1, shellJoin(['docker', 'run', '-d', '-v', `/mnt/artifacts/${BUCKET}:/out`, IMAGE, '/bin/sh', '-c', 'while :; do :; done']));

  await bed.stop();

  assert.ok(gcsfuse.every((pid) => !isAlive(pid)), 'gcsfuse ended');
  assert.deepEqual(gcsfuseMountsOf(BUCKET), []);
  assert.deepEqual([bed.vmProcesses(0), bed.vmProcesses(1)], [[], []]);
  assert.equal((await bed.docker(1, ['ps', '-a', '--quiet'])).stdout.trim(), '');
  assert.equal(listProcesses().some((p) => p.cmdline.includes(`${bed.dir}/`)), false, 'no process of the test bed');
});
