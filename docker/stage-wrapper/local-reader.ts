/**
 * An OutputReader (pipeline/verify/reader.ts) over a local folder, for running the contract's
 * output check next to the data. In the old `inside` layout the protocol's own files
 * (`_recogdrive/`, `DONE.json` at the output root) are hidden, as they are not outputs.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMarkerPath as isProtocolPath, type MarkerLayout } from '../../pipeline/markers.ts';
import type { ObjectStat, OutputEntry, OutputReader } from '../../pipeline/verify/reader.ts';

/** "Not there" for a reader; any other error is real trouble and is thrown. */
const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

export class LocalOutputReader implements OutputReader {
  private readonly root: string;
  private readonly isMarkerPath: (path: string) => boolean;

  constructor(root: string, layout: MarkerLayout) {
    this.root = root;
    this.isMarkerPath = layout === 'inside' ? isProtocolPath : () => false;
  }

  async list(path: string): Promise<OutputEntry[]> {
    const rel = normalize(path);
    if (rel === undefined || (rel !== '' && this.isMarkerPath(rel))) return [];
    const entries = await readdir(join(this.root, rel), { withFileTypes: true }).catch(absent([]));
    const listed = await Promise.all(
      entries
        .filter((e) => rel !== '' || !this.isMarkerPath(e.name))
        .map(async (e) => ({
          name: e.name,
          dir: e.isDirectory() || (e.isSymbolicLink() && (await stat(join(this.root, rel, e.name)).then((s) => s.isDirectory(), () => false))),
        })),
    );
    return listed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async readText(path: string): Promise<string | undefined> {
    const rel = normalize(path);
    if (rel === undefined || rel === '' || this.isMarkerPath(rel)) return undefined;
    return readFile(join(this.root, rel), 'utf8').catch(absent(undefined));
  }

  async stat(path: string): Promise<ObjectStat | undefined> {
    const rel = normalize(path);
    if (rel === undefined || rel === '' || this.isMarkerPath(rel)) return undefined;
    const found = await stat(join(this.root, rel)).catch(absent(undefined));
    return found?.isFile() ? { size: found.size } : undefined;
  }
}

/** The path relative to the root without empty or `.` segments; undefined when it would leave the root. */
function normalize(path: string): string | undefined {
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  return segments.includes('..') ? undefined : segments.join('/');
}

function absent<T>(value: T): (error: NodeJS.ErrnoException) => T {
  return (error) => {
    if (ABSENT.has(error.code ?? '')) return value;
    throw error;
  };
}
