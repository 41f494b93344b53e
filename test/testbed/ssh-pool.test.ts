/** The SSH pool against real sshd: pinned host keys, retrying a host that is not up yet, a connection cap. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSshKey } from '../../activities/ssh/credentials.ts';
import { SshUnreachable } from '../../activities/ssh/errors.ts';
import { SshPool, type SshEndpoint, type SshSettings } from '../../activities/ssh/pool.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let dir: string;
before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'rd-ssh-pool-'));
  bed = await startTestbed({ workers: 2, dir });
});
after(async () => {
  await bed?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function pool(settings: Partial<SshSettings> = {}): Promise<SshPool> {
  const key = await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile });
  return new SshPool({ key: key!, connectDeadlineMs: 20_000, keepaliveIntervalMs: 5_000, maxConnections: 8, maxChannelsPerConnection: 8, ...settings });
}

const endpoint = (worker: number, hostKeys = [bed.workers[worker]!.hostKey]): SshEndpoint => ({
  host: bed.workers[worker]!.address,
  port: bed.workers[worker]!.port,
  user: bed.workers[worker]!.user,
  hostKeys,
});

test('argv reaches the remote command as separate literal words and exit codes come back', { skip }, async () => {
  const ssh = await pool();
  try {
    const result = await ssh.exec(endpoint(0), ['sh', '-c', 'printf "%s|" "$@"; exit 3', 'sh', 'a b', '$(id)', "it's", '; echo no']);
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "a b|$(id)|it's|; echo no|");
  } finally {
    ssh.close();
  }
});

test('a host presenting another key is refused at once, without retries', { skip }, async () => {
  const ssh = await pool();
  try {
    const started = Date.now();
    const wrongKey = bed.workers[1]!.hostKey; // a real key, but worker 1's
    await assert.rejects(ssh.exec(endpoint(0, [wrongKey]), ['true']), (error: Error & { type?: string }) => {
      assert.equal(error.type, 'SshHostKeyMismatch');
      assert.doesNotMatch(error.message, /BEGIN OPENSSH PRIVATE KEY/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'no connect retries for a key mismatch');
    await assert.rejects(ssh.exec(endpoint(0, []), ['true']), /no pinned SSH host key/);
  } finally {
    ssh.close();
  }
});

test('a host that is not up yet is retried until it answers; one that never does fails after the deadline', { skip }, async () => {
  const ssh = await pool({ connectDeadlineMs: 30_000 });
  try {
    await bed.stopWorker(1);
    const pending = ssh.exec(endpoint(1), ['echo', 'up']);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await bed.startWorker(1);
    assert.equal((await pending).stdout.trim(), 'up');

    await bed.stopWorker(1);
    ssh.forget(endpoint(1));
    await assert.rejects(ssh.exec(endpoint(1), ['true'], { connectDeadlineMs: 2000 }), SshUnreachable);
  } finally {
    await bed.startWorker(1);
    ssh.close();
  }
});

test('commands beyond the connection cap wait for a free channel instead of failing', { skip }, async () => {
  const ssh = await pool({ maxConnections: 1, maxChannelsPerConnection: 2 });
  try {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => ssh.exec(endpoint(0), ['sh', '-c', `sleep 0.3; echo ${i}`])));
    assert.deepEqual(results.map((r) => r.stdout.trim()), ['0', '1', '2', '3', '4', '5']);
    assert.equal(ssh.connectionCount(), 1);
  } finally {
    ssh.close();
  }
});

test('the SSH key never shows in logs or serialised state', { skip }, async () => {
  const key = await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile });
  assert.equal(JSON.stringify({ key }), '{"key":"[ssh key]"}');
  assert.equal(String(key), '[ssh key]');
  await assert.rejects(loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: join(dir, 'missing') }), (error: Error) => {
    assert.match(error.message, /cannot read RECOGDRIVE_SSH_KEY_FILE/);
    return true;
  });
});
