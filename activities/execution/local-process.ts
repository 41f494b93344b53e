/**
 * The embedded default's executor: a stage "container" is a process group on this host, run
 * by a small sh supervisor that records its pid, the stage's log and its exit status in the
 * container's folder. The process outlives the worker (like a container outlives an SSH
 * session), so a restarted watcher re-attaches by name instead of starting a second one.
 *
 * Mounts are not bind mounts here: the stage simulator resolves container paths through the
 * mount table in RECOGDRIVE_SIM_MOUNTS, and the stage wrapper (`recogdrive-stage`, from
 * `wrapperBinDir` on PATH) is given the host path of the output folder.
 */
import { spawn } from 'node:child_process';
import { watch as watchDir } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { SIMULATOR_CONTROLS } from '../../pipeline/env-policy.ts';
import { RESERVED_ENV, RESERVED_ENV_PREFIX, type SimulationConfig } from '../../pipeline/input.ts';
import type { Mount } from '../../pipeline/launch.ts';
import { WRAPPER_ENV } from '../../pipeline/markers.ts';
import { GROWTH_INTERVAL_ENV, growthIntervalFor } from '../../pipeline/output-growth.ts';
import type { LaunchRequest, LaunchResult, StopRequest, WatchRequest, WatchResult, WorkerEndpoint } from '../types.ts';
import { MAX_SAVED_LOG_BYTES, type LaunchContext, type StageExecutor, type StageLogs, type WatchContext } from './executor.ts';
import { LogScanner } from './log-scanner.ts';
import { WatchReporting } from './watch-reporting.ts';

/** Records pid and start time, runs the command with its output in `log`, then records the exit status. */
const SUPERVISOR = `
dir=$1; shift
date +%s%3N > "$dir/started"
echo $$ > "$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
"$@" >> "$dir/log" 2>&1 < /dev/null
code=$?
printf '%s %s\\n' "$code" "$(date +%s%3N)" > "$dir/exit.tmp" && mv "$dir/exit.tmp" "$dir/exit"
`;

export interface LocalProcessOptions {
  /** The stage simulator's entry point and the folder with its `python`/`pip` shims. */
  simulatorMain: string;
  shimsDir: string;
  /** The stage wrapper's `bin/` folder (docker/stage-wrapper/bin, with the `recogdrive-stage` shim). */
  wrapperBinDir: string;
  /** Node binary that runs the simulator and the stage wrapper. */
  nodePath: string;
  /** Where an artifact URI is on this host (file:// only). */
  hostPathOf(uri: string): string;
}

interface ResolvedMount {
  target: string;
  source: string;
  readOnly: boolean;
}

type ContainerState = { kind: 'absent' } | { kind: 'running'; pid: number } | { kind: 'exited'; code: number | null };

export class LocalProcessExecutor implements StageExecutor {
  private readonly options: LocalProcessOptions;

  constructor(options: LocalProcessOptions) {
    this.options = options;
  }

