/**
 * `recogdrive`: plan, start, watch and cancel pipeline runs; run the worker; bring up the
 * embedded default stack. Exit codes (EXIT): 0 success, 1 the run failed, 2 bad input or usage,
 * 3 the Temporal server could not be reached, 4 no such run (schedule, log, record), 5 conflict
 * (the run id is taken by another input, the run has already ended), 6 internal error. A user
 * mistake is one `recogdrive: ...` line on stderr, never a stack trace.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { CancelledFailure, Client, Connection, isGrpcServiceError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { InvalidPipelineInput } from '../pipeline/input.ts';
import { ImageNotFound, RegistryAuthFailed } from '../activities/images/registry-client.ts';
import { InvalidRegistryCredentials } from '../activities/images/registry-credentials.ts';
import { defaultRunId, quoted, runIdProblem } from '../pipeline/naming.ts';
import { jsonDocumentProblem } from '../pipeline/safe-keys.ts';
import { isStageName, STAGES, type StageName } from '../pipeline/stages.ts';
import { buildPlan } from '../pipeline/plan.ts';
import type { RunSummary } from '../pipeline/status.ts';
import { configFromEnv, registryAccess, type WorkerConfig } from './config.ts';
import { formatPlan, formatStatus, formatSummary } from './format.ts';

import { RerunRequestError } from './rerun-input.ts';
import { describeRun, LogNotFound, oneLine, RunIdTaken, RunNotFound, runStatus, RunWithoutStatus, startOnce } from './runs.ts';
import { parseForWorker } from './worker-roots.ts';
// Commands load what only they need (the worker, the local stack, artifact stores) when they run: every command starts fast.
const lineageCommand = () => import('./lineage-command.ts');
import { watchStatus } from './status-command.ts';
import { cancelledByText, cancelRequestOf, cliRequester, requestCancel } from './cancel-request.ts';
import { registerScheduleCommands } from './schedule-command.ts';
import { registerJanitorCommands } from './janitor-command.ts';

export const EXIT = { ok: 0, runFailed: 1, badInput: 2, unreachable: 3, notFound: 4, conflict: 5, internal: 6 } as const;

class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

async function readInput(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`, EXIT.badInput);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${(error as Error).message}`, EXIT.badInput);
  }
  const problem = jsonDocumentProblem(value, path, { prototypeKeys: false });
  if (problem !== undefined) throw new CliError(problem, EXIT.badInput);
  return value;
}

/** The input, validated as the worker will (with its roots when RECOGDRIVE_ALLOWED_ROOTS is set here): a refused input starts nothing. */
function validate(raw: unknown) {
  try {
    return parseForWorker(raw, cliConfig().RECOGDRIVE_ALLOWED_ROOTS);
  } catch (error) {
    if (error instanceof InvalidPipelineInput) throw new CliError(error.message, EXIT.badInput);
    throw error;
  }
}

/** The worker's configuration from the environment; a bad variable is the user's (exit 2). */
function cliConfig(): WorkerConfig {
  try {
    return configFromEnv();
  } catch (error) {
    throw new CliError(oneLine((error as Error).message), EXIT.badInput);
  }
}

/** A run id given on the command line, checked by the rule of every channel (pipeline/naming.ts). */
function runIdOf(value: string): string {
  const problem = runIdProblem(value);
  if (problem !== undefined) throw new CliError(problem, EXIT.badInput);
  return value;
}

function stageOf(value: string): StageName {
  if (!isStageName(value)) throw new CliError(`unknown stage ${quoted(value)} (stages: ${STAGES.join(', ')})`, EXIT.badInput);
  return value;
}

async function connect(): Promise<Client> {
  const config = cliConfig();
  try {
    const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, connectTimeout: 5000 });
    return new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  } catch (error) {
    throw new CliError(`cannot reach Temporal at ${config.TEMPORAL_ADDRESS}: ${(error as Error).message}`, EXIT.unreachable);
  }
}

function print(json: boolean, value: unknown, human: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : human());
}

