/**
 * Container paths → host paths. A stage normally runs in a container with bind mounts; the
 * simulator runs as a plain local process, so every path it touches is translated through the
 * mount table that container would have had. Without a table (inside a real container) paths are
 * used as they are.
 */
import path from 'node:path';
import { SimulatorError } from './errors.ts';

export interface Mount {
  /** Container path. */
  target: string;
  /** Host path. */
  source: string;
  readOnly: boolean;
}

export interface Location {
  host: string;
  readOnly: boolean;
}

export class MountTable {
  /** The container workdir: relative paths are relative to it. */
  readonly workdir: string;
  /** Longest target first, so the first match is the most specific mount. */
  readonly #mounts: readonly Mount[] | undefined;

  constructor(mounts: readonly Mount[] | undefined, workdir: string) {
    this.workdir = path.posix.resolve('/', workdir);
    this.#mounts = mounts
      ?.map((m) => ({ ...m, target: path.posix.resolve('/', m.target) }))
      .sort((a, b) => b.target.length - a.target.length);
  }

  /** RECOGDRIVE_SIM_MOUNTS (JSON array of {target, source, readOnly}) and RECOGDRIVE_SIM_WORKDIR. */
  static fromEnv(env: NodeJS.ProcessEnv): MountTable {
    const workdir = env.RECOGDRIVE_SIM_WORKDIR ?? process.cwd();
    const raw = env.RECOGDRIVE_SIM_MOUNTS;
    if (raw === undefined || raw === '') return new MountTable(undefined, workdir);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new SimulatorError('RECOGDRIVE_SIM_MOUNTS is not valid JSON');
    }
    if (!Array.isArray(parsed)) throw new SimulatorError('RECOGDRIVE_SIM_MOUNTS must be a JSON array');
    const mounts = parsed.map((entry: unknown, i): Mount => {
      const m = entry as Partial<Record<keyof Mount, unknown>> | null;
      if (typeof m?.target !== 'string' || !m.target.startsWith('/') || typeof m.source !== 'string' || m.source === '') {
        throw new SimulatorError(`RECOGDRIVE_SIM_MOUNTS[${i}] needs an absolute "target" and a "source"`);
      }
      return { target: m.target, source: path.resolve(m.source), readOnly: m.readOnly === true };
    });
    return new MountTable(mounts, workdir);
  }

  /** The absolute, normalized container path. */
  absolute(containerPath: string): string {
    return path.posix.resolve(this.workdir, containerPath);
  }

  /** Where a container path lives on the host; undefined when no mount covers it. */
  locate(containerPath: string): Location | undefined {
    const abs = this.absolute(containerPath);
    if (this.#mounts === undefined) return { host: abs, readOnly: false };
    const mount = this.#mounts.find((m) => isWithin(abs, m.target));
    if (mount === undefined) return undefined;
    return { host: path.join(mount.source, path.posix.relative(mount.target, abs)), readOnly: mount.readOnly };
  }
}

/** Whether `p` is `dir` or below it, on path-segment boundaries (/a/bc is not within /a/b). */
function isWithin(p: string, dir: string): boolean {
  return dir === '/' || p === dir || p.startsWith(`${dir}/`);
}
