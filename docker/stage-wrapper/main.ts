/**
 * recogdrive-stage -- <command...>
 *
 * The stage entrypoint wrapper: runs a stage's command and leaves the stage completion protocol's
 * files (pipeline/markers.ts) next to its outputs, then exits with the command's exit code (128 + n
 * after signal n), so the orchestrator's exit classification is unchanged. See README.md.
 */
import { runCommand, type CommandExit } from './child.ts';
import { readWrapperEnv } from './env.ts';
import { OutputLines } from './output-lines.ts';
import { ProgressWriter } from './progress.ts';
import { recordDone, recordFailed } from './verdict.ts';

/** Exit code for a wrong invocation or environment: the command was not run. */
const USAGE_EXIT = 2;

const say = (line: string) => process.stderr.write(`recogdrive-stage: ${line}\n`);

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
  const command = runCommand(argv.slice(1), lines);
  const progress = writesMarkers ? new ProgressWriter(config, lines, command.startedAt) : undefined;
  progress?.start();
  const exit: CommandExit = await command.exited;
  const finishedAt = new Date();
  if (exit.error !== undefined) say(exit.error);
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