export function buildCli(): Command {
  const program = new Command('recogdrive')
    .description('Durable orchestration of the ReCogDrive training pipeline on Temporal')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('plan')
    .description('show what a run would do: each stage\'s decision (RUN/REUSE with the reason) and complete launch spec; creates nothing')
    .requiredOption('--input <file>', 'pipeline input (one JSON object)')
    .option('--run-id <id>', 'run id (default: <experiment>-<UTC timestamp>)', runIdOf)
    .option('--lookup', 'read the artifact store to find verified outputs to reuse (otherwise every selected stage is RUN)')
    .option('--no-registry', 'do not ask image registries what a tag names (tags on cloud compute stay unresolved)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { input: string; runId?: string; lookup?: boolean; registry: boolean; json?: boolean }) => {
      const config = validate(await readInput(opts.input));
      // A tag that does not exist fails the plan (exit 2); an unreachable registry leaves it unresolved, with a warning.
      const { planImageDigests } = await import('./plan-images.ts');
      const images = await planImageDigests(config, opts.registry && registryAccess(cliConfig()));
      for (const why of images.unresolved) console.error(`recogdrive: warning: ${oneLine(why)} (the image stays unresolved in this plan)`);
      const context = opts.lookup === true ? await (await lineageCommand()).lookupForPlan(config, images.imageDigests) : { imageDigests: images.imageDigests };
      const plan = buildPlan(config, opts.runId ?? defaultRunId(config.experiment, new Date()), context);
      print(opts.json === true, plan, () => formatPlan(plan));
    });

  const lineage = program.command('lineage').description('what produced an artifact, and which runs used it (read from the artifact store)');
  lineage
    .command('produced-by')
    .description('the run, stage, attempt, inputs and image that produced the artifact at <uri>')
    .argument('<uri>', 'an artifact folder, e.g. gs://bucket/prefix/runs/<run>/stage2')
    .option('--json', 'machine-readable output')
    .action(async (uri: string, opts: { json?: boolean }) => {
      const { producedBy, formatProducer } = await lineageCommand();
      const record = await producedBy(uri);
      if (record === undefined) throw new CliError(`${uri} has no lineage record (not produced and verified by a run)`, EXIT.notFound);
      print(opts.json === true, record, () => formatProducer(record));
    });
  lineage
    .command('used-by')
    .description('the runs that read or reused the artifact at <uri>')
    .argument('<uri>')
    .option('--artifact-root <uri>', "where the consuming runs keep their lineage (default: the producer's artifact root)")
    .option('--json', 'machine-readable output')
    .action(async (uri: string, opts: { artifactRoot?: string; json?: boolean }) => {
      const { usedBy, formatConsumers } = await lineageCommand();
      const found = await usedBy(uri, opts.artifactRoot);
      if (found === undefined) throw new CliError(`${uri} has no lineage record (not produced and verified by a run)`, EXIT.notFound);
      print(opts.json === true, found.consumers, () => formatConsumers(found.record, found.consumers));
    });

  program
    .command('start')
    .description('start a run (validated here first: a bad input starts nothing)')
    .requiredOption('--input <file>', 'pipeline input (one JSON object)')
    .option('--run-id <id>', 'run id = workflow id (default: <experiment>-<UTC timestamp>); letters, digits, . _ - :, at most 200', runIdOf)
    .option('--wait', 'wait for the run to finish and print its summary')
    .option('--json', 'machine-readable output')
    .action(async (opts: { input: string; runId?: string; wait?: boolean; json?: boolean }) => {
      const raw = await readInput(opts.input);
      const config = validate(raw);
      const runId = opts.runId ?? defaultRunId(config.experiment, new Date());
      const client = await connect();
      // A repeated start with the same input is the same run (running or finished); another input under the id is exit 5.
      const outcome = await startOnce(client, cliConfig().RECOGDRIVE_TASK_QUEUE, runId, raw, 'the run id was used for another input');
      if (!opts.wait) {
        print(opts.json === true, { runId, created: outcome === 'created' }, () => (outcome === 'created' ? `started run ${runId}` : `run ${runId} was already started with this input`));
        return;
      }
      await waitAndPrint(client, runId, opts.json === true);
    });

  program
    .command('rerun')
    .description('rerun a run partially: its input (patched with --overrides), stages from --from and --force run, every other verified output is reused; prints the plan first')
    .argument('<runId>', 'the run to rerun', runIdOf)
    .option('--from <stage>', 'this stage and everything downstream of it run', stageOf)
    .option('--force <stage>', 'this stage runs even if a verified output matches (repeatable)', collectStage, [])
    .option('--overrides <file>', 'JSON merged over the source input (JSON Merge Patch), e.g. {"stage2": {"learningRate": 5e-5}}')
    .option('--run-id <id>', 'id of the new run (default: <experiment>-rerun-<UTC timestamp>)', runIdOf)
    .option('--dry-run', 'print the plan and start nothing')
    .option('--wait', 'wait for the rerun to finish and print its summary')
    .option('--json', 'machine-readable output')
    .action(async (source: string, opts: { from?: StageName; force: StageName[]; overrides?: string; runId?: string; dryRun?: boolean; wait?: boolean; json?: boolean }) => {
      const overrides = opts.overrides === undefined ? undefined : await readInput(opts.overrides);
      if (overrides !== undefined && (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))) {
        throw new CliError(`${opts.overrides} must hold one JSON object`, EXIT.badInput);
      }
      const client = await connect();
      const { prepareRerun } = await import('./rerun-command.ts');
      const prepared = await prepareRerun(
        client,
        { source, force: opts.force, ...(opts.from === undefined ? {} : { fromStage: opts.from }), ...(overrides === undefined ? {} : { overrides: overrides as Record<string, unknown> }) },
        validate,
        opts.runId,
      );
      if (opts.dryRun === true) {
        print(opts.json === true, prepared.plan, () => formatPlan(prepared.plan));
        return;
      }
      if (opts.json !== true) console.log(formatPlan(prepared.plan));
      await startOnce(client, cliConfig().RECOGDRIVE_TASK_QUEUE, prepared.runId, prepared.input, 'the run id was used for another input');
      if (!opts.wait) {
        print(opts.json === true, { runId: prepared.runId, rerunOf: source }, () => `started rerun ${prepared.runId} of ${source}`);
        return;
      }
      await waitAndPrint(client, prepared.runId, opts.json === true);
    });

  program
    .command('status')
    .description('per-stage state, attempt, progress and artifacts of a run; --watch follows it until it ends (exit 0 succeeded, 1 otherwise)')
    .argument('<runId>', 'the run', runIdOf)
    .option('--watch', 'redraw until the run ends')
    .option('--interval <seconds>', 'seconds between refreshes with --watch', parseInterval, 2)
    .option('--json', 'machine-readable output (with --watch: one JSON line per change)')
    .action(async (runId: string, opts: { json?: boolean; watch?: boolean; interval: number }) => {
      const client = await connect();
      if (opts.watch === true) {
        const state = await watchStatus(client, runId, {
          intervalMs: opts.interval * 1000,
          json: opts.json === true,
          tty: process.stdout.isTTY === true,
          write: (text) => process.stdout.write(text),
        });
        if (state !== 'succeeded') throw new CliError(`run ${runId} ${state}`, EXIT.runFailed);
        return;
      }
      const status = await runStatus(client, runId);
      print(opts.json === true, status, () => formatStatus(status));
    });

  program
    .command('logs')
    .description('a stage\'s log, kept in the artifact store after the compute is gone')
    .argument('<runId>', 'the run', runIdOf)
    .argument('<stage>', STAGES.join(' | '), stageOf)
    .option('--attempt <n>', 'attempt (default: the latest)', parseAttempt)
    .option('--worker <i>', 'worker of a multi-host slice', parseWorker, 0)
    .option('-f, --follow', 'keep printing while the stage runs')
    .option('--bring-up', 'the bring-up of the attempt\'s machine (cloud VMs: login, image pull, code, data, bucket mounts) instead of the stage\'s output')
    .action(async (runId: string, stage: StageName, opts: { attempt?: number; worker: number; follow?: boolean; bringUp?: boolean }) => {
      const client = await connect();
      const { printStageLog } = await import('./logs-command.ts');
      await printStageLog(client, runId, stage, {
        ...(opts.attempt === undefined ? {} : { attempt: opts.attempt }),
        worker: opts.worker,
        follow: opts.follow === true,
        bringUp: opts.bringUp === true,
        write: (text) => process.stdout.write(text),
      });
    });

  program
    .command('cancel')
    .description('cancel a run: every stage stops and releases its compute')
    .argument('<runId>', 'the run', runIdOf)
    .action(async (runId: string) => {
      const client = await connect();
      const description = await describeRun(client, runId);
      if (description.status.name !== 'RUNNING') throw new CliError(`run ${runId} has already ended (${description.status.name})`, EXIT.conflict);
      await requestCancel(client, runId, cliRequester(), 'recogdrive cancel');
      console.log(`cancellation requested for ${runId}`);
    });

  program
    .command('api')
    .description('serve the HTTP API: runs, partial reruns, logs (RECOGDRIVE_API_TOKENS_FILE; see README "HTTP API")')
    .option('--port <port>', 'port to listen on', parsePort, 8080)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (opts: { port: number; host: string }) => {
      const { serveApi, InvalidApiConfig, TemporalUnreachable } = await import('./api/serve.ts');
      try {
        await serveApi(opts);
      } catch (error) {
        if (error instanceof InvalidApiConfig) throw new CliError(oneLine(error.message), EXIT.badInput);
        if (error instanceof TemporalUnreachable) throw new CliError(error.message, EXIT.unreachable);
        throw error;
      }
    });

  program
    .command('worker')
    .description('run a Temporal worker with the embedded default backend (TEMPORAL_ADDRESS, RECOGDRIVE_DATA_DIR)')
    .action(async () => {
      const { runWorker } = await import('./worker.ts');
      await runWorker();
    });

  program
    .command('local-input')
    .description('seed the small local dataset and print a pipeline input for the embedded default (for temporal workflow start / the Web UI)')
    .option('--data-dir <dir>', 'where the dataset and artifacts go', cliConfig().RECOGDRIVE_DATA_DIR)
    .option('--experiment <name>', 'experiment name', 'local-demo')
    .action(async (opts: { dataDir: string; experiment: string }) => {
      const { localPipelineInput, seedDataset } = await import('./local-input.ts');
      const dataset = await seedDataset(join(opts.dataDir, 'dataset', 'recogdrive'));
      console.log(JSON.stringify(localPipelineInput(opts.dataDir, dataset, { experiment: opts.experiment }), null, 2));
    });

  program
    .command('local')
    .description('bring up Temporal (+ Web UI) and a worker on this machine and run the pipeline on the embedded default')
    .option('--demo', 'exit when the run ends: 0 if it succeeded')
    .option('--data-dir <dir>', 'where the server database, dataset, artifacts and logs go', cliConfig().RECOGDRIVE_DATA_DIR)
    .option('--fault <stage=kind>', 'make the simulated stage crash|hang|oom|partial (repeatable)', collectFault, {})
    .option('--port <port>', 'Temporal gRPC port (default 7233; free ports with --demo)', parsePort)
    .option('--ui-port <port>', 'Web UI port (default 8233; free ports with --demo)', parsePort)
    .action(async (opts: { demo?: boolean; dataDir: string; port?: number; uiPort?: number; fault: Faults }) => {
      const demo = opts.demo === true;
      // npm start uses Temporal's default ports so `temporal workflow ...` finds the server; a demo must not collide.
      const { runLocal } = await import('./local-command.ts');
      const ok = await runLocal({
        demo,
        dataDir: opts.dataDir,
        faults: opts.fault,
        ...(opts.port !== undefined ? { port: opts.port } : demo ? {} : { port: 7233 }),
        ...(opts.uiPort !== undefined ? { uiPort: opts.uiPort } : demo ? {} : { uiPort: 8233 }),
      });
      if (!ok) throw new CliError('the run did not succeed', EXIT.runFailed);
    });

  // recogdrive schedule create|pause|unpause|trigger|delete|describe: the nightly retraining (workers/schedule-command.ts).
  registerScheduleCommands(program, { connect, fail: (message, exitCode) => new CliError(message, exitCode), exit: EXIT });
  // recogdrive janitor [schedule]: leaked compute of closed runs (workers/janitor-command.ts).
  registerJanitorCommands(program, { connect, fail: (message, exitCode) => new CliError(message, exitCode), exit: EXIT });

  return program;
}

