/**
 * The bring-up of bare VMs (activities/bring-up/), step by step over real SSH, on test-bed VMs
 * that start with nothing: the image comes from an authenticated registry with the VM's own
 * service-account token, the code archive, models and datasets from the Cloud Storage emulator
 * (copied, or mounted with gcsfuse), and the runs' bucket is mounted where the launch expects it.
 * Then what no retry can fix fails as permanent, naming the step.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { bringUpSlice, BringUpFailed } from '../../activities/bring-up/run.ts';
import { loadSshKey } from '../../activities/ssh/credentials.ts';
import { SshPool, type SshEndpoint } from '../../activities/ssh/pool.ts';
import type { BringUpSpec } from '../../pipeline/bring-up.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { seedDataset } from '../../workers/local-input.ts';
import { archiveFolder, startBareWorld, uploadFolder, VM_ACCOUNT, type BareWorld } from '../helpers/bare-world.ts';
import { testbedSkip } from './requirements.ts';

const run = promisify(execFile);
const skip = testbedSkip();
let world: BareWorld;
let pool: SshPool;
let dir: string;
let archiveMd5: string;

const endpoint = (worker: number): SshEndpoint => {
  const w = world.bed.workers[worker]!;
  return { host: w.address, port: w.port, user: w.user, hostKeys: [w.hostKey] };
};

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'rd-bring-up-'));
  world = await startBareWorld({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-bring-up'), buckets: ['code', 'data', 'runs'], countVmTraffic: true });
  const checkout = await seedDataset(join(dir, 'checkout'));
  await archiveFolder(checkout.dir, join(dir, 'recogdrive.tar.gz'), ['models', 'tests/dummy_data']);
  await world.storage.bucket('code').upload(join(dir, 'recogdrive.tar.gz'), { destination: 'releases/recogdrive.tar.gz' });
  archiveMd5 = (await world.storage.bucket('code').file('releases/recogdrive.tar.gz').getMetadata())[0].md5Hash!;
  await uploadFolder(world.storage, join(checkout.dir, 'models'), 'data', 'models');
  await uploadFolder(world.storage, join(checkout.dir, 'tests', 'dummy_data'), 'data', 'dummy_data');
  const key = await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: world.bed.privateKeyFile });
  pool = new SshPool({ key: key!, connectDeadlineMs: 10_000, keepaliveIntervalMs: 5_000, maxConnections: 8, maxChannelsPerConnection: 4 });
});

after(async () => {
  pool?.close();
  await world?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function spec(overrides: Partial<BringUpSpec> = {}): BringUpSpec {
  return {
    image: `${world.image.slice(0, world.image.lastIndexOf(':'))}@${world.digest}`,
    registry: world.registry.host,
    repoDir: '/var/lib/recogdrive/repo',
    code: { kind: 'archive', uri: 'gs://code/releases/recogdrive.tar.gz', md5: archiveMd5 },
    data: [
      { uri: 'gs://data/models', dir: '/var/lib/recogdrive/repo/models', mode: 'copy' },
      { uri: 'gs://data/dummy_data', dir: '/var/lib/recogdrive/repo/tests/dummy_data', mode: 'mount' },
    ],
    buckets: ['runs'],
    ...overrides,
  };
}

async function bringUp(workers: number[], s: BringUpSpec): Promise<{ logs: string[]; error?: BringUpFailed }> {
  const logs = workers.map(() => '');
  try {
    await bringUpSlice(workers.map(endpoint), s, {
      pool,
      sudo: true,
      log: async (worker, text) => {
        logs[worker] += text;
      },
      signal: new AbortController().signal,
    });
    return { logs };
  } catch (error) {
    if (!(error instanceof BringUpFailed)) throw error;
    return { logs, error };
  }
}

/** Runs a shell command inside a worker's VM over SSH (what a container there would see is the VM's view). */
async function onVm(worker: number, script: string): Promise<{ code: number; stdout: string }> {
  const result = await pool.exec(endpoint(worker), ['bash', '-c', script], { mergeStderr: true });
  return { code: result.code, stdout: result.stdout };
}