  /** Quick and local (no host to wait for): a try that lost its lease before the spawn starts nothing. */
  async launch(request: LaunchRequest, context?: LaunchContext): Promise<LaunchResult> {
    const { launch } = request;
    const dir = containerDir(request.lease.workers[0], launch.containerName);
    if ((await inspect(dir)).kind !== 'absent') return { containerName: launch.containerName, adopted: true };
    if (request.compute.backend !== 'local') throw invalid(`the local executor cannot run ${request.compute.backend} compute`);

    const mounts = await Promise.all(launch.mounts.map((mount) => this.resolveMount(mount)));
    const env = this.environment(request, dir, mounts);
    context?.cancelled.throwIfAborted();
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(join(dir, 'launch.json'), JSON.stringify(launch, null, 2));
    const workdir = mounts.find((m) => m.target === launch.workdir)?.source ?? '/';

    const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'rd-supervisor', dir, ...launch.command], {
      cwd: workdir,
      detached: true,
      stdio: 'ignore',
      env,
    });
    child.unref();
    await waitFor(() => readFile(join(dir, 'pid')).then(() => true, () => false), 10_000);
    return { containerName: launch.containerName, adopted: false };
  }

  async watch(request: WatchRequest, context: WatchContext): Promise<WatchResult> {
    const dir = containerDir(request.lease.workers[0], request.launch.containerName);
    // A retried watcher resumes where its predecessor's last heartbeat says it was.
    const resumed = context.resumeFrom as { offset?: number; seen?: string[] } | undefined;
    const scanner = new LogScanner(request.progressHints, request.logPatterns, resumed?.seen, Date.now());
    const log = join(dir, 'log');
    const changes = new FolderChanges(dir);
    try {
      return await this.follow(request, context, dir, log, scanner, changes, resumed?.offset ?? 0);
    } finally {
      changes.close();
    }
  }

  private async follow(
    request: WatchRequest,
    context: WatchContext,
    dir: string,
    log: string,
    scanner: LogScanner,
    changes: FolderChanges,
    startOffset: number,
  ): Promise<WatchResult> {
    let offset = startOffset;
    const reporting = new WatchReporting(scanner, context, request.progressIntervalMs);

    for (;;) {
      if (context.cancelled.aborted) throw context.cancelled.reason;
      const now = Date.now();
      const chunk = await readFrom(log, offset);
      if (chunk.length > 0) {
        offset += chunk.length;
        // The stage's lines and the wrapper's output-growth lines: the scanner tells them apart.
        scanner.feed(chunk.toString('utf8'), now);
        await context.logs.append(0, chunk.toString('utf8'));
      }
      const state = await inspect(dir);
      if (state.kind !== 'running') {
        const rest = await readFrom(log, offset);
        scanner.feed(rest.toString('utf8'), now);
        if (rest.length > 0) await context.logs.append(0, rest.toString('utf8'));
        await reporting.flush(now);
        const times = await processTimes(dir);
        return outcome(scanner, state.kind === 'exited' ? state.code : null, false, times);
      }
      if (scanner.stalled(now, request.hangTimeoutMs)) {
        return outcome(scanner, null, true, { startedAt: (await processTimes(dir)).startedAt, exitedAt: now });
      }
      await reporting.tick(now, { offset });
      await changes.next(Math.min(request.pollIntervalMs, 1000), context.cancelled);
    }
  }

  async stop(request: StopRequest, logs: StageLogs): Promise<void> {
    const dir = containerDir(request.lease.workers[0], request.launch.containerName);
    await killContainerProcesses(dir, 10_000);
    const log = await readTail(join(dir, 'log'), MAX_SAVED_LOG_BYTES);
    if (log !== undefined) await logs.save(0, log);
  }

  private async resolveMount(mount: Mount): Promise<ResolvedMount> {
    const source = mount.source.kind === 'host' ? mount.source.path : this.options.hostPathOf(mount.source.uri);
    if (mount.readOnly || mount.source.kind === 'host') {
      const exists = await stat(source).then((s) => s.isDirectory(), () => false);
      if (!exists) {
        const what = mount.source.kind === 'host' ? mount.source.path : mount.source.uri;
        throw ApplicationFailure.create({
          type: 'StageInputMissing',
          message: `${what} (mounted at ${mount.target}) does not exist on this machine`,
          nonRetryable: true,
        });
      }
    } else {
      await mkdir(source, { recursive: true });
    }
    return { target: mount.target, source, readOnly: mount.readOnly };
  }

  private environment(request: LaunchRequest, dir: string, mounts: ResolvedMount[]): NodeJS.ProcessEnv {
    const simulate: SimulationConfig | undefined = request.compute.backend === 'local' ? request.compute.simulate : undefined;
    const fault = simulate?.fault;
    const faultApplies = fault !== undefined && (fault.attempts === undefined || fault.attempts.includes(request.attempt));
    // No bind mounts here: the wrapper writes its markers where the output folder is on this host.
    const output = mounts.find((m) => m.target === request.launch.output.containerPath);
    if (output === undefined) throw invalid(`no mount for the output folder ${request.launch.output.containerPath}`);
    const markersPath = request.launch.markers?.containerPath;
    const markers = markersPath === undefined ? undefined : mounts.find((m) => m.target === markersPath);
    if (markersPath !== undefined && markers === undefined) throw invalid(`no mount for the markers folder ${markersPath}`);
    // A clean environment, as in a container: nothing of the worker's own environment leaks into a stage,
    // and of the stage's env only what the contract and the orchestrator set (hostProcessEnv).
    return {
      ...hostProcessEnv(request.launch.env),
      PATH: `${this.options.shimsDir}:${this.options.wrapperBinDir}:/usr/local/bin:/usr/bin:/bin`,
      LANG: 'C.UTF-8',
      HOME: join(dir, 'state'),
      RECOGDRIVE_SIM_MAIN: this.options.simulatorMain,
      RECOGDRIVE_SIM_NODE: this.options.nodePath,
      RECOGDRIVE_SIM_MOUNTS: JSON.stringify(mounts),
      RECOGDRIVE_SIM_WORKDIR: request.launch.workdir,
      RECOGDRIVE_SIM_STATE_DIR: join(dir, 'state'),
      RECOGDRIVE_SIM_DURATION_MS: String(simulate?.durationMs ?? 1500),
      // The GPUs this machine plays for the stage (a `gpu` trainer's torchrun and NCCL see them).
      RECOGDRIVE_SIM_GPUS: String(simulate?.gpus ?? 0),
      RECOGDRIVE_WRAPPER_NODE: this.options.nodePath,
      // The wrapper reports output growth often enough for the watcher's hang rule.
      ...(request.hangTimeoutMs === undefined ? {} : { [GROWTH_INTERVAL_ENV]: String(growthIntervalFor(request.hangTimeoutMs)) }),
      [WRAPPER_ENV.attempt]: String(request.attempt),
      [WRAPPER_ENV.worker]: '0',
      [WRAPPER_ENV.outputDir]: output.source,
      ...(markers === undefined ? {} : { [WRAPPER_ENV.markerDir]: markers.source }),
      ...(faultApplies ? { RECOGDRIVE_SIM_FAULT: fault.kind, RECOGDRIVE_SIM_FAULT_AT: String(fault.at) } : {}),
    };
  }
}

