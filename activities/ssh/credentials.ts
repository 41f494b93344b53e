/**
 * The SSH private key the workers accept: from a file (RECOGDRIVE_SSH_KEY_FILE) or the
 * environment (RECOGDRIVE_SSH_KEY). Held in a closure, never serialised, never logged.
 */
import { readFile } from 'node:fs/promises';

export interface SshKey {
  /** The key for ssh2's `privateKey` option. */
  material(): Buffer;
  toJSON(): string;
  toString(): string;
}

function sealed(key: Buffer): SshKey {
  return {
    material: () => key,
    toJSON: () => '[ssh key]',
    toString: () => '[ssh key]',
  };
}

export async function loadSshKey(env: NodeJS.ProcessEnv): Promise<SshKey | undefined> {
  const file = env.RECOGDRIVE_SSH_KEY_FILE;
  if (file !== undefined && file !== '') {
    const key = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new Error(`cannot read RECOGDRIVE_SSH_KEY_FILE (${file}): ${error.code ?? 'error'}`);
    });
    return sealed(key);
  }
  const inline = env.RECOGDRIVE_SSH_KEY;
  return inline !== undefined && inline !== '' ? sealed(Buffer.from(inline)) : undefined;
}
