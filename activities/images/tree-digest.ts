/**
 * The digest of the embedded default's "image": the local backend runs the stage simulator and
 * the stage wrapper from this checkout instead of a container image, so their files (and the
 * pipeline code the wrapper imports) are what a digest must cover.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** "sha256:<hex>" over every file's path (relative to `base`) and content, in path order. */
export async function treeDigest(base: string, dirs: readonly string[]): Promise<string> {
  const files = (await Promise.all(dirs.map(filesUnder))).flat().sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${relative(base, file)}\0`);
    hash.update(await readFile(file));
    hash.update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

// Read with the rest of an image reference now; re-exported for the modules that took it from here.
export { pinnedDigest } from '../../pipeline/image-reference.ts';