/**
 * The part of a launch spec's env a host process may get: the contract's variables (RESERVED_ENV,
 * which a user's env cannot set), the stage wrapper's RECOGDRIVE_* and the simulator's controls.
 * Nothing else of a user's `env` reaches a process outside a container (NODE_OPTIONS, LD_PRELOAD ...
 * would run code on the worker host); the plumbing RECOGDRIVE_SIM_* names are set after this.
 */
export function hostProcessEnv(launchEnv: Readonly<Record<string, string>>): Record<string, string> {
  const reserved: readonly string[] = RESERVED_ENV;
  return Object.fromEntries(
    Object.entries(launchEnv).filter(
      ([name]) => reserved.includes(name) || (name.startsWith(RESERVED_ENV_PREFIX) && (!name.startsWith('RECOGDRIVE_SIM_') || SIMULATOR_CONTROLS.includes(name))),
    ),
  );
}

function containerDir(worker: WorkerEndpoint | undefined, name: string): string {
  if (worker?.kind !== 'local') throw invalid('the local executor needs a local worker');
  return join(worker.dir, 'containers', name);
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidLaunchSpec', message, nonRetryable: true });
}

async function inspect(dir: string): Promise<ContainerState> {
  const exit = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
  if (exit !== undefined) return { kind: 'exited', code: Number(exit.split(' ')[0]) };
  const pidText = await readFile(join(dir, 'pid'), 'utf8').catch(() => undefined);
  if (pidText === undefined) {
    // A launch that died before its supervisor started left nothing to adopt.
    const launched = await stat(join(dir, 'launch.json')).catch(() => undefined);
    return launched !== undefined && Date.now() - launched.mtimeMs < 10_000 ? { kind: 'running', pid: 0 } : { kind: 'absent' };
  }
  const pid = Number(pidText);
  if (await isSupervisor(pid, dir)) return { kind: 'running', pid };
  // The supervisor may have written `exit` between the two reads.
  const late = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
  return { kind: 'exited', code: late === undefined ? null : Number(late.split(' ')[0]) };
}

