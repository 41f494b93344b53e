/**
 * The launch fence script (activities/execution/host-fence.ts) run by this machine's sh, as a
 * worker host runs it over SSH: the highest (attempt, try) wins, a tombstone closes an attempt,
 * and a fenced command runs only for the try the fence names.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { claimFence, FENCE_EXIT, fencedCommand, tombstoneFence } from '../../activities/execution/host-fence.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rd-fence-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(argv: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH, HOME: dir, RECOGDRIVE_FENCE_DIR: join(dir, 'fences') }, timeout: 20_000 }, (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout });
    });
  });
}

test('a newer try takes the fence; the older one can neither take it back nor run under it', async () => {
  assert.equal((await run(claimFence('c1', { attempt: 1, try: 1 }))).code, 0);
  assert.equal((await run(claimFence('c1', { attempt: 1, try: 2 }))).code, 0);
  assert.deepEqual(await run(claimFence('c1', { attempt: 1, try: 1 })), { code: FENCE_EXIT.superseded, stdout: '1 2\n' });
  assert.deepEqual(await run(fencedCommand('c1', { attempt: 1, try: 1 }, ['echo', 'ran'])), { code: FENCE_EXIT.superseded, stdout: '1 2\n' });
  assert.deepEqual(await run(fencedCommand('c1', { attempt: 1, try: 2 }, ['sh', '-c', 'echo "$1"; exit 4', 'sh', '$(id) a'])), { code: 4, stdout: '$(id) a\n' });
});

test('a tombstone refuses every try of its attempt (and earlier ones), not a later attempt', async () => {
  assert.equal((await run(claimFence('c2', { attempt: 2, try: 1 }))).code, 0);
  assert.equal((await run(tombstoneFence('c2', 2))).code, 0);
  assert.equal((await run(claimFence('c2', { attempt: 2, try: 7 }))).code, FENCE_EXIT.superseded);
  assert.equal((await run(claimFence('c2', { attempt: 1, try: 9 }))).code, FENCE_EXIT.superseded);
  assert.equal((await run(claimFence('c2', { attempt: 3, try: 1 }))).code, 0);
  // A late stop of attempt 2 does not lower the fence below attempt 3.
  assert.equal((await run(tombstoneFence('c2', 2))).code, 0);
  assert.equal(await readFile(join(dir, 'fences', 'c2'), 'utf8'), '3 1\n');
});

test('a process the fenced command leaves behind (as docker run leaves conmon) does not keep the fence locked', async () => {
  assert.equal((await run(claimFence('c3', { attempt: 1, try: 1 }))).code, 0);
  assert.equal((await run(fencedCommand('c3', { attempt: 1, try: 1 }, ['sh', '-c', 'sleep 30 >/dev/null 2>&1 &']))).code, 0);
  const started = Date.now();
  assert.equal((await run(tombstoneFence('c3', 1))).code, 0);
  assert.ok(Date.now() - started < 5_000, 'the tombstone did not wait for the background process');
});
