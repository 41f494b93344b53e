/**
 * Runs the stage's command in its own process group: its stdout/stderr pass through unchanged
 * (the orchestrator reads `docker logs` or the local log file; stderr through WrapperStderr, which
 * keeps the wrapper's own lines on lines of their own) and are also fed to `OutputLines`;
 * SIGTERM/SIGINT/SIGHUP sent to the wrapper go to the command's whole group.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { OutputLines } from './output-lines.ts';
import { WrapperStderr } from './stderr.ts';

export const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** How the command ended. `exitCode` is what the wrapper exits with: the code, or 128 + n after signal n. */
export interface CommandExit {
  exitCode: number;
  /** The command's own exit code; null when a signal ended it or it never started. */
  code: number | null;
  signal: string | null;
  /** Set when the command could not be started. */
  error?: string;
}

export interface RunningCommand {
  /** When the command was started. */
  startedAt: Date;
  exited: Promise<CommandExit>;
}

/** After the command exits, how long to wait for output still in the pipes (a leftover background process may hold them open). */
const DRAIN_MS = 2_000;

export function runCommand(argv: readonly string[], lines: OutputLines, stderr: WrapperStderr = new WrapperStderr()): RunningCommand {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('no command');
  const startedAt = new Date();
  // detached: a new session, so the command and everything it starts form one process group.
  const child = spawn(file, args, { detached: true, stdio: ['inherit', 'pipe', 'pipe'] });

  const forward = (signal: NodeJS.Signals) => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  // The handlers stay after the exit: a stop signal during the verdict must not cut the marker writes short.
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  // A closed stdout/stderr (EPIPE) must not end the wrapper: the command's exit still has to be recorded.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});

  const drained = (['stdout', 'stderr'] as const).map((name) => {
    const stream = child[name];
    const passThrough = name === 'stdout' ? (chunk: Buffer) => process.stdout.write(chunk) : (chunk: Buffer) => stderr.passThrough(chunk);
    stream.on('data', (chunk: Buffer) => {
      passThrough(chunk);
      lines.feed(name, chunk);
    });
    return new Promise<void>((resolve) => {
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', () => resolve());
    });
  });

  const exited = new Promise<CommandExit>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      // Only a failed start: errors of a running child (e.g. kill) are not reported here.
      if (child.pid !== undefined) return;
      const exitCode = error.code === 'EACCES' ? 126 : 127;
      resolve({ exitCode, code: null, signal: null, error: `cannot run ${file}: ${error.message}` });
    });
    child.once('exit', (code, signal) => {
      const exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
      resolve({ exitCode, code, signal });
    });
  }).then(async (exit) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(drained), new Promise((resolve) => (timer = setTimeout(resolve, DRAIN_MS)))]);
    clearTimeout(timer);
    child.stdout.destroy();
    child.stderr.destroy();
    lines.finish();
    return exit;
  });
  return { startedAt, exited };
}
