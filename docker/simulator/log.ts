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

/** Python logging levels (logging.getLevelName). */
export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

/** One logging.LogRecord, with the attributes the formats below use. */
export interface PyLogRecord {
  /** Logger name (`__main__` for a script's own `logging.getLogger(__name__)`). */
  name: string;
  level: LogLevel;
  message: string;
  /** Absolute path of the source file that logged (co_filename). */
  pathname: string;
  lineno: number;
  /** Function name (%(funcName)s); `main` when not given. */
  funcName?: string;
  created?: Date;
}

/** hydra's default job_logging format (hydra/conf/hydra/job_logging/default.yaml). */
export const HYDRA_LOG_FORMAT = '[%(asctime)s][%(name)s][%(levelname)s] - %(message)s';
/** nuplan-devkit v1.2 build_logger's default format (nuplan/planning/script/builders/logging_builder.py). */
export const NUPLAN_LOG_FORMAT = '%(asctime)s %(levelname)-2s {%(pathname)s:%(lineno)d}  %(message)s';

/** logging.Formatter's default asctime, local time: `2025-01-31 12:00:00,123`. */
export function pyAsctime(now = new Date()): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())},${pad(now.getMilliseconds(), 3)}`
  );
}

/**
 * logging.Formatter(fmt).format(record) for %-style formats: `%(key)[flags][width][.precision]type`
 * with the record attributes Python has (asctime, name, levelname, levelno, message, pathname,
 * filename, module, lineno, funcName, process, thread, msecs, created) and `%%`. A key LogRecord
 * lacks throws UnknownLogAttribute (Python's handler would print a "--- Logging error ---" report).
 */
export function formatPyLog(format: string, record: PyLogRecord): string {
  const created = record.created ?? new Date();
  const file = record.pathname.split('/').at(-1) ?? record.pathname;
  const attributes: Record<string, string | number> = {
    asctime: pyAsctime(created),
    name: record.name,
    levelname: record.level,
    levelno: { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 }[record.level],
    message: record.message,
    msg: record.message,
    pathname: record.pathname,
    filename: file,
    module: file.replace(/\.py$/, ''),
    lineno: record.lineno,
    funcName: record.funcName ?? 'main',
    process: process.pid,
    processName: 'MainProcess',
    thread: 140000000000000 + process.pid,
    threadName: 'MainThread',
    msecs: created.getMilliseconds(),
    created: created.getTime() / 1000,
    relativeCreated: Math.round(performance.now()),
  };
  return format.replace(/%(?:\(([^)]*)\))?([-+ #0]*)(\d*)(?:\.(\d+))?([sdrifeg%])/g, (whole, key: string | undefined, flags: string, width: string, precision: string | undefined, type: string) => {
    if (type === '%') return '%';
    if (key === undefined) return whole;
    if (!(key in attributes)) throw new UnknownLogAttribute(key);
    const raw = attributes[key];
    let text: string;
    if (type === 'd' || type === 'i') text = String(Math.trunc(Number(raw)));
    else if (type === 'f') text = Number(raw).toFixed(precision === undefined ? 6 : Number(precision));
    else text = precision === undefined ? String(raw) : String(raw).slice(0, Number(precision));
    const size = width === '' ? 0 : Number(width);
    return flags.includes('-') ? text.padEnd(size) : text.padStart(size, flags.includes('0') && type !== 's' ? '0' : ' ');
  });
}

/** A `%(key)s` a LogRecord lacks (Python: KeyError inside Handler.emit, reported by handleError). */
export class UnknownLogAttribute extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`log format attribute '${key}' does not exist`);
    this.name = 'UnknownLogAttribute';
    this.key = key;
  }
}

/** A record as hydra's default job logging formats it: `[2025-01-31 12:00:00,123][name][INFO] - msg`. */
export function logRecord(logger: string, level: LogLevel, message: string, now = new Date()): string {
  return `[${pyAsctime(now)}][${logger}][${level}] - ${message}`;
}

/** A record as nuplan's build_logger formats it: `2025-01-31 12:00:00,123 INFO {/path/script.py:29}  msg`. */
export function nuplanLogRecord(level: LogLevel, pathname: string, lineno: number, message: string, now = new Date()): string {
  return `${pyAsctime(now)} ${level.padEnd(2)} {${pathname}:${lineno}}  ${message}`;
}

/**
 * Python's repr() of a float (also its str()): shortest round-trip digits, fixed notation for
 * exponents -4..15 (`0.0001`, `1.0`, `123.5`), scientific otherwise (`1e-05`, `1e+16`).
 */
export function pyFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa = '0', exp = '0'] = value.toExponential().split('e');
  const exponent = Number(exp);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let text: string;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) text = `0.${'0'.repeat(-exponent - 1)}${digits}`;
    else if (digits.length <= exponent + 1) text = `${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
    else text = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  } else {
    const body = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    text = `${body}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return negative ? `-${text}` : text;
}

/** `2025.01.31.12.00.00`: the strftime("%Y.%m.%d.%H.%M.%S") stamp navsim names run dirs and CSVs with. */
export function timestamp(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return [now.getFullYear(), pad(now.getMonth() + 1), pad(now.getDate()), pad(now.getHours()), pad(now.getMinutes()), pad(now.getSeconds())].join('.');
}

/** A traceback frame with Python 3.11's caret line under the failing expression (`    ^^^^`, without the 4-space indent). */
export interface TracebackFrame extends Frame {
  carets?: string;
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
    const carets = (frame as TracebackFrame).carets;
    if (frame.code !== undefined && carets !== undefined) lines.push(`    ${carets}`);
  }
  lines.push(error.message === '' ? error.type : `${error.type}: ${error.message}`, ...error.after);
  return lines.join('\n');
}