type Faults = Partial<Record<StageName, FaultKind>>;
const FAULT_KINDS = ['crash', 'hang', 'oom', 'partial'] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

function collectFault(value: string, previous: Faults): Faults {
  const [stage = '', kind = ''] = value.split('=');
  if (!isStageName(stage) || !(FAULT_KINDS as readonly string[]).includes(kind)) {
    throw new CliError(`--fault takes <stage>=<${FAULT_KINDS.join('|')}>, got ${value}`, EXIT.badInput);
  }
  return { ...previous, [stage]: kind as FaultKind };
}

function collectStage(value: string, previous: StageName[]): StageName[] {
  return [...previous, stageOf(value)];
}

/** Whole numbers only ("1e3", "0x10" and " 2" are not what anyone types for a count). */
function parseCount(value: string, min: number, max: number, what: string): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new CliError(`${what} must be a whole number from ${min} to ${max}, got ${quoted(value)}`, EXIT.badInput);
  return n;
}

const parseAttempt = (value: string): number => parseCount(value, 1, 1000, '--attempt');
const parseInterval = (value: string): number => parseCount(value, 1, 3600, '--interval');
const parseWorker = (value: string): number => parseCount(value, 0, 1023, '--worker');
const parsePort = (value: string): number => parseCount(value, 1, 65535, 'the port');

