/**
 * File operations on container paths. Every call goes through the mount table and fails the way
 * Python's would inside the container: no mount → FileNotFoundError, a write under a read-only
 * mount → "Read-only file system", Node errors → the matching Python OSError subclass.
 * Synchronous on purpose: the files are tiny and it keeps the stage scripts linear.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileNotFound, fromOsError, PythonError, readOnlyFileSystem } from './errors.ts';
import type { MountTable } from './paths.ts';

export class ContainerFs {
  readonly mounts: MountTable;
  /**
   * False on the other workers of a multi-host slice: like process 0 of a multi-controller JAX
   * job, only worker 0 writes outputs; the others do the same work and print the same progress.
   */
  readonly writes: boolean;

  constructor(mounts: MountTable, options: { writes?: boolean } = {}) {
    this.mounts = mounts;
    this.writes = options.writes ?? true;
  }

  absolute(p: string): string {
    return this.mounts.absolute(p);
  }

  exists(p: string): boolean {
    const host = this.mounts.locate(p)?.host;
    return host !== undefined && fs.existsSync(host);
  }

  isFile(p: string): boolean {
    return this.#stat(p)?.isFile() ?? false;
  }

  isDir(p: string): boolean {
    return this.#stat(p)?.isDirectory() ?? false;
  }

  readBytes(p: string): Buffer {
    return this.#os(p, (host) => fs.readFileSync(host));
  }

  readText(p: string): string {
    return this.#os(p, (host) => fs.readFileSync(host, 'utf8'));
  }

  /** Entry names, sorted (os.listdir order is arbitrary; sorting keeps runs reproducible). */
  listDir(p: string): string[] {
    return this.#os(p, (host) => fs.readdirSync(host).sort());
  }

  /** os.makedirs(p, exist_ok=True): an existing directory is fine even on a read-only mount. */
  mkdirs(p: string): void {
    if (this.isDir(p)) return;
    this.#os(p, (host) => fs.mkdirSync(host, { recursive: true }), 'write');
  }

  /** Writes a file, creating its parent directories. */
  writeFile(p: string, data: string | Uint8Array): void {
    this.mkdirs(path.posix.dirname(this.absolute(p)));
    this.#os(p, (host) => fs.writeFileSync(host, data), 'write');
  }

  appendText(p: string, text: string): void {
    this.mkdirs(path.posix.dirname(this.absolute(p)));
    this.#os(p, (host) => fs.appendFileSync(host, text), 'write');
  }

  rename(from: string, to: string): void {
    const target = this.#host(to, 'write');
    this.#os(from, (host) => fs.renameSync(host, target), 'write');
  }

  /** shutil.rmtree / os.remove, ignoring a path that does not exist. */
  remove(p: string): void {
    if (!this.exists(p)) return;
    this.#os(p, (host) => fs.rmSync(host, { recursive: true, force: true }), 'write');
  }

  #stat(p: string): fs.Stats | undefined {
    const host = this.mounts.locate(p)?.host;
    return host === undefined ? undefined : fs.statSync(host, { throwIfNoEntry: false });
  }

  #host(p: string, mode: 'read' | 'write'): string {
    const location = this.mounts.locate(p);
    if (location === undefined) throw fileNotFound(this.absolute(p));
    if (mode === 'write' && location.readOnly) throw readOnlyFileSystem(this.absolute(p));
    return location.host;
  }

  #os<T>(p: string, op: (host: string) => T, mode: 'read' | 'write' = 'read'): T {
    const host = this.#host(p, mode);
    if (mode === 'write' && !this.writes) return undefined as T;
    try {
      return op(host);
    } catch (error) {
      throw fromOsError(error, this.absolute(p));
    }
  }
}

/** The JSON a script reads with json.load: bad text raises json.decoder.JSONDecodeError. */
export function readJsonFile(fs: ContainerFs, file: string): unknown {
  const text = fs.readText(file);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PythonError('json.decoder.JSONDecodeError', `${(error as Error).message}`);
  }
}
