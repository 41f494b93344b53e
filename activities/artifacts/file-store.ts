/** Artifacts in a local directory (file:// URIs): the embedded default's artifact store. */
import { access, constants, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactStore, OutputEntry, OutputReader } from './store.ts';

export function filePathOf(uri: string): string {
  if (!uri.startsWith('file://')) throw new Error(`not a file:// URI: ${uri}`);
  return uri.slice('file://'.length);
}

export class FileArtifactStore implements ArtifactStore {
  readonly schemes = ['file'] as const;

  reader(uri: string): OutputReader {
    const root = filePathOf(uri);
    return {
      async list(path: string): Promise<OutputEntry[]> {
        const entries = await readdir(join(root, path), { withFileTypes: true }).catch(() => []);
        return entries.map((e) => ({ name: e.name, dir: e.isDirectory() })).sort((a, b) => a.name.localeCompare(b.name));
      },
      readText: (path: string) => readFile(join(root, path), 'utf8').catch(() => undefined),
    };
  }

  async checkWritable(rootUri: string): Promise<void> {
    const root = filePathOf(rootUri);
    try {
      await mkdir(root, { recursive: true });
      await access(root, constants.W_OK);
    } catch (error) {
      throw new Error(`artifact root ${rootUri} is not a writable directory: ${(error as Error).message}`, { cause: error });
    }
  }
}
