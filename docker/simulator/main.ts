/**
 * ReCogDrive stage simulator: plays each pipeline stage faithfully to its contract, scaled down,
 * so the whole pipeline runs on one machine without TPUs. See README.md.
 *
 *   node main.ts python <script-path> [trainer args...]
 *   node main.ts torchrun [options] <script> [args...]
 *   node main.ts pip <pip args...>
 *   node main.ts seed --dir <hostDir> [--logs 3] [--tokens-per-log 4] [--test-logs 2] [--fixes none|all|a,b]
 */
import { SimulatorError } from './errors.ts';
import { err } from './log.ts';
import { runPip } from './pip.ts';
import { readControls } from './controls.ts';
import { runPython } from './python.ts';
import { runSeed } from './seed.ts';
import { runTorchrun } from './torchrun.ts';

const USAGE = 'usage: main.ts python <script> [args...] | torchrun [options] <script> [args...] | pip <args...> | seed --dir <dir> [--logs N] [--tokens-per-log N] [--test-logs N] [--fixes none|all|a,b]';

// `docker stop` sends SIGTERM; Python dies of it, which a shell reports as 128 + 15.
process.on('SIGTERM', () => process.exit(143));
process.on('SIGINT', () => process.exit(130));

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'python':
      return runPython(args);
    case 'pip':
      return runPip(args, readControls(process.env));
    case 'torchrun':
      return runTorchrun(args);
    case 'seed':
      return runSeed(args);
    default:
      err(USAGE);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof SimulatorError)) throw error;
  err(`recogdrive-sim: ${error.message}`);
  process.exitCode = 2;
}
