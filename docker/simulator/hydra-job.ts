/**
 * A hydra job around a navsim script: compose the config, create the run dir (output_dir with
 * code/hydra/*.yaml and the job log), run the task, and report errors the way hydra does.
 */
import path from 'node:path';
import { PythonError } from './errors.ts';
import { HydraConfig, yaml, type ConfigSchema } from './hydra-config.ts';
import { logRecord, out } from './log.ts';
import type { ScriptContext } from './scripts/context.ts';

export interface HydraJob {
  cfg: HydraConfig;
  /** Absolute container path of the run dir (`output_dir`). */
  outputDir: string;
  /** A logger.info of the script: a log record on stdout and in the job's log files. */
  info(message: string): void;
  warning(message: string): void;
  /** A line the orchestrator parses: printed bare on stdout, logged as a record in the job's log files. */
  print(line: string): void;
}

export interface JobOptions {
  /** Log files written besides hydra's `<job name>.log`, relative to the run dir (nuplan's log.txt). */
  extraLogFiles?: readonly string[];
}

export async function runHydraScript(
  ctx: ScriptContext,
  schema: ConfigSchema,
  task: (job: HydraJob) => Promise<void>,
  options: JobOptions = {},
): Promise<void> {
  try {
    const cfg = HydraConfig.compose(schema, ctx.args, ctx.env);
    const job = startJob(ctx, cfg, options);
    try {
      await task(job);
    } catch (error) {
      if (error instanceof PythonError) error.before.push(`Error executing job with overrides: ${pyList(cfg.overrides)}`);
      throw error;
    }
  } catch (error) {
    if (error instanceof PythonError && ctx.env.HYDRA_FULL_ERROR !== '1') {
      error.after.push('', 'Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.');
    }
    throw error;
  }
}

function startJob(ctx: ScriptContext, cfg: HydraConfig, options: JobOptions): HydraJob {
  const { fs } = ctx;
  const outputDir = fs.absolute(cfg.str('output_dir'));
  const jobName = path.posix.basename(ctx.scriptName, '.py');
  const hydraDir = `${outputDir}/code/hydra`;
  fs.mkdirs(outputDir);
  fs.writeFile(`${hydraDir}/config.yaml`, cfg.toYaml());
  fs.writeFile(`${hydraDir}/overrides.yaml`, cfg.overrides.map((o) => `- ${JSON.stringify(o)}\n`).join(''));
  fs.writeFile(
    `${hydraDir}/hydra.yaml`,
    yaml({
      hydra: {
        run: { dir: outputDir },
        output_subdir: hydraDir,
        job: { name: jobName, override_dirname: cfg.overrides.join(',') },
        runtime: { version: '1.3.2', cwd: fs.absolute('.'), output_dir: outputDir, choices: cfg.choices() },
      },
    }),
  );
  const logFiles = [`${outputDir}/${jobName}.log`, ...(options.extraLogFiles ?? []).map((f) => `${outputDir}/${f}`)];
  const log = (level: 'INFO' | 'WARNING', message: string, bare: boolean) => {
    const record = logRecord('__main__', level, message);
    out(bare ? message : record);
    for (const file of logFiles) fs.appendText(file, `${record}\n`);
  };
  return {
    cfg,
    outputDir,
    info: (message) => log('INFO', message, false),
    warning: (message) => log('WARNING', message, false),
    print: (line) => log('INFO', line, true),
  };
}

/** Python's repr of a list of str. */
function pyList(items: readonly string[]): string {
  return `[${items.map((s) => `'${s.replaceAll("'", "\\'")}'`).join(', ')}]`;
}