/** True when `pid` is alive and is this container's supervisor (not a reused pid). */
async function isSupervisor(pid: number, dir: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(dir);
}

/**
 * Stops every process of a container: TERM to its process group (as `docker stop` signals PID 1;
 * the stage wrapper forwards it to the command's own group), KILL after the grace period to every
 * process group below the supervisor, the command's included.
 */
export async function killContainerProcesses(dir: string, graceMs = 0): Promise<void> {
  const state = await inspect(dir);
  if (state.kind !== 'running' || state.pid === 0) return;
  const signalGroups = (groups: Iterable<number>, signal: NodeJS.Signals) => {
    for (const group of groups) {
      try {
        process.kill(-group, signal);
      } catch {
        // already gone
      }
    }
  };
  if (graceMs > 0) {
    signalGroups([state.pid], 'SIGTERM');
    if (await waitFor(async () => !(await isSupervisor(state.pid, dir)), graceMs)) return;
  }
  signalGroups(await processGroupsBelow(state.pid), 'SIGKILL');
  await waitFor(async () => !(await isSupervisor(state.pid, dir)), 5_000);
}

/** The process groups of `pid` and of every process descended from it (the wrapper runs its command in a group of its own). */
async function processGroupsBelow(pid: number): Promise<Set<number>> {
  const children = new Map<number, number[]>();
  const groupOf = new Map<number, number>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined);
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
    const [, ppid, pgrp] = stat?.slice(stat.lastIndexOf(')') + 2).split(' ') ?? [];
    if (ppid === undefined || pgrp === undefined) continue;
    groupOf.set(Number(name), Number(pgrp));
    children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), Number(name)]);
  }
  const groups = new Set<number>([pid]);
  const queue = [pid];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    const group = groupOf.get(next);
    if (group !== undefined && group > 1) groups.add(group);
    queue.push(...(children.get(next) ?? []));
  }
  return groups;
}

async function processTimes(dir: string): Promise<{ startedAt: number; exitedAt: number }> {
  const started = Number(await readFile(join(dir, 'started'), 'utf8').catch(() => '0'));
  const exit = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
  const exitedAt = exit === undefined ? Date.now() : Number(exit.trim().split(' ')[1]);
  return { startedAt: started, exitedAt };
}

function outcome(
  scanner: LogScanner,
  exitCode: number | null,
  hung: boolean,
  times: { startedAt: number; exitedAt: number },
): WatchResult {
  return {
    exitCode,
    oomKilled: false,
    hung,
    logTail: scanner.lastLines(),
    seenPatterns: scanner.seenPatterns(),
    ...times,
  };
}

/** The last `max` bytes of a file as text; undefined when there is no file. */
async function readTail(path: string, max: number): Promise<string | undefined> {
  const size = await stat(path).then((s) => s.size, () => undefined);
  return size === undefined ? undefined : (await readFrom(path, Math.max(0, size - max), max)).toString('utf8');
}

async function readFrom(path: string, offset: number, max = 4 * 1024 * 1024): Promise<Buffer> {
  const file = await open(path, 'r').catch(() => undefined);
  if (file === undefined) return Buffer.alloc(0);
  try {
    const { size } = await file.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buffer = Buffer.alloc(Math.min(size - offset, max));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** Wakes the watcher when anything in a container folder changes (log output, exit file); never misses one. */
class FolderChanges {
  private changed = false;
  private wake: (() => void) | undefined;
  private readonly watcher: ReturnType<typeof watchDir> | undefined;

  constructor(dir: string) {
    try {
      this.watcher = watchDir(dir, () => this.notify());
      this.watcher.on('error', () => this.notify());
    } catch {
      this.watcher = undefined; // the timeout alone still polls
    }
  }

  /** Resolves at once if something changed since the last call, else on the next change or after `ms`. */
  async next(ms: number, cancelled: AbortSignal): Promise<void> {
    if (!this.changed && !cancelled.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          cancelled.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        cancelled.addEventListener('abort', done);
        this.wake = done;
      });
    }
    this.changed = false;
  }

  close(): void {
    this.watcher?.close();
  }

  private notify(): void {
    this.changed = true;
    this.wake?.();
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return check();
}
