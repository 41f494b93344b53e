import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContainerState, parseContainerTime, parseTimedLines } from '../../activities/execution/docker-cli.ts';
import { keysFor, parseKnownHosts } from '../../activities/ssh/known-hosts.ts';

test('container state parses from Docker and from Podman output', () => {
  const docker = parseContainerState('abc|exited|137|true|2026-11-25T04:33:07.123456789Z|2026-11-25T04:35:00Z\n');
  assert.deepEqual(docker, {
    id: 'abc',
    status: 'exited',
    exitCode: 137,
    oomKilled: true,
    startedAt: Date.parse('2026-11-25T04:33:07.123Z'),
    finishedAt: Date.parse('2026-11-25T04:35:00Z'),
  });
  const podman = parseContainerState('def|running|0|false|2026-11-25 04:33:07.5 +0000 UTC|0001-01-01 00:00:00 +0000 UTC');
  assert.equal(podman?.status, 'running');
  assert.equal(podman?.startedAt, Date.parse('2026-11-25T04:33:07.500Z'));
  assert.equal(podman?.finishedAt, undefined, 'the zero time means not finished');
  assert.equal(parseContainerState('Error: no such container'), undefined);
});

test('container times with an offset are converted to UTC', () => {
  assert.equal(parseContainerTime('2026-11-25 06:33:07 +0200 EET'), Date.parse('2026-11-25T04:33:07Z'));
});

test('timestamped log lines order exactly even when timestamps have different precision', () => {
  const lines = parseTimedLines('2026-11-25T04:33:07.1Z first\n2026-11-25T04:33:07.100000001Z second line\nnot a log line\n2026-11-25T04:33:07.09+00:00 earlier\n');
  assert.deepEqual(lines.map((l) => l.text), ['first', 'second line', 'earlier']);
  assert.ok(lines[1]!.key > lines[0]!.key);
  assert.ok(lines[2]!.key < lines[0]!.key);
});

test('known_hosts entries pin keys per host and port; hashed and marker lines are skipped', () => {
  const entries = parseKnownHosts(
    [
      '# comment',
      '[127.0.0.1]:2222 ssh-ed25519 AAAAkey1',
      '10.0.0.5,tpu-1 ssh-ed25519 AAAAkey2',
      '|1|hashed= ssh-ed25519 AAAAkey3',
      '@revoked 10.0.0.9 ssh-ed25519 AAAAkey4',
    ].join('\n'),
  );
  assert.deepEqual(keysFor(entries, '127.0.0.1', 2222), ['ssh-ed25519 AAAAkey1']);
  assert.deepEqual(keysFor(entries, '127.0.0.1', 22), []);
  assert.deepEqual(keysFor(entries, 'tpu-1', 22), ['ssh-ed25519 AAAAkey2']);
  assert.deepEqual(keysFor(entries, '10.0.0.9', 22), []);
});
