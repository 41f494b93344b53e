/**
 * A hydra job around a navsim script, as hydra-core 1.3.2's @hydra.main runs it: compose the config
 * (hydra-config.ts), resolve hydra.run.dir, create the run dir with `<job>.log` and
 * `<output_subdir>/{config,hydra,overrides}.yaml`, configure logging, run the task, and print
 * failures the way hydra's run_and_report does, with or without HYDRA_FULL_ERROR=1.
 *
 * Logging: hydra's default job logging (`[asctime][name][LEVEL] - message` to stdout and to
 * `<run dir>/<job>.log`, level INFO). With `logging: 'nuplan'` the task starts with nuplan-devkit's
 * build_logger(cfg), as run_metric_caching.py and run_pdm_score_recogdrive.py do: the console
 * (stdout, through tqdm.write) and `<output_dir>/log.txt` get `asctime LEVEL {pathname:lineno}  message`
 * at cfg.logger_level (format: cfg.logger_format_string when set), while `<job>.log` keeps hydra's
 * format (build_logger's handler purge skips it).
 */
import path from 'node:path';
import { PythonError, PythonExit, SimulatorError, pyRepr, type Frame } from './errors.ts';
import { HYDRA_GROUP_CHOICES, HydraConfig, HydraFailure, LIBRARY_FRAMES, yaml, type ConfigSchema } from './hydra-config.ts';
import { formatPyLog, HYDRA_LOG_FORMAT, NUPLAN_LOG_FORMAT, out, UnknownLogAttribute, type LogLevel, type PyLogRecord } from './log.ts';
import type { ScriptContext } from './scripts/context.ts';

/** Where the images install Python packages (hydra, omegaconf, nuplan-devkit). */
export const SITE_PACKAGES = '/usr/local/lib/python3.11/site-packages';

/** Upstream lines of the scripts (zorrofox/recogdrive @ 7ed3135): `main()` under `if __name__ == "__main__":`, `def main`, `build_logger(cfg)`. */
const SCRIPT_LINES: Readonly<Record<string, { module: number; main: number; buildLogger?: number }>> = {
  'run_training_recogdrive_torchax.py': { module: 329, main: 125 },
  'run_caching_recogdrive_torchax.py': { module: 372, main: 146 },
  'run_metric_caching.py': { module: 36, main: 17, buildLogger: 23 },
  'run_pdm_score_recogdrive.py': { module: 321, main: 175, buildLogger: 193 },
};

const FULL_ERROR_HINT = 'Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.';
const LEVELS: Readonly<Record<LogLevel, number>> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };
/** nuplan's LOGGING_LEVEL_MAP (logging_builder.py): cfg.logger_level -> level. */
const NUPLAN_LEVELS: Readonly<Record<string, number>> = { error: 40, warning: 30, info: 20, debug: 10 };

/** Where a log record comes from. Only nuplan's format prints pathname and line; hydra's prints the logger name. */
export interface LogSite {
  /** Line of the logging call in `pathname`. Default: the script's `def main` line (a placeholder: pass the real one). */
  line?: number;
  /** `logging.getLogger(name)`; default `__main__` (the script's own logger). */
  logger?: string;
  /** Source file: absolute, or relative to the repo root (`navsim/planning/script/builders/worker_pool_builder.py`). Default: the script. */
  pathname?: string;
}

/** A `logging.getLogger(name)` of another module: its records carry that name (and, for nuplan's format, that file). */
export interface JobLogger {
  info(message: string, line?: number): void;
  warning(message: string, line?: number): void;
  error(message: string, line?: number): void;
}

export interface HydraJob {
  cfg: HydraConfig;
  /** Absolute container path of the run dir (hydra.run.dir, i.e. `output_dir`). */
  outputDir: string;
  /** logger.info(message) of the script: formatted as the job's logging does, to stdout and the log files. */
  info(message: string, site?: LogSite | number): void;
  warning(message: string, site?: LogSite | number): void;
  error(message: string, site?: LogSite | number): void;
  log(level: LogLevel, message: string, site?: LogSite | number): void;
  /** Records of another logger (e.g. `navsim.planning.script.builders.worker_pool_builder`, file relative to the repo). */
  logger(name: string, pathname?: string): JobLogger;
  /**
   * nuplan-devkit's build_logger(cfg), where the script calls it (run_pdm_score_recogdrive.py:193
   * comes after dist.init_process_group): from now on nuplan's format on the console and in
   * `<output_dir>/log.txt` at cfg.logger_level. `logging: 'nuplan'` calls it as the task starts.
   * An unknown cfg.logger_level raises KeyError as LOGGING_LEVEL_MAP does; `line`: the call's line.
   */
  buildLogger(line?: number): void;
}

