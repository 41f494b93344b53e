/**
 * The embedded default backend's compute: a "machine" is a folder on this host (its disk),
 * created on acquire and deleted on release together with every process started in it.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { computeName } from '../../pipeline/naming.ts';
import { killContainerProcesses } from '../execution/local-process.ts';
import type { ComputeLease, ComputeRequest, ReleaseResult } from '../types.ts';
import type { ComputeProvider, LeaseRecord } from './provider.ts';

export interface LocalLeaseRecord {
  name: string;
  labels: { run: string; stage: string; attempt: string; owner: string };
  createdAt: string;
}

export class LocalComputeProvider implements ComputeProvider {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async acquire(request: ComputeRequest): Promise<ComputeLease> {
    const name = computeName(request.runId, request.stage, request.attempt);
    const dir = join(this.root, name);
    await mkdir(dir, { recursive: true });
    const record: LocalLeaseRecord = {
      name,
      labels: { run: request.runId, stage: request.stage, attempt: String(request.attempt), owner: 'recogdrive' },
      createdAt: new Date().toISOString(),
    };
    // flag 'wx': an adopted machine keeps its original record.
    await writeFile(join(dir, 'lease.json'), JSON.stringify(record), { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    return { name, backend: 'local', workers: [{ kind: 'local', dir }] };
  }

  async release(request: ComputeRequest): Promise<ReleaseResult> {
    const name = computeName(request.runId, request.stage, request.attempt);
    const dir = join(this.root, name);
    const containers = await readdir(join(dir, 'containers')).catch(() => [] as string[]);
    for (const container of containers) await killContainerProcesses(join(dir, 'containers', container));
    const existed = await readFile(join(dir, 'lease.json')).then(
      () => true,
      () => false,
    );
    await rm(dir, { recursive: true, force: true });
    return { name, released: existed };
  }

  /** Every machine currently held, with its labels (for tests and the janitor). */
  async list(): Promise<LocalLeaseRecord[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const records = await Promise.all(
      names.map((name) =>
        readFile(join(this.root, name, 'lease.json'), 'utf8').then(
          (text) => JSON.parse(text) as LocalLeaseRecord,
          () => undefined,
        ),
      ),
    );
    return records.filter((r): r is LocalLeaseRecord => r !== undefined);
  }

  /** The janitor's view of list(). */
  async listLeases(): Promise<LeaseRecord[]> {
    return (await this.list()).map((r) => ({ name: r.name, backend: 'local', labels: { ...r.labels }, createdAt: r.createdAt }));
  }

  /**
   * Deletes the machine as listed, with every process started in it. False when it is gone, or
   * when the folder now holds another machine of the same name (a different creation time).
   */
  async deleteLease(record: LeaseRecord): Promise<boolean> {
    if (record.backend !== 'local') throw new Error(`local compute asked to delete a ${record.backend} lease (${record.name})`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(record.name)) throw new Error(`not a local machine name: ${JSON.stringify(record.name)}`);
    const dir = join(this.root, record.name);
    const current = await readFile(join(dir, 'lease.json'), 'utf8').then(
      (text) => JSON.parse(text) as LocalLeaseRecord,
      () => undefined,
    );
    if (current === undefined || current.createdAt !== record.createdAt) return false;
    const containers = await readdir(join(dir, 'containers')).catch(() => [] as string[]);
    for (const container of containers) await killContainerProcesses(join(dir, 'containers', container));
    await rm(dir, { recursive: true, force: true });
    return true;
  }
}
