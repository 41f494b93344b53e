/**
 * `python [-u|-B] <script> args...`: runs the simulated stage script of that name. Python's own
 * failure modes hold: an unknown script exits 2, an uncaught exception prints a traceback and exits 1.
 */
import path from 'node:path';
import { ContainerFs } from './container-fs.ts';
import { readControls } from './controls.ts';
import { PythonError, PythonExit } from './errors.ts';
import { err, formatTraceback, out } from './log.ts';
import { MountTable } from './paths.ts';
import { SCRIPTS } from './scripts/index.ts';

const VERSION = 'Python 3.11.13';
/** Interpreter flags that change nothing here (-u: unbuffered; the simulator never buffers). */
const IGNORED_FLAGS = new Set(['-u', '-B', '-O']);

export async function runPython(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  while (args[0] !== undefined && IGNORED_FLAGS.has(args[0])) args.shift();
  const [script, ...scriptArgs] = args;
  if (script === '--version' || script === '-V') {
    out(VERSION);
    return 0;
  }
  if (script === undefined || script.startsWith('-')) {
    err(`${VERSION} (simulated): only \`python <script> [args...]\` is supported`);
    return 2;
  }

  // RECOGDRIVE_WORKER: the worker index the orchestrator gives each container of a slice.
  const worker = process.env.RECOGDRIVE_WORKER;
  const fs = new ContainerFs(MountTable.fromEnv(process.env), { writes: worker === undefined || worker === '' || worker === '0' });
  const scriptPath = fs.absolute(script);
  const scriptName = path.posix.basename(script);
  const main = SCRIPTS[scriptName];
  if (main === undefined) {
    err(`python: can't open file '${scriptPath}': [Errno 2] No such file or directory`);
    return 2;
  }

  const controls = readControls(process.env);
  try {
    await main({ scriptPath, scriptName, args: scriptArgs, env: process.env, fs, controls });
    return 0;
  } catch (error) {
    if (error instanceof PythonExit) {
      for (const line of error.lines) err(line);
      return error.code;
    }
    if (error instanceof PythonError) {
      err(formatTraceback(error, scriptPath));
      return 1;
    }
    throw error;
  }
}