test('two bare VMs are brought up: registry login with their own account, the image by digest, the archive unpacked, data copied and mounted, the bucket mounted; a second bring-up redoes nothing', { skip, timeout: 300_000 }, async () => {
  for (const worker of [0, 1]) {
    world.bed.setServiceAccount(worker, VM_ACCOUNT);
    // Bare before: no image, no checkout, no mount, no docker credentials.
    assert.equal((await world.bed.docker(worker, ['images', '-q'])).stdout.trim(), '', 'no image');
    assert.deepEqual((await onVm(worker, 'ls -A /var/lib/recogdrive /mnt/artifacts')).stdout.split('\n').filter((l) => l !== '' && !l.endsWith(':')), [], 'nothing on the VM');
  }
  const first = await bringUp([0, 1], spec());
  assert.equal(first.error, undefined, first.logs.join('\n'));
  for (const worker of [0, 1]) {
    const log = first.logs[worker]!;
    for (const step of ['runtime', 'tools', 'login', 'image', 'code', 'data', 'bucket']) assert.match(log, new RegExp(`\\] ${step}: .*\\n(?:.*\\n)*?.*\\] ${step}: done in`), `${step} on worker ${worker}:\n${log}`);
    assert.match(log, /logged in to 127\.0\.0\.1:\d+/);
    assert.match(log, /pulled 127\.0\.0\.1:\d+\/recogdrive\/recogdrive-tpu@sha256:/);
    assert.ok(!log.includes(VM_ACCOUNT.token), 'the token is never in the log');
    // What the stage's container will see: the checkout with its data, and the bucket.
    const view = await onVm(
      worker,
      'cat /var/lib/recogdrive/repo/data/meta.json >/dev/null && ls /var/lib/recogdrive/repo/models/InternVL3-2B | head -1 && ls /var/lib/recogdrive/repo/tests/dummy_data | head -1 && mountpoint -q /var/lib/recogdrive/repo/tests/dummy_data && mountpoint -q /mnt/artifacts/runs && echo ok',
    );
    assert.match(view.stdout, /ok$/m, view.stdout);
    assert.notEqual((await onVm(worker, 'mountpoint -q /var/lib/recogdrive/repo/models')).code, 0, 'copied models are on local disk, not a mount');
  }
  // The image is the registry's, by digest, on each VM's own storage.
  const inspected = await world.bed.docker(0, ['image', 'inspect', '--format', '{{.Digest}}', spec().image]);
  assert.equal(inspected.stdout.trim(), world.digest);
  // A file written into the bucket mount by a container on VM 0 is an object in the bucket.
  const write = await onVm(0, `docker run --rm -v /mnt/artifacts/runs:/out ${spec().image} /bin/bash -c 'mkdir -p /out/probe && echo hello > /out/probe/f.txt'`);
  assert.equal(write.code, 0, write.stdout);
  const [content] = await world.storage.bucket('runs').file('probe/f.txt').download();
  assert.equal(content.toString(), 'hello\n');

  const again = await bringUp([0], spec());
  assert.equal(again.error, undefined, again.logs[0]);
  for (const line of ['already on the VM', 'code already at', 'already at /var/lib/recogdrive/repo/models', 'already mounted at /var/lib/recogdrive/repo/tests/dummy_data', 'gs://runs already mounted']) {
    assert.ok(again.logs[0]!.includes(line), `${line}:\n${again.logs[0]}`);
  }
});

test('a VM without a service account fails the login step as permanent, naming the role it needs', { skip, timeout: 120_000 }, async () => {
  await world.bed.resetWorker(1);
  const { error, logs } = await bringUp([0, 1], spec({ data: [], buckets: [] }));
  assert.ok(error !== undefined, logs.join('\n'));
  assert.equal(error.step, 'login');
  assert.equal(error.worker, 1);
  assert.equal(error.permanent, true);
  assert.match(error.message, /the VM has no service account: .*roles\/artifactregistry\.reader/);
});

