/** Output as the real programs print it: plain lines, tqdm bars, hydra log records, tracebacks. */
import type { Frame, PythonError } from './errors.ts';

/** print(): stdout. Writes to files and pipes are synchronous on Linux, so nothing is lost on exit. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Writes to stderr (tqdm bars, warnings, tracebacks). */
export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Whether progress line `step` (1-based) of `total` is printed: every one, or every 10th when there are many. */
export function isLogged(step: number, total: number): boolean {
  return total <= 100 || step % 10 === 0 || step === total;
}

/** A finished tqdm line, `desc:  33%|███▎      | 1/3 [00:01<00:02,  1.02it/s]` (one line per update, no \r). */
export function tqdmLine(desc: string, n: number, total: number, elapsedSeconds: number): string {
  const fraction = total === 0 ? 1 : n / total;
  const eighths = Math.round(fraction * 80);
  const bar = ('█'.repeat(Math.floor(eighths / 8)) + (eighths % 8 === 0 ? '' : ' ▏▎▍▌▋▊▉'[eighths % 8])).padEnd(10);
  const rate = elapsedSeconds > 0 ? n / elapsedSeconds : 0;
  const remaining = rate > 0 ? (total - n) / rate : 0;
  const percent = `${Math.round(fraction * 100)}`.padStart(3);
  return `${desc}: ${percent}%|${bar}| ${n}/${total} [${clock(elapsedSeconds)}<${clock(remaining)}, ${rate.toFixed(2).padStart(6)}it/s]`;
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** A record as hydra's default job logging formats it: `[2025-01-31 12:00:00,123][name][INFO] - msg`. */
export function logRecord(logger: string, level: 'INFO' | 'WARNING' | 'ERROR', message: string, now = new Date()): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const stamp =
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())},${pad(now.getMilliseconds(), 3)}`;
  return `[${stamp}][${logger}][${level}] - ${message}`;
}

/** `2025.01.31.12.00.00`: the strftime("%Y.%m.%d.%H.%M.%S") stamp navsim names run dirs and CSVs with. */
export function timestamp(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return [now.getFullYear(), pad(now.getMonth() + 1), pad(now.getDate()), pad(now.getHours()), pad(now.getMinutes()), pad(now.getSeconds())].join('.');
}

/**
 * The text Python prints for an uncaught exception. The script's `<module>` frame comes first;
 * errors without frames of their own are shown as raised somewhere in the script's main().
 */
export function formatTraceback(error: PythonError, scriptPath: string): string {
  const entry: Frame = { file: scriptPath, line: 213, fn: '<module>', code: 'main()' };
  const frames = error.frames.length > 0 ? error.frames : [entry, { file: scriptPath, line: 117, fn: 'main' }];
  const lines = [...error.before, 'Traceback (most recent call last):'];
  for (const frame of frames) {
    lines.push(`  File "${frame.file}", line ${frame.line}, in ${frame.fn}`);
    if (frame.code !== undefined) lines.push(`    ${frame.code}`);
  }
  lines.push(error.message === '' ? error.type : `${error.type}: ${error.message}`, ...error.after);
  return lines.join('\n');
}
