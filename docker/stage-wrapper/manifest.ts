/**
 * MANIFEST.tsv: every file of a stage's outputs, "<relative path>\t<bytes>\n", sorted by path
 * (byte-wise on the UTF-8 path, the order Cloud Storage lists in), the protocol's own files left out.
 * Paths are written as they are (a reader splits a line at its last tab); only a newline or a
 * carriage return in a path, which a line cannot hold, is written as the two characters \n or \r.
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMarkerPath, type ManifestSummary, type MarkerLayout } from '../../pipeline/markers.ts';

export interface ManifestEntry {
  path: string;
  bytes: number;
}

/** Stats in flight at once per folder: a gcsfuse mount answers each with a round trip. */
const STAT_CONCURRENCY = 32;

/**
 * Every regular file below `root` (a symbolic link counts as the file it points to; linked folders
 * are not followed). In the old `inside` layout the protocol's own files at the root are left out.
 */
export async function listOutputFiles(root: string, layout: MarkerLayout): Promise<ManifestEntry[]> {
  const skip = (path: string) => layout === 'inside' && isMarkerPath(path);
  const files: ManifestEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries: Dirent[] = await readdir(rel === '' ? root : join(root, rel), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (rel === '' && error.code === 'ENOENT') return [];
      throw error;
    });
    const folders: string[] = [];
    const pending = entries
      .map((entry) => ({ entry, path: rel === '' ? entry.name : `${rel}/${entry.name}` }))
      .filter(({ path }) => rel !== '' || !skip(path));
    for (let i = 0; i < pending.length; i += STAT_CONCURRENCY) {
      await Promise.all(
        pending.slice(i, i + STAT_CONCURRENCY).map(async ({ entry, path }) => {
          if (entry.isDirectory()) {
            folders.push(path);
          } else if (entry.isFile()) {
            files.push({ path, bytes: (await stat(join(root, path))).size });
          } else if (entry.isSymbolicLink()) {
            const target = await stat(join(root, path)).catch(() => undefined);
            if (target?.isFile()) files.push({ path, bytes: target.size });
          }
        }),
      );
    }
    for (const folder of folders) await walk(folder);
  };
  await walk('');
  return files.sort((a, b) => Buffer.compare(Buffer.from(a.path, 'utf8'), Buffer.from(b.path, 'utf8')));
}

/** The manifest's exact bytes and its summary for DONE.json; `list` is where it is kept, relative to the markers. */
export function buildManifest(files: readonly ManifestEntry[], list: string): { content: Buffer; summary: ManifestSummary } {
  const content = Buffer.from(files.map((f) => `${escapePath(f.path)}\t${f.bytes}\n`).join(''), 'utf8');
  return {
    content,
    summary: {
      files: files.length,
      bytes: files.reduce((sum, f) => sum + f.bytes, 0),
      digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
      list,
    },
  };
}

function escapePath(path: string): string {
  return path.replace(/[\n\r]/g, (c) => (c === '\n' ? '\\n' : '\\r'));
}