test('a service account the registry refuses, an image not in the registry, a missing data prefix and a changed archive fail as permanent; an unreachable registry does not', { skip, timeout: 180_000 }, async () => {
  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, { email: VM_ACCOUNT.email, token: 'ya29.some-other-token' });
  const refused = await bringUp([1], spec({ data: [], buckets: [] }));
  assert.equal(refused.error?.step, 'login', refused.logs[0]);
  assert.equal(refused.error?.permanent, true, refused.logs[0]);
  assert.match(refused.error!.message, /refused the VM's service account: grant it roles\/artifactregistry\.reader/);
  assert.ok(!refused.error!.message.includes('ya29.some-other-token'));

  world.bed.setServiceAccount(1, VM_ACCOUNT);
  // An unreachable registry can heal: transient (the activity retries it), unlike a refusal.
  const unreachable = await bringUp([1], spec({ registry: '127.0.0.1:9', data: [], buckets: [] }));
  assert.equal(unreachable.error?.step, 'login', unreachable.logs[0]);
  assert.equal(unreachable.error?.permanent, false, unreachable.logs[0]);
  assert.match(unreachable.error!.message, /cannot log in to 127\.0\.0\.1:9/);
  const unknown = `${world.registry.host}/recogdrive/recogdrive-tpu@sha256:${'0'.repeat(64)}`;
  const missingImage = await bringUp([1], spec({ image: unknown, data: [], buckets: [] }));
  assert.equal(missingImage.error?.step, 'image', missingImage.logs[0]);
  assert.equal(missingImage.error?.permanent, true);
  assert.match(missingImage.error!.message, /is not in its registry/);

  const missingData = await bringUp([1], spec({ data: [{ uri: 'gs://data/no-such-prefix', dir: '/var/lib/recogdrive/repo/models', mode: 'copy' }], buckets: [] }));
  assert.equal(missingData.error?.step, 'data', missingData.logs[0]);
  assert.equal(missingData.error?.permanent, true);
  assert.match(missingData.error!.message, /gs:\/\/data\/no-such-prefix has no objects/);

  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, VM_ACCOUNT);
  const changed = await bringUp([1], spec({ code: { kind: 'archive', uri: 'gs://code/releases/recogdrive.tar.gz', md5: 'AAAAAAAAAAAAAAAAAAAAAA==' }, data: [], buckets: [] }));
  assert.equal(changed.error?.step, 'code', changed.logs[0]);
  assert.equal(changed.error?.permanent, true);
  assert.match(changed.error!.message, /changed since the run was planned/);
  assert.equal((await onVm(1, 'test -e /var/lib/recogdrive/repo')).code, 1, 'nothing half-unpacked is left as the checkout');
});

test('a full disk while copying data fails as permanent and leaves no partial copy as the data', { skip, timeout: 180_000 }, async () => {
  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, VM_ACCOUNT);
  // Worker 1's local disk for the models: 64 KiB, smaller than the models.
  const big = join(dir, 'big.bin');
  await writeFile(big, Buffer.alloc(256 * 1024, 7));
  await world.storage.bucket('data').upload(big, { destination: 'big-model/weights.bin' });
  const small = await onVm(1, 'mkdir -p /var/lib/recogdrive/repo/models && mount -t tmpfs -o size=64k tmpfs /var/lib/recogdrive/repo/models && echo mounted');
  assert.match(small.stdout, /mounted/, small.stdout);
  const full = await bringUp([1], spec({ code: undefined, repoDir: '/var/lib/recogdrive/repo/models', data: [{ uri: 'gs://data/big-model', dir: '/var/lib/recogdrive/repo/models/big', mode: 'copy' }], buckets: [] }));
  assert.equal(full.error?.step, 'data', full.logs[0]);
  assert.equal(full.error?.permanent, true);
  assert.match(full.error!.message, /disk is full while copying gs:\/\/data\/big-model/);
  assert.equal((await onVm(1, 'test -e /var/lib/recogdrive/repo/models/big')).code, 1);
  await onVm(1, 'umount /var/lib/recogdrive/repo/models');
});

