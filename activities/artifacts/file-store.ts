/** Artifacts in a local directory (file:// URIs): the embedded default's artifact store. */
import { access, appendFile, constants, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

  async writeText(uri: string, text: string): Promise<void> {
    const path = filePathOf(uri);
    await mkdir(dirname(path), { recursive: true });
    // Replace atomically: a reader (logs --follow) never sees a half-written file.
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  }

  async appendText(uri: string, text: string): Promise<void> {
    const path = filePathOf(uri);
    await mkdir(dirname(path), { recursive: true });
    await appendFile(path, text);
  }

  readText(uri: string): Promise<string | undefined> {
    return readFile(filePathOf(uri), 'utf8').catch(() => undefined);
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
