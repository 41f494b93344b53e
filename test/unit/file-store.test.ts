/** The file:// artifact store's create-once and stat, as the gs:// store does them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';

const store = new FileArtifactStore();

async function withRoot(check: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'rd-file-store-'));
  try {
    await check(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('createIfAbsent creates parent folders; a second call returns false and leaves the first content', async () => {
  await withRoot(async (root) => {
    const uri = `file://${root}/runs/r1/stage1/DONE.json`;
    assert.equal(await store.createIfAbsent(uri, 'first'), true);
    assert.equal(await store.createIfAbsent(uri, 'second'), false);
    assert.equal(await readFile(join(root, 'runs/r1/stage1/DONE.json'), 'utf8'), 'first');
  });
});

test('of concurrent createIfAbsent calls exactly one wins and its content stands', async () => {
  await withRoot(async (root) => {
    const uri = `file://${root}/claim`;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.createIfAbsent(uri, `writer-${i}`)));
    assert.equal(results.filter(Boolean).length, 1, JSON.stringify(results));
    assert.equal(await store.readText(uri), `writer-${results.indexOf(true)}`);
  });
});

test('createIfAbsent throws errors other than "already exists" (a file where a folder must be)', async () => {
  await withRoot(async (root) => {
    await store.writeText(`file://${root}/plain`, 'x');
    await assert.rejects(store.createIfAbsent(`file://${root}/plain/below/DONE.json`, 'x'), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'ENOTDIR');
      return true;
    });
  });
});

test('stat gives the size in bytes; undefined when absent, for a folder, or below a file (store and reader)', async () => {
  await withRoot(async (root) => {
    await store.writeText(`file://${root}/out/f.txt`, 'héllo'); // 6 bytes in UTF-8
    assert.deepEqual(await store.stat(`file://${root}/out/f.txt`), { size: 6 });
    assert.equal(await store.stat(`file://${root}/out/missing.txt`), undefined);
    assert.equal(await store.stat(`file://${root}/out`), undefined);
    assert.equal(await store.stat(`file://${root}/out/f.txt/below`), undefined);
    const reader = store.reader(`file://${root}/out`);
    assert.deepEqual(await reader.stat('f.txt'), { size: 6 });
    assert.equal(await reader.stat('missing.txt'), undefined);
  });
});

test('reads of absent paths are absences (undefined, an empty listing); any other read error is thrown, never taken for absence', async () => {
  await withRoot(async (root) => {
    await store.writeText(`file://${root}/out/f.txt`, 'x');
    const reader = store.reader(`file://${root}/out`);
    assert.equal(await store.readText(`file://${root}/out/missing.json`), undefined);
    assert.equal(await store.readText(`file://${root}/out/f.txt/below.json`), undefined);
    assert.equal(await reader.readText('missing.json'), undefined);
    assert.deepEqual(await reader.list('missing'), []);
    // A symlink loop (ELOOP) stands for an I/O error (EIO, EACCES, which root would not get) as any user.
    await symlink(join(root, 'out', 'loop'), join(root, 'out', 'loop'));
    const eloop = (error: NodeJS.ErrnoException) => error.code === 'ELOOP';
    await assert.rejects(store.readText(`file://${root}/out/loop`), eloop);
    await assert.rejects(reader.readText('loop'), eloop);
    await assert.rejects(reader.list('loop'), eloop);
    await assert.rejects(reader.stat('loop'), eloop);
  });
});