export interface JobOptions {
  /**
   * 'hydra' (default): hydra's job logging (a script may switch with job.buildLogger()).
   * 'nuplan': nuplan's build_logger(cfg) as the task starts (run_metric_caching.py:23).
   */
  logging?: 'hydra' | 'nuplan';
}

export async function runHydraScript(
  ctx: ScriptContext,
  schema: ConfigSchema,
  task: (job: HydraJob) => Promise<void>,
  options: JobOptions = {},
): Promise<void> {
  // hydra/_internal/utils.py _is_env_set: only the exact value "1" counts.
  const full = ctx.env.HYDRA_FULL_ERROR === '1';
  const lines = SCRIPT_LINES[ctx.scriptName] ?? { module: 1, main: 1 };
  const moduleFrame: Frame = { file: ctx.scriptPath, line: lines.module, fn: '<module>', code: 'main()' };
  let cfg: HydraConfig;
  let outputDir: string;
  try {
    cfg = HydraConfig.compose(schema, ctx.args, ctx.env, { scriptPath: ctx.scriptPath });
    outputDir = ctx.fs.absolute(cfg.runDir());
  } catch (error) {
    if (error instanceof HydraFailure) throw new PythonExit(1, renderFailure(error, moduleFrame, full));
    throw error;
  }
  const job = startJob(ctx, cfg, outputDir, options, lines);
  try {
    if (options.logging === 'nuplan') job.buildLogger(lines.buildLogger);
    await task(job);
  } catch (error) {
    if (error instanceof PythonError) throw new PythonExit(1, renderTaskError(error, cfg, moduleFrame, lines.main, full));
    throw error;
  }
}

interface Handler {
  format: string;
  /** undefined: the console (stdout). */
  file: string | undefined;
}