test('a bucket the VM may not use fails the mount step as permanent, naming the role', { skip, timeout: 120_000 }, async () => {
  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, VM_ACCOUNT);
  // Cloud Storage answers 403 to everything about the bucket, as it does for an account without a role on it.
  world.vmTraffic!.failNext((request) => request.url.includes('/b/runs'), 403, 50, 'recogdrive-vm@test-project.iam.gserviceaccount.com does not have storage.objects.list access to the Google Cloud Storage bucket.');
  try {
    const { error, logs } = await bringUp([1], spec({ code: undefined, repoDir: '/var/lib/recogdrive', data: [], buckets: ['runs'] }));
    assert.equal(error?.step, 'bucket', logs[0]);
    assert.equal(error?.permanent, true, logs[0]);
    assert.match(error!.message, /may not use gs:\/\/runs \(it needs roles\/storage\.objectUser on it\)/);
    assert.notEqual((await onVm(1, 'mountpoint -q /mnt/artifacts/runs')).code, 0, 'nothing left mounted');
  } finally {
    world.vmTraffic!.reset();
  }
});

test('uploads interrupted by a storage outage are retried: every file a container writes through the mount arrives whole', { skip, timeout: 180_000 }, async () => {
  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, VM_ACCOUNT);
  const up = await bringUp([1], spec({ code: undefined, repoDir: '/var/lib/recogdrive', data: [], buckets: ['runs'] }));
  assert.equal(up.error, undefined, up.logs[0]);
  // The next 6 uploads (object creations) get 503 Service Unavailable.
  world.vmTraffic!.failNext((request) => request.method === 'POST' && request.url.includes('/upload/'), 503, 6);
  const write = await onVm(1, `docker run --rm -v /mnt/artifacts/runs:/out ${spec().image} /bin/bash -c 'mkdir -p /out/outage && for i in $(seq 1 20); do head -c 100000 /dev/zero | tr "\\0" "x" > /out/outage/f-$i.bin; done && echo wrote'`);
  assert.match(write.stdout, /wrote/, write.stdout);
  const files = (await world.storage.bucket('runs').getFiles({ prefix: 'outage/' }))[0].filter((f) => !f.name.endsWith('/'));
  assert.equal(files.length, 20);
  for (const file of files) assert.equal(Number(file.metadata.size), 100_000, file.name);
  assert.ok(world.vmTraffic!.requests().filter((r) => r.method === 'POST' && r.url.includes('/upload/')).length >= 26, 'the refused uploads were sent again');
});

test('code from a git URL at a pinned commit is checked out; a commit the repository lacks fails as permanent', { skip, timeout: 120_000 }, async () => {
  await world.bed.resetWorker(1);
  world.bed.setServiceAccount(1, VM_ACCOUNT);
  const repo = join(dir, 'git-repo');
  const git = (...args: string[]) => run('git', ['-C', repo, ...args]);
  await run('git', ['init', '-q', repo]);
  await writeFile(join(repo, 'README.md'), 'first\n');
  await git('add', '.');
  await git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-qm', 'first');
  const first = (await git('rev-parse', 'HEAD')).stdout.trim();
  await writeFile(join(repo, 'README.md'), 'second\n');
  await git('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-qam', 'second');
  const at = { code: { kind: 'git' as const, url: `file://${repo}`, commit: first }, data: [], buckets: [] };
  const { error, logs } = await bringUp([1], spec(at));
  assert.equal(error, undefined, logs[0]);
  assert.equal((await onVm(1, 'cat /var/lib/recogdrive/repo/README.md')).stdout, 'first\n', 'the pinned commit, not the branch head');
  const missing = await bringUp([1], spec({ ...at, code: { ...at.code, commit: 'f'.repeat(40) } }));
  assert.equal(missing.error?.step, 'code', missing.logs[0]);
  assert.equal(missing.error?.permanent, true);
  assert.match(missing.error!.message, /commit f{40} is not in file:/);
});
