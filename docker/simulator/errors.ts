/**
 * The two ways the simulator fails. A PythonError is the simulated program failing the way the
 * real one would (traceback, exit 1); a SimulatorError means the simulator itself was misused
 * (bad control variables, bad CLI), which no real stage would ever print.
 */

/** One line of a Python traceback. `code` is left out when Python could not show the source. */
export interface Frame {
  file: string;
  line: number;
  fn: string;
  code?: string;
}

export class PythonError extends Error {
  /** Qualified exception type as Python prints it, e.g. `omegaconf.errors.MissingMandatoryValue`. */
  readonly type: string;
  /** Frames below the script's entry point; empty means "somewhere in main()". */
  readonly frames: readonly Frame[];
  /** Lines printed before the traceback (hydra's "Error executing job with overrides: ..."). */
  readonly before: string[] = [];
  /** Lines printed after it (hydra's hint to set HYDRA_FULL_ERROR). */
  readonly after: string[] = [];

  constructor(type: string, message: string, frames: readonly Frame[] = []) {
    super(message);
    this.name = 'PythonError';
    this.type = type;
    this.frames = frames;
  }
}

/** sys.exit(code) after printing `lines` to stderr, e.g. argparse's usage errors (exit 2). */
export class PythonExit extends Error {
  readonly code: number;
  readonly lines: readonly string[];

  constructor(code: number, lines: readonly string[]) {
    super(lines.join('\n'));
    this.name = 'PythonExit';
    this.code = code;
    this.lines = lines;
  }
}

export class SimulatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulatorError';
  }
}

/** Python's repr() of a str, which is how paths and keys appear in exception messages. */
export function pyRepr(text: string): string {
  return text.includes("'") && !text.includes('"') ? `"${text}"` : `'${text.replaceAll("'", "\\'")}'`;
}

export function fileNotFound(path: string): PythonError {
  return new PythonError('FileNotFoundError', `[Errno 2] No such file or directory: ${pyRepr(path)}`);
}

export function readOnlyFileSystem(path: string): PythonError {
  return new PythonError('OSError', `[Errno 30] Read-only file system: ${pyRepr(path)}`);
}

/** The Python exception a failed OS call raises, for a Node error on `path` (a container path). */
export function fromOsError(error: unknown, path: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const named: Record<string, [string, number, string]> = {
    ENOENT: ['FileNotFoundError', 2, 'No such file or directory'],
    EACCES: ['PermissionError', 13, 'Permission denied'],
    EPERM: ['PermissionError', 1, 'Operation not permitted'],
    EEXIST: ['FileExistsError', 17, 'File exists'],
    ENOTDIR: ['NotADirectoryError', 20, 'Not a directory'],
    EISDIR: ['IsADirectoryError', 21, 'Is a directory'],
    ENOSPC: ['OSError', 28, 'No space left on device'],
    EROFS: ['OSError', 30, 'Read-only file system'],
    ENOTEMPTY: ['OSError', 39, 'Directory not empty'],
  };
  const match = code === undefined ? undefined : named[code];
  if (match === undefined) return error;
  const [type, errno, text] = match;
  return new PythonError(type, `[Errno ${errno}] ${text}: ${pyRepr(path)}`);
}
