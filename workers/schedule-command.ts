/**
 * `recogdrive schedule ...`: the nightly retraining schedule from a config file
 * (infra/schedules/). Registered by cli.ts, which hands over its connect() and its error type.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ScheduleNotFoundError, type Client } from '@temporalio/client';
import { InvalidScheduleConfig, parseScheduleConfig, ScheduleId, type ScheduleConfig } from '../infra/schedules/schedule-config.ts';
import { quoted } from '../pipeline/naming.ts';
import { jsonDocumentProblem } from '../pipeline/safe-keys.ts';
import { configFromEnv } from './config.ts';
import { outsideWorkerRoots } from './worker-roots.ts';
import { parsePipelineInput } from '../pipeline/input.ts';
import {
  createOrUpdateSchedule,
  deleteSchedule,
  describeSchedule,
  formatSchedule,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
  type TriggerResult,
} from './schedule.ts';

export interface ScheduleCliDeps {
  /** Connects to Temporal, or throws the CLI's "unreachable" error (exit 3). */
  connect(): Promise<Client>;
  /** The CLI's error: printed as `recogdrive: <message>`, the process exits with `exitCode`. */
  fail(message: string, exitCode: number): Error;
  exit: { badInput: number; runFailed: number; notFound: number };
}

interface JsonOption {
  json?: boolean;
}

export function registerScheduleCommands(program: Command, deps: ScheduleCliDeps): void {
  const print = (opts: JsonOption, value: unknown, human: string): void => {
    console.log(opts.json === true ? JSON.stringify(value, null, 2) : human);
  };

  /** A schedule id argument, checked as a config file's scheduleId is (exit 2). */
  const scheduleIdOf = (value: string): string => {
    const parsed = ScheduleId.safeParse(value);
    if (!parsed.success) throw deps.fail(`${quoted(value)} is not a schedule id: ${parsed.error.issues[0]?.message ?? 'invalid'}`, deps.exit.badInput);
    return value;
  };

  /** Runs `body` with a client; a missing schedule is reported naming it (exit 4). */
  const withClient = async <T>(scheduleId: string | undefined, body: (client: Client) => Promise<T>): Promise<T> => {
    const client = await deps.connect();
    try {
      return await body(client);
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) throw deps.fail(`no schedule ${scheduleId ?? error.scheduleId}`, deps.exit.notFound);
      if (error instanceof InvalidScheduleConfig) throw deps.fail(error.message, deps.exit.badInput);
      throw error;
    } finally {
      await client.connection.close();
    }
  };

  const readConfig = async (path: string): Promise<unknown> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw deps.fail(`cannot read ${path}: ${(error as Error).message}`, deps.exit.badInput);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw deps.fail(`${path} is not valid JSON: ${(error as Error).message}`, deps.exit.badInput);
    }
    const problem = jsonDocumentProblem(value, path, { prototypeKeys: false });
    if (problem !== undefined) throw deps.fail(problem, deps.exit.badInput);
    return value;
  };

  const schedule = program
    .command('schedule')
    .description('the nightly retraining: a Temporal Schedule that starts the pipeline with a fixed input (see infra/schedules/)');

  schedule
    .command('create')
    .description('create the schedule from a config file, or update it in place when it exists (validated first: a bad file changes nothing)')
    .requiredOption('--file <json>', 'schedule config (infra/schedules/nightly.example.json)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { file: string } & JsonOption) => {
      const raw = await readConfig(opts.file);
      // Before connecting: a bad file is exit 2 even with no server around.
      let config: ScheduleConfig;
      try {
        config = parseScheduleConfig(raw);
      } catch (error) {
        if (error instanceof InvalidScheduleConfig) throw deps.fail(`${opts.file}: ${error.message}`, deps.exit.badInput);
        throw error;
      }
      const outside = outsideWorkerRoots(parsePipelineInput(config.input), configFromEnv().RECOGDRIVE_ALLOWED_ROOTS).map((issue) => `input.${issue}`);
      if (outside.length > 0) throw deps.fail(`${opts.file}: ${new InvalidScheduleConfig(outside).message}`, deps.exit.badInput);
      const result = await withClient(config.scheduleId, (client) => createOrUpdateSchedule(client, config, configFromEnv().RECOGDRIVE_TASK_QUEUE));
      print(opts, result, `${result.outcome} schedule ${result.scheduleId}`);
    });

  schedule
    .command('pause')
    .description('stop taking actions (a run already going continues)')
    .argument('<id>', 'the schedule id', scheduleIdOf)
    .option('--reason <text>', 'why (shown as the schedule\'s note)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason?: string } & JsonOption) => {
      await withClient(id, (client) => pauseSchedule(client, id, opts.reason));
      print(opts, { scheduleId: id, paused: true, ...(opts.reason === undefined ? {} : { note: opts.reason }) }, `paused schedule ${id}`);
    });

  schedule
    .command('unpause')
    .description('take actions again from the next scheduled time (missed ones within the catch-up window too)')
    .argument('<id>', 'the schedule id', scheduleIdOf)
    .option('--reason <text>', 'why (shown as the schedule\'s note)')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { reason?: string } & JsonOption) => {
      await withClient(id, (client) => unpauseSchedule(client, id, opts.reason));
      print(opts, { scheduleId: id, paused: false, ...(opts.reason === undefined ? {} : { note: opts.reason }) }, `unpaused schedule ${id}`);
    });

  schedule
    .command('trigger')
    .description('start a run now, under overlap SKIP: nothing starts while a run of the schedule is still going')
    .argument('<id>', 'the schedule id', scheduleIdOf)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: JsonOption) => {
      const result = await withClient(id, (client) => triggerSchedule(client, id));
      if (result.outcome !== 'skipped') {
        print(opts, result, triggerText(result));
        return;
      }
      if (opts.json === true) print(opts, result, '');
      throw deps.fail(triggerText(result), deps.exit.runFailed);
    });

  schedule
    .command('delete')
    .description('delete the schedule (runs it already started go on)')
    .argument('<id>', 'the schedule id', scheduleIdOf)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: JsonOption) => {
      await withClient(id, (client) => deleteSchedule(client, id));
      print(opts, { scheduleId: id, deleted: true }, `deleted schedule ${id}`);
    });

  schedule
    .command('describe')
    .description('spec, time zone, overlap policy, catch-up window, state, recent runs and next times')
    .argument('<id>', 'the schedule id', scheduleIdOf)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: JsonOption) => {
      const view = await withClient(id, (client) => describeSchedule(client, id));
      print(opts, view, formatSchedule(view));
    });
}

function triggerText(result: TriggerResult): string {
  switch (result.outcome) {
    case 'started':
      return `triggered schedule ${result.scheduleId}: run ${result.workflowId}`;
    case 'skipped':
      return `schedule ${result.scheduleId}: a run is still going (${result.running.join(', ')}); overlap SKIP, so this trigger started nothing`;
    case 'pending':
      return `triggered schedule ${result.scheduleId}; Temporal has not started the run yet (see: recogdrive schedule describe ${result.scheduleId})`;
  }
}