function startJob(ctx: ScriptContext, cfg: HydraConfig, outputDir: string, options: JobOptions, lines: { main: number; buildLogger?: number }): HydraJob {
  const { fs } = ctx;
  const jobName = path.posix.basename(ctx.scriptName, '.py');
  fs.mkdirs(outputDir);
  // configure_log: the FileHandler (mode 'a') creates <job>.log right away.
  const jobLog = `${outputDir}/${jobName}.log`;
  fs.appendText(jobLog, '');
  const subdir = cfg.hydra('output_subdir');
  if (subdir !== null) {
    const hydraDir = path.posix.isAbsolute(String(subdir)) ? String(subdir) : `${outputDir}/${String(subdir)}`;
    fs.writeFile(`${hydraDir}/config.yaml`, cfg.toYaml());
    fs.writeFile(
      `${hydraDir}/hydra.yaml`,
      cfg.hydraYaml({
        job: { name: jobName, chdir: false, override_dirname: cfg.overrides.join(',') },
        runtime: {
          version: '1.3.2',
          version_base: null,
          cwd: fs.absolute('.'),
          output_dir: outputDir,
          choices: { ...cfg.choices(), ...HYDRA_GROUP_CHOICES },
        },
        verbose: false,
      }),
    );
    fs.writeFile(`${hydraDir}/overrides.yaml`, cfg.overrides.length === 0 ? '[]\n' : yaml([...cfg.overrides]));
  }

  let threshold = LEVELS.INFO;
  let handlers: Handler[] = [
    { format: HYDRA_LOG_FORMAT, file: undefined },
    { format: HYDRA_LOG_FORMAT, file: jobLog },
  ];
  const repoRoot = repoRootOf(ctx.scriptPath);
  const site = (given: LogSite | number | undefined): Required<LogSite> => {
    const s = typeof given === 'number' ? { line: given } : (given ?? {});
    const pathname = s.pathname === undefined ? ctx.scriptPath : s.pathname.startsWith('/') ? s.pathname : `${repoRoot}/${s.pathname}`;
    return { line: s.line ?? lines.main, logger: s.logger ?? '__main__', pathname };
  };
  const log = (level: LogLevel, message: string, where?: LogSite | number) => {
    if (LEVELS[level] < threshold) return;
    const s = site(where);
    const record: PyLogRecord = { name: s.logger, level, message, pathname: s.pathname, lineno: s.line, created: new Date() };
    for (const handler of handlers) {
      let text: string;
      try {
        text = formatPyLog(handler.format, record);
      } catch (error) {
        if (error instanceof UnknownLogAttribute) throw new SimulatorError(`logger_format_string: ${error.message} (logging's error report is not simulated)`);
        throw error;
      }
      if (handler.file === undefined) out(text);
      else fs.appendText(handler.file, `${text}\n`);
    }
  };

  return {
    cfg,
    outputDir,
    info: (message, where) => log('INFO', message, where),
    warning: (message, where) => log('WARNING', message, where),
    error: (message, where) => log('ERROR', message, where),
    log,
    logger: (name, pathname) => ({
      info: (message, line) => log('INFO', message, { logger: name, ...(pathname === undefined ? {} : { pathname }), ...(line === undefined ? {} : { line }) }),
      warning: (message, line) => log('WARNING', message, { logger: name, ...(pathname === undefined ? {} : { pathname }), ...(line === undefined ? {} : { line }) }),
      error: (message, line) => log('ERROR', message, { logger: name, ...(pathname === undefined ? {} : { pathname }), ...(line === undefined ? {} : { line }) }),
    }),
    /** nuplan's build_logger(cfg) (nuplan-devkit v1.2 logging_builder.py). */
    buildLogger(line = lines.buildLogger) {
      const raw = cfg.get('logger_level');
      const level = typeof raw === 'string' ? NUPLAN_LEVELS[raw] : undefined;
      if (level === undefined) {
        const builder = `${SITE_PACKAGES}/nuplan/planning/script/builders/logging_builder.py`;
        throw new PythonError('KeyError', typeof raw === 'string' ? pyRepr(raw) : String(raw), [
          { file: ctx.scriptPath, line: line ?? lines.main, fn: 'main', code: 'build_logger(cfg)' },
          { file: builder, line: 134, fn: 'build_logger', code: 'logger = configure_logger(handler_configs, format_str=format_string)' },
          { file: builder, line: 109, fn: 'configure_logger', code: 'handler.setLevel(LOGGING_LEVEL_MAP[config.level])' },
        ]);
      }
      const custom = cfg.get('logger_format_string');
      const format = custom === null || custom === '' || custom === false ? NUPLAN_LOG_FORMAT : cfg.str('logger_format_string');
      const output = cfg.get('output_dir');
      const logTxt = output === null ? undefined : `${fs.absolute(cfg.str('output_dir'))}/log.txt`;
      if (logTxt !== undefined) fs.appendText(logTxt, '');
      // The purge loop removes handlers while iterating: hydra's console goes, its <job>.log stays.
      handlers = [{ format: HYDRA_LOG_FORMAT, file: jobLog }, { format, file: undefined }, ...(logTxt === undefined ? [] : [{ format, file: logTxt }])];
      threshold = level;
    },
  };
}

/** The checkout root of a script under navsim/planning/script/ (else the script's dir). */
function repoRootOf(scriptPath: string): string {
  const marker = '/navsim/planning/script/';
  const at = scriptPath.lastIndexOf(marker);
  return at >= 0 ? scriptPath.slice(0, at) : path.posix.dirname(scriptPath);
}

// ---- printing failures (hydra/_internal/utils.py run_and_report) -------------------------------

/** hydra's frames from @hydra.main down to its `<lambda>` (utils.py:223 re-raises under HYDRA_FULL_ERROR, 302 after the formatting failure). */
const hydraTop = (moduleFrame: Frame, raiseLine: 223 | 302): (string | Frame)[] => [
  moduleFrame,
  'hydra/main.py:94',
  'hydra/_internal/utils.py:394',
  'hydra/_internal/utils.py:457',
  `hydra/_internal/utils.py:${raiseLine}`,
  'hydra/_internal/utils.py:220',
  'hydra/_internal/utils.py:458',
];