async function waitAndPrint(client: Client, runId: string, json: boolean): Promise<void> {
  try {
    const summary = (await client.workflow.getHandle(runId).result()) as RunSummary;
    print(json, summary, () => formatSummary(summary));
  } catch (error) {
    if (error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure) {
      const request = await cancelRequestOf(client, runId).catch(() => undefined);
      throw new CliError(`run ${runId} was cancelled${request === undefined ? '' : ` (${cancelledByText(request)})`}`, EXIT.runFailed);
    }
    if (error instanceof WorkflowFailedError) {
      throw new CliError(`run ${runId} failed: ${error.cause?.message ?? error.message}`, EXIT.runFailed);
    }
    throw error;
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildCli().parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    const failure = cliErrorOf(error);
    console.error(`recogdrive: ${failure.message}`);
    // A bug, not a user mistake: the stack only on request.
    if (failure.exitCode === EXIT.internal && process.env.RECOGDRIVE_DEBUG !== undefined) console.error(error);
    return failure.exitCode;
  }
}

/** gRPC UNAVAILABLE / DEADLINE_EXCEEDED: Temporal went away after the connect. */
function temporalUnreachable(error: unknown): boolean {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (isGrpcServiceError(current) && (current.code === 14 || current.code === 4)) return true;
  }
  return false;
}

