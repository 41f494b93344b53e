/**
 * recogdrive-stage -- <command...>
 *
 * The stage entrypoint wrapper: runs a stage's command and leaves the stage completion protocol's
 * files (pipeline/markers.ts) next to its outputs, then exits with the command's exit code (128 + n
 * after signal n), so the orchestrator's exit classification is unchanged. See README.md.
 */
import { formatGrowthLine } from '../../pipeline/output-growth.ts';
import { runCommand, type CommandExit } from './child.ts';
import { readWrapperEnv } from './env.ts';
import { OutputGrowth } from './growth.ts';
import { OutputLines } from './output-lines.ts';
import { ProgressWriter } from './progress.ts';
import { WrapperStderr } from './stderr.ts';
import { recordDone, recordFailed } from './verdict.ts';

/** Exit code for a wrong invocation or environment: the command was not run. */
const USAGE_EXIT = 2;

const stderr = new WrapperStderr();
const say = (line: string) => stderr.say(line);

async function main(argv: string[]): Promise<number> {
  if (argv[0] !== '--' || argv.length < 2) {
    say('usage: recogdrive-stage -- <command> [args...]');
    return USAGE_EXIT;
  }
  const env = readWrapperEnv(process.env);
  if ('problems' in env) {
    say(`not running the command: the environment is incomplete (${env.problems.length} problem${env.problems.length === 1 ? '' : 's'})`);
    for (const problem of env.problems) say(`  ${problem}`);
    return USAGE_EXIT;
  }
  const { config } = env;
  // Only worker 0 of a slice writes markers; the orchestrator records the other workers' failures.
  const writesMarkers = config.worker === 0;

  const lines = new OutputLines();
  const command = runCommand(argv.slice(1), lines, stderr);
  // Output growth, like the markers, is worker 0's job: the workers of a slice share one output
  // folder (walking it from every host would multiply the cost for nothing) and the orchestrator
  // reads worker 0's log.
  const progress = writesMarkers ? new ProgressWriter(config, { lines, startedAt: command.startedAt, output: () => growth?.record, say }) : undefined;
  const growth = writesMarkers
    ? new OutputGrowth({
        outputDir: config.outputDir,
        layout: config.markers.layout,
        intervalMs: config.growthIntervalMs,
        onChange: (record) => {
          stderr.writeLine(formatGrowthLine(record));
          progress?.update();
        },
      })
    : undefined;
  growth?.start();
  progress?.start();
  const exit: CommandExit = await command.exited;
  const finishedAt = new Date();
  if (exit.error !== undefined) say(exit.error);
  await growth?.stop();
  await progress?.stop();

  if (writesMarkers) {
    try {
      if (exit.exitCode === 0) await recordDone(config, { startedAt: command.startedAt, finishedAt }, say);
      else await recordFailed(config, exit, lines.lastLines(), finishedAt, say);
    } catch (error) {
      // The command's exit code still goes back: a missing verdict is what the orchestrator sees.
      say(`could not record the verdict: ${(error as Error).message}`);
    }
  }
  return exit.exitCode;
}

process.exit(await main(process.argv.slice(2)));