/** Traceback lines of frames given as LIBRARY_FRAMES keys (under site-packages) or script frames. */
export function renderFrames(frames: readonly (string | Frame)[]): string[] {
  const lines: string[] = [];
  for (const frame of frames) {
    if (typeof frame !== 'string') {
      lines.push(`  File "${frame.file}", line ${frame.line}, in ${frame.fn}`);
      if (frame.code !== undefined) lines.push(`    ${frame.code}`);
      continue;
    }
    const known = LIBRARY_FRAMES[frame];
    const colon = frame.lastIndexOf(':');
    if (known === undefined) throw new SimulatorError(`no source line recorded for ${frame}`);
    const [fn, code, carets] = known;
    lines.push(`  File "${SITE_PACKAGES}/${frame.slice(0, colon)}", line ${frame.slice(colon + 1)}, in ${fn}`, `    ${code}`);
    if (carets !== undefined) lines.push(`    ${carets}`);
  }
  return lines;
}

const exceptionLine = (type: string, message: string) => (message === '' ? type : `${type}: ${message}`);

function renderFailure(failure: HydraFailure, moduleFrame: Frame, full: boolean): string[] {
  const exception = exceptionLine(failure.type, failure.message);
  switch (failure.kind) {
    case 'compact': {
      const chained = failure.chained;
      if (!full) return [failure.message, ...(chained?.type.startsWith('omegaconf.') ? [chained.message] : []), '', FULL_ERROR_HINT];
      const cause =
        chained === undefined
          ? []
          : [
              'Traceback (most recent call last):',
              ...renderFrames(chained.frames),
              exceptionLine(chained.type, chained.message),
              '',
              'The above exception was the direct cause of the following exception:',
              '',
            ];
      return [...cause, 'Traceback (most recent call last):', ...renderFrames([...hydraTop(moduleFrame, 223), ...failure.hydraFrames]), exception];
    }
    case 'plain': {
      // traceback.print_exc() from run_and_report: no hint, the stack starts where it was caught.
      const frames = full ? [...hydraTop(moduleFrame, 223), ...failure.hydraFrames] : ['hydra/_internal/utils.py:220', 'hydra/_internal/utils.py:458', ...failure.hydraFrames];
      return ['Traceback (most recent call last):', ...renderFrames(frames), exception];
    }
    case 'run-dir':
      return [
        ...(full ? [] : ["An error occurred during Hydra's exception formatting:", 'AssertionError()']),
        'Traceback (most recent call last):',
        ...renderFrames([...hydraTop(moduleFrame, full ? 223 : 302), ...failure.hydraFrames]),
        exception,
      ];
  }
}

/**
 * An exception of the task: hydra's JobReturn prints "Error executing job with overrides: [...]",
 * then run_and_report the traceback from the task's `main` frame and the hint; with
 * HYDRA_FULL_ERROR=1 the whole traceback, hydra's frames between `<module>` and `main`. Frames the
 * error carries are those from the script's `main` down (a leading `<module>` frame is dropped);
 * none: a placeholder `main` frame.
 */
function renderTaskError(error: PythonError, cfg: HydraConfig, moduleFrame: Frame, mainLine: number, full: boolean): string[] {
  // A leading `<module>` frame of the script is hydra's business: dropped, hydra's frames go between.
  const own = error.frames[0]?.fn === '<module>' && error.frames[0].file === moduleFrame.file ? error.frames.slice(1) : error.frames;
  const main: Frame[] = own.length > 0 ? [...own] : [{ file: moduleFrame.file, line: mainLine, fn: 'main' }];
  const frames: (string | Frame)[] = full
    ? [...hydraTop(moduleFrame, 223), 'hydra/_internal/hydra.py:132', 'hydra/core/utils.py:260', 'hydra/core/utils.py:186', ...main]
    : main;
  return [
    ...error.before,
    `Error executing job with overrides: [${cfg.overrides.map(pyRepr).join(', ')}]`,
    'Traceback (most recent call last):',
    ...renderFrames(frames),
    exceptionLine(error.type, error.message),
    ...error.after,
    ...(full ? [] : ['', FULL_ERROR_HINT]),
  ];
}