/** Every error as the CLI reports it: a message and the exit code of its kind. */
function cliErrorOf(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof RunNotFound || error instanceof LogNotFound) return new CliError(error.message, EXIT.notFound);
  if (error instanceof WorkflowNotFoundError) return new CliError(`no run ${error.workflowId ?? ''}`.trim(), EXIT.notFound);
  if (error instanceof RunIdTaken) return new CliError(error.message, EXIT.conflict);
  if (error instanceof RunWithoutStatus) return new CliError(error.message, EXIT.runFailed);
  if (error instanceof InvalidPipelineInput) return new CliError(error.message, EXIT.badInput);
  if (error instanceof ImageNotFound || error instanceof RegistryAuthFailed || error instanceof InvalidRegistryCredentials) return new CliError(oneLine(error.message), EXIT.badInput);
  if (error instanceof RerunRequestError) {
    return new CliError(error.message, error.kind === 'bad-request' ? EXIT.badInput : error.kind === 'unknown-run' ? EXIT.notFound : EXIT.runFailed);
  }
  if (temporalUnreachable(error)) return new CliError(`lost the Temporal server: ${oneLine((error as Error).message)}`, EXIT.unreachable);
  const message = error instanceof Error ? error.message : String(error);
  return new CliError(`internal error: ${oneLine(message)} (RECOGDRIVE_DEBUG=1 prints where)`, EXIT.internal);
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
