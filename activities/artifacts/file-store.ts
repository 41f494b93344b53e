/** Artifacts in a local directory (file:// URIs): the embedded default's artifact store. */
import { access, appendFile, constants, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ArtifactStore, ObjectStat, OutputEntry, OutputReader } from './store.ts';

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
        const entries = await readdir(join(root, path), { withFileTypes: true }).catch(absentAs([]));
        return entries.map((e) => ({ name: e.name, dir: e.isDirectory() })).sort((a, b) => a.name.localeCompare(b.name));
      },
      readText: (path: string) => readFile(join(root, path), 'utf8').catch(absentAs(undefined)),
      stat: (path: string) => fileStat(join(root, path)),
    };
  }

  async writeText(uri: string, text: string): Promise<void> {
    const path = filePathOf(uri);
    await mkdir(dirname(path), { recursive: true });
    // Replace atomically: a reader (logs --follow) never sees a half-written file.
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  }

  async createIfAbsent(uri: string, text: string): Promise<boolean> {
    const path = filePathOf(uri);
    await mkdir(dirname(path), { recursive: true });
    try {
      // O_CREAT|O_EXCL: exactly one of several concurrent writers creates the file.
      await writeFile(path, text, { flag: 'wx' });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  async appendText(uri: string, text: string): Promise<void> {
    const path = filePathOf(uri);
    await mkdir(dirname(path), { recursive: true });
    await appendFile(path, text);
  }

  readText(uri: string): Promise<string | undefined> {
    return readFile(filePathOf(uri), 'utf8').catch(absentAs(undefined));
  }

  stat(uri: string): Promise<ObjectStat | undefined> {
    return fileStat(filePathOf(uri));
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

/**
 * Only a definite "nothing there" is an absence (ENOENT, ENOTDIR: a file where a folder would be;
 * EISDIR: a folder is not an object). Any other error (EIO, EACCES, a stale mount) is thrown: a
 * reader that called it absence would make an outage look like a missing output or record.
 */
function absentAs<T>(value: T): (error: unknown) => T {
  return (error) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return value;
    throw error;
  };
}

/** Size of a regular file; undefined when there is none at the path (a folder is not an object). */
async function fileStat(path: string): Promise<ObjectStat | undefined> {
  try {
    const found = await stat(path);
    return found.isFile() ? { size: found.size } : undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}
