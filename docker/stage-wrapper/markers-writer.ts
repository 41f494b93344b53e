/**
 * Writes the protocol's files. Verdicts (DONE.json, FAILED.json) are created only if absent
 * (O_EXCL, which gcsfuse maps to a create-if-absent), so a second writer never replaces one;
 * progress.json and MANIFEST.tsv are replaced through a temporary file and a rename. Outputs may be
 * on a gcsfuse mount, so a failed write (anything but "already exists") is retried a few times.
 */
import { lstat, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Pauses before the retries of a failed write (three retries). */
export const RETRY_BACKOFF_MS = [200, 800, 2_000] as const;

/** Creates `path` with `content` unless it exists; 'exists' leaves the existing file untouched. */
export async function createExclusive(path: string, content: string | Buffer): Promise<'created' | 'exists'> {
  return withRetries(`create ${path}`, async () => {
    await mkdir(dirname(path), { recursive: true });
    let file: FileHandle;
    try {
      file = await open(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
      throw error;
    }
    try {
      await file.writeFile(content);
      await syncQuietly(file);
      await file.close();
    } catch (error) {
      // A half-written verdict must not block the retry (or stand as a verdict): it is ours to remove.
      await file.close().catch(() => {});
      await rm(path, { force: true }).catch(() => {});
      throw error;
    }
    return 'created';
  });
}

/** Replaces `path` with `content` (readers see the old or the new file, never a part). */
export async function replaceAtomically(path: string, content: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await withRetries(`write ${path}`, async () => {
    await mkdir(dirname(path), { recursive: true });
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(content);
      await syncQuietly(file);
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  }).catch(async (error: unknown) => {
    await rm(tmp, { force: true }).catch(() => {});
    throw error;
  });
}

/** True when `path` exists (a failed look-up other than "not found" is retried, then thrown). */
export async function exists(path: string): Promise<boolean> {
  return withRetries(`look up ${path}`, async () => {
    try {
      await lstat(path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  });
}

async function withRetries<T>(what: string, operation: () => Promise<T>): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await operation();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const backoff = RETRY_BACKOFF_MS[retry];
      if (code === 'EEXIST' || backoff === undefined) {
        throw new Error(`could not ${what}: ${(error as Error).message}`, { cause: error });
      }
      await sleep(backoff);
    }
  }
}

/** fsync, so a gcsfuse mount uploads now; file systems without it (EINVAL) are fine as they are. */
async function syncQuietly(file: FileHandle): Promise<void> {
  try {
    await file.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
  }
}
