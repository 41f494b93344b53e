/** The file:// artifact store's create-once and stat, as the gs:// store does them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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
