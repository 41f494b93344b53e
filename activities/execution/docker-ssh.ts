/**
 * Runs a stage's container on every worker of a slice over SSH (`docker run -d`), re-attaches by
 * container name instead of starting a second one, learns of an exit at once (a long-lived
 * `docker wait` per worker) and checks periodically (inspect, new log lines). Gang semantics: one
 * failed worker or one lost host fails the attempt as a whole, and stopping stops every worker.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { dockerRunArgs, rendezvousEnv, type MountSource } from '../../pipeline/launch.ts';
import type { ExitOutcome } from '../../pipeline/failures.ts';
import { WRAPPER_ENV } from '../../pipeline/markers.ts';
import { GROWTH_INTERVAL_ENV, growthIntervalFor } from '../../pipeline/output-growth.ts';
import { LEASE_OWNER } from '../../pipeline/janitor.ts';
import type { SshEndpoint, SshPool, ExecResult } from '../ssh/pool.ts';
import { SshConnectionLost, SshUnreachable } from '../ssh/errors.ts';
import type { BringUpRequest, BringUpResult, LaunchRequest, LaunchResult, StopRequest, WatchRequest, WatchResult, WorkerEndpoint } from '../types.ts';
import { bringUpSlice } from '../bring-up/run.ts';
import { FailureType } from '../../pipeline/failures.ts';
import { ATTEMPT_LABEL, docker, FREE_TPU, OWNER_LABEL, parseContainerState, parseTimedLines, RUN_LABEL, STAGE_LABEL, type ContainerState } from './docker-cli.ts';
import { MAX_SAVED_LOG_BYTES, type LaunchContext, type StageExecutor, type StageLogs, type WatchContext } from './executor.ts';
import { claimFence, FENCE_EXIT, fencedCommand, tombstoneFence, type FenceToken } from './host-fence.ts';
import { LogScanner, withoutGrowthLines } from './log-scanner.ts';
import { WatchReporting } from './watch-reporting.ts';

export interface DockerSshOptions {
  pool: SshPool;
  /** Prefix docker and TPU clean-up with `sudo -n` (TPU VM images need it for docker). */
  sudo: boolean;
  /** Where an artifact URI is on a worker host (gcsfuse mount for gs://, the path for file://). */
  hostPathOf(source: MountSource): string;
  /** Polls of a running stage give up connecting after this long (a lost host is decided over several polls). */
  pollConnectDeadlineMs: number;
}

interface WorkerWatch {
  endpoint: SshEndpoint;
  exit: { code: number; oomKilled: boolean } | undefined;
  waiting: boolean;
  unreachableSince: number | undefined;
  state: ContainerState | undefined;
  /** The container first seen: a different id later means it was replaced. */
  id?: string;
  replaced?: boolean;
}

/** How often a watcher heartbeats whatever its loop is waiting on (the SDK throttles what it sends). */
const WATCH_HEARTBEAT_MS = 1_000;

export class DockerSshExecutor implements StageExecutor {
  private readonly options: DockerSshOptions;

  constructor(options: DockerSshOptions) {
    this.options = options;
  }

  /**
   * Fences every host to this try, then adopts this attempt's containers or starts the slice
   * afresh (removing what another attempt left behind, e.g. on a host that was lost and answers
   * again). Heartbeats while it waits; once the try lost its lease or was overtaken by a newer
   * try it starts nothing more (host-fence.ts).
   */
  async launch(request: LaunchRequest, context: LaunchContext = UNSUPERVISED_LAUNCH): Promise<LaunchResult> {
    const name = request.launch.containerName;
    const endpoints = sshEndpoints(request.lease.workers);
    const token: FenceToken = { attempt: request.attempt, try: context.tryNumber };
    const signal = context.cancelled;
    context.heartbeat();
    const beating = setInterval(() => context.heartbeat(), 1_000);
    try {
      // Nothing is created anywhere before every host of the slice answered and names this try.
      await Promise.all(endpoints.map((e) => this.fenced(e, claimFence(name, token), signal, 'claim the launch fence')));
      const states = await Promise.all(endpoints.map((e) => this.state(e, name, undefined, signal)));
      if (states.every((s) => s?.attempt === request.attempt)) return { containerName: name, adopted: true };
      // Half a slice from an interrupted try, or an earlier attempt's leftovers: start the whole slice afresh.
      const remove = (e: SshEndpoint) => this.fenced(e, fencedCommand(name, token, this.dockerArgv(docker.remove(name))), signal, `remove ${name}`);
      await Promise.all(endpoints.filter((_, i) => states[i] !== undefined).map(remove));
      try {
        // Every host's start settles before any clean-up, so no create can land after the removal.
        const started = await Promise.allSettled(endpoints.map((endpoint, worker) => this.start(request, endpoint, worker, token, signal)));
        const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      } catch (error) {
        // A newer try (or the stop that follows a cancel) owns the slice now: only a try still in charge cleans up.
        if (!(error instanceof LaunchSuperseded) && !signal.aborted) await Promise.allSettled(endpoints.map(remove));
        throw error;
      }
      return { containerName: name, adopted: false };
    } catch (error) {
      throw launchFailure(error, signal);
    } finally {
      clearInterval(beating);
    }
  }

  /** Runs the bring-up steps on every host of the slice (activities/bring-up/), buckets mounted where hostPathOf expects them. */
  async bringUp(request: BringUpRequest, context: { cancelled: AbortSignal; log(worker: number, text: string): Promise<void> }): Promise<BringUpResult> {
    const steps = await bringUpSlice(sshEndpoints(request.lease.workers), request.spec, {
      pool: this.options.pool,
      sudo: this.options.sudo,
      log: context.log,
      signal: context.cancelled,
      mountPointOf: (bucket) => this.options.hostPathOf({ kind: 'artifact', uri: `gs://${bucket}` }),
    });
    return { steps: steps.map(({ worker, step, ms }) => ({ worker, step, ms })) };
  }

  async watch(request: WatchRequest, context: WatchContext): Promise<WatchResult> {
    const name = request.launch.containerName;
    // A retried watcher resumes after the last log line its predecessor saw.
    const resumed = context.resumeFrom as { since?: string; seen?: string[]; unreachableSince?: unknown } | undefined;
    const scanner = new LogScanner(request.progressHints, request.logPatterns, resumed?.seen, Date.now());
    // Since when each host has not answered, also from the predecessor: a watcher retried while a host
    // is silent (its polls take up to the connect deadline) must not restart the count towards "lost".
    const silentSince = Array.isArray(resumed?.unreachableSince) ? (resumed.unreachableSince as unknown[]) : [];
    const workers: WorkerWatch[] = sshEndpoints(request.lease.workers).map((endpoint, index) => {
      const since = silentSince[index];
      return {
        endpoint,
        exit: undefined,
        waiting: false,
        unreachableSince: typeof since === 'number' && Number.isFinite(since) ? since : undefined,
        state: undefined,
      };
    });
    // A host silent for several polls (each giving up connecting after pollConnectDeadlineMs) is lost.
    const hostLostAfterMs = Math.max(5 * request.pollIntervalMs, 3 * this.options.pollConnectDeadlineMs);
    let since = resumed?.since;
    let sinceKey: bigint | undefined;
    const reporting = new WatchReporting(scanner, context, request.progressIntervalMs);
    let wake: (() => void) | undefined;
    const nudge = () => wake?.();
    const checkpoint = () => ({ since, unreachableSince: workers.map((w) => w.unreachableSince ?? null) });
    // A loop turn with a silent host takes a connect deadline per command: heartbeat on a clock too,
    // so the watcher is not timed out (and restarted) for waiting on the very host it must declare lost.
    const beating = setInterval(() => reporting.beat(checkpoint()), WATCH_HEARTBEAT_MS);
    try {
      for (;;) {
        if (context.cancelled.aborted) throw context.cancelled.reason;
        for (const worker of workers) if (worker.exit === undefined && !worker.waiting) this.awaitExit(worker, name, context.cancelled, nudge);

        const now = Date.now();
        await Promise.all(workers.map((w) => this.poll(w, name)));
        const fresh = await this.newLogLines(workers[0]!.endpoint, name, since, sinceKey);
        if (fresh.length > 0) {
          // Worker 0's log: the stage's lines and its wrapper's output-growth lines (the scanner tells them apart).
          since = fresh.at(-1)!.timestamp;
          sinceKey = fresh.at(-1)!.key;
          const text = fresh.map((l) => `${l.text}\n`).join('');
          scanner.feed(text, now);
          await context.logs.append(0, text);
        }

        const failed = workers.findIndex((w) => w.exit !== undefined && (w.exit.code !== 0 || w.exit.oomKilled));
        const lost = workers.findIndex((w) => w.unreachableSince !== undefined && now - w.unreachableSince > hostLostAfterMs);
        const vanished = workers.findIndex((w) => w.replaced === true || (w.exit === undefined && w.unreachableSince === undefined && w.state === undefined));
        if (failed >= 0 || lost >= 0 || vanished >= 0 || workers.every((w) => w.exit?.code === 0)) {
          await reporting.flush(now);
          return this.outcome(workers, name, scanner, { failed, lost, vanished });
        }
        if (scanner.stalled(now, request.hangTimeoutMs)) return this.outcome(workers, name, scanner, { hung: true });
        await reporting.tick(now, checkpoint());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => done(), request.pollIntervalMs);
          const done = () => {
            clearTimeout(timer);
            context.cancelled.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          wake = done;
          context.cancelled.addEventListener('abort', done);
        });
      }
    } finally {
      clearInterval(beating);
    }
  }

  async stop(request: StopRequest, logs: StageLogs): Promise<void> {
    const name = request.launch.containerName;
    await Promise.all(
      sshEndpoints(request.lease.workers).map(async (endpoint, worker) => {
        // A host that does not answer within a few polls is treated as gone, not waited for.
        const reach = { connectDeadlineMs: 3 * this.options.pollConnectDeadlineMs };
        try {
          // First the tombstone: a late launch try of this attempt can start nothing after this stop.
          const fence = await this.options.pool.exec(endpoint, tombstoneFence(name, request.attempt), reach);
          if (fence.code !== 0) throw new Error(`could not close the launch fence of ${name} on ${endpoint.host} (exit ${fence.code}): ${lastLine(fence.stderr)}`);
          await this.run(endpoint, docker.stop(name, 30), reach);
          const log = await this.run(endpoint, docker.logs(name), { ...reach, mergeStderr: true, maxOutputBytes: MAX_SAVED_LOG_BYTES });
          if (log.code === 0) await logs.save(worker, log.stdout);
          await this.run(endpoint, docker.remove(name), reach);
        } catch (error) {
          // A host that is gone took its container with it, or keeps it until the next attempt's launch
          // (same name) or the janitor removes it; deleting a cloud VM (release) finishes the job.
          if (!(error instanceof SshUnreachable || error instanceof SshConnectionLost)) throw error;
        }
      }),
    );
  }

  /** Creates the container on one worker (launch removed any stale one): TPU freed, image present, then the fenced docker run -d. */
  private async start(request: LaunchRequest, endpoint: SshEndpoint, worker: number, token: FenceToken, signal: AbortSignal): Promise<void> {
    const { launch } = request;
    await this.check(endpoint, FREE_TPU, 'free the TPU', signal);
    for (const mount of launch.mounts) {
      const path = this.options.hostPathOf(mount.source);
      if (mount.readOnly || mount.source.kind === 'host') {
        const exists = await this.run(endpoint, ['test', '-d', path], { signal });
        if (exists.code !== 0) {
          throw ApplicationFailure.create({
            type: 'StageInputMissing',
            message: `${path} (mounted at ${mount.target}) does not exist on ${endpoint.host}`,
            nonRetryable: true,
          });
        }
      } else {
        await this.check(endpoint, ['mkdir', '-p', path], `create ${path}`, signal);
      }
    }
    await this.ensureImage(endpoint, launch.image, signal);
    const args = dockerRunArgs(launch, (source) => this.options.hostPathOf(source), {
      labels: {
        [OWNER_LABEL]: LEASE_OWNER,
        [STAGE_LABEL]: launch.stage,
        [ATTEMPT_LABEL]: String(request.attempt),
        // The janitor's key to the run's state in Temporal (static hosts: activities/compute/static-janitor.ts).
        ...(request.runId === undefined ? {} : { [RUN_LABEL]: request.runId }),
      },
      // Per container: which attempt and which worker of the slice (the stage wrapper writes markers
      // and reports output growth on worker 0 only), and how often growth is looked for.
      env: {
        [WRAPPER_ENV.attempt]: String(request.attempt),
        [WRAPPER_ENV.worker]: String(worker),
        ...(request.hangTimeoutMs === undefined ? {} : { [GROWTH_INTERVAL_ENV]: String(growthIntervalFor(request.hangTimeoutMs)) }),
        // torchrun over several machines: this one's node rank, and worker 0 as the master.
        ...(launch.rendezvous === undefined ? {} : rendezvousEnv(launch.rendezvous, worker, sshEndpoints([request.lease.workers[0]!])[0]!.host)),
      },
    });
    await this.fenced(endpoint, fencedCommand(launch.containerName, token, this.dockerArgv(['docker', ...args])), signal, `start ${launch.containerName}`);
  }

  /** Runs a fence command (host-fence.ts); a try the fence no longer names fails with LaunchSuperseded, having done nothing. */
  private async fenced(endpoint: SshEndpoint, argv: readonly string[], signal: AbortSignal, what: string): Promise<void> {
    // A try that lost its lease starts nothing more.
    signal.throwIfAborted();
    const result = await this.options.pool.exec(endpoint, argv, { signal });
    if (result.code === FENCE_EXIT.superseded) throw new LaunchSuperseded(`could not ${what}: ${endpoint.host}:${endpoint.port} is fenced to a newer try (attempt, try: ${result.stdout.trim()})`);
    if (result.code !== 0) throw new Error(`could not ${what} on ${endpoint.host} (exit ${result.code}): ${lastLine(result.stderr)}`);
  }

  private dockerArgv(argv: readonly string[]): string[] {
    return this.options.sudo ? ['sudo', '-n', ...argv] : [...argv];
  }

  /** The image's id on the worker ("sha256:..."), pulled first when absent: what a fingerprint names instead of a tag. */
  async imageDigest(worker: WorkerEndpoint, image: string): Promise<string> {
    const [endpoint] = sshEndpoints([worker]);
    await this.ensureImage(endpoint!, image);
    const result = await this.run(endpoint!, docker.imagePresent(image));
    const id = result.stdout.trim();
    if (result.code !== 0 || !/^(sha256:)?[0-9a-f]{64}$/.test(id)) {
      throw new Error(`docker image inspect ${image} on ${endpoint!.host} gave no image id: ${result.stderr.trim().split('\n').at(-1) ?? ''}`);
    }
    return id.startsWith('sha256:') ? id : `sha256:${id}`;
  }

  private async ensureImage(endpoint: SshEndpoint, image: string, signal?: AbortSignal): Promise<void> {
    if ((await this.run(endpoint, docker.imagePresent(image), { ...(signal === undefined ? {} : { signal }) })).code === 0) return;
    let last: ExecResult | undefined;
    for (const delay of [0, 5_000, 15_000]) {
      await sleep(delay, undefined, signal === undefined ? {} : { signal });
      last = await this.run(endpoint, docker.pull(image), { ...(signal === undefined ? {} : { signal }) });
      if (last.code === 0) return;
    }
    throw new Error(`pulling ${image} on ${endpoint.host} failed: ${last?.stderr.trim().split('\n').at(-1) ?? ''}`);
  }

  /** Starts (once) the long-lived `docker wait` that reports a worker's exit as soon as it happens. */
  private awaitExit(worker: WorkerWatch, name: string, cancelled: AbortSignal, nudge: () => void): void {
    worker.waiting = true;
    this.run(worker.endpoint, docker.wait(name), { signal: cancelled, connectDeadlineMs: this.options.pollConnectDeadlineMs })
      .then(async (result) => {
        const code = Number(result.stdout.trim().split('\n').at(-1));
        if (result.code !== 0 || !Number.isInteger(code)) return;
        // The exit of the container this watcher follows, not of one removed or replaced under it (that is no code error).
        const now = await this.state(worker.endpoint, name, this.options.pollConnectDeadlineMs).catch(() => undefined);
        if (now !== undefined && now.id === (worker.id ?? now.id) && now.status !== 'running') worker.exit ??= { code, oomKilled: false };
      })
      .catch(() => {
        // Connection trouble: the next poll decides (and a new wait starts).
      })
      .finally(() => {
        worker.waiting = false;
        nudge();
      });
  }

  /** One inspect: the state, or that the host did not answer. */
  private async poll(worker: WorkerWatch, name: string): Promise<void> {
    try {
      const state = await this.state(worker.endpoint, name, this.options.pollConnectDeadlineMs);
      worker.unreachableSince = undefined;
      worker.state = state;
      // Another container under the same name (a launch of another attempt replaced it): this attempt's is gone.
      if (state !== undefined && worker.id !== undefined && state.id !== worker.id) worker.replaced = true;
      if (state !== undefined) worker.id ??= state.id;
      if (state !== undefined && state.status === 'exited' && worker.replaced !== true) {
        worker.exit = { code: state.exitCode, oomKilled: state.oomKilled };
      }
    } catch (error) {
      if (!(error instanceof SshUnreachable || error instanceof SshConnectionLost)) throw error;
      worker.unreachableSince ??= Date.now();
      this.options.pool.forget(worker.endpoint);
    }
  }

  private async newLogLines(endpoint: SshEndpoint, name: string, since: string | undefined, sinceKey: bigint | undefined) {
    try {
      const result = await this.run(endpoint, docker.logsSince(name, since), {
        mergeStderr: true,
        connectDeadlineMs: this.options.pollConnectDeadlineMs,
      });
      return result.code === 0 ? parseTimedLines(result.stdout).filter((l) => sinceKey === undefined || l.key > sinceKey) : [];
    } catch (error) {
      if (error instanceof SshUnreachable || error instanceof SshConnectionLost) return [];
      throw error;
    }
  }

  private async outcome(
    workers: WorkerWatch[],
    name: string,
    scanner: LogScanner,
    verdict: { failed?: number; lost?: number; vanished?: number; hung?: boolean },
  ): Promise<ExitOutcome> {
    const started = workers.map((w) => w.state?.startedAt).filter((t): t is number => t !== undefined);
    const finished = workers.map((w) => w.state?.finishedAt).filter((t): t is number => t !== undefined);
    const base = {
      oomKilled: false,
      hung: verdict.hung === true,
      seenPatterns: scanner.seenPatterns(),
      startedAt: started.length > 0 ? Math.min(...started) : Date.now(),
      exitedAt: finished.length > 0 ? Math.max(...finished) : Date.now(),
      logTail: scanner.lastLines(),
    };
    const multi = workers.length > 1;
    if (verdict.failed !== undefined && verdict.failed >= 0) {
      const worker = workers[verdict.failed]!;
      // The failed worker's own last lines (a few more are read: its wrapper's growth lines are left out).
      const tail = await this.run(worker.endpoint, docker.logsTail(name, 60), { mergeStderr: true }).catch(() => undefined);
      return {
        ...base,
        exitCode: worker.exit!.code,
        oomKilled: worker.exit!.oomKilled,
        logTail: tail?.code === 0 ? withoutGrowthLines(tail.stdout.trimEnd().split('\n')).slice(-40) : base.logTail,
        ...(multi ? { failedWorker: verdict.failed } : {}),
      };
    }
    if (verdict.lost !== undefined && verdict.lost >= 0) {
      const host = workers[verdict.lost]!.endpoint.host;
      return { ...base, exitCode: null, lostReason: `host ${host} stopped answering SSH`, ...(multi ? { failedWorker: verdict.lost } : {}) };
    }
    if (verdict.vanished !== undefined && verdict.vanished >= 0) {
      const why = workers[verdict.vanished]!.replaced === true ? 'its container was replaced by another launch' : 'its container disappeared';
      return { ...base, exitCode: null, lostReason: why, ...(multi ? { failedWorker: verdict.vanished } : {}) };
    }
    return { ...base, exitCode: verdict.hung ? null : 0 };
  }

  private async state(endpoint: SshEndpoint, name: string, connectDeadlineMs?: number, signal?: AbortSignal): Promise<ContainerState | undefined> {
    const result = await this.run(endpoint, docker.inspect(name), { ...(connectDeadlineMs === undefined ? {} : { connectDeadlineMs }), ...(signal === undefined ? {} : { signal }) });
    return result.code === 0 ? parseContainerState(result.stdout) : undefined;
  }

  private run(endpoint: SshEndpoint, argv: readonly string[], options: Parameters<SshPool['exec']>[2] = {}): Promise<ExecResult> {
    return this.options.pool.exec(endpoint, this.options.sudo ? ['sudo', '-n', ...argv] : argv, options);
  }

  private async check(endpoint: SshEndpoint, argv: readonly string[], what: string, signal?: AbortSignal): Promise<void> {
    const result = await this.run(endpoint, argv, signal === undefined ? {} : { signal });
    if (result.code !== 0) {
      throw new Error(`could not ${what} on ${endpoint.host} (exit ${result.code}): ${lastLine(result.stderr)}`);
    }
  }
}

/** A launch without Temporal around it (tests, tools): never cancelled, try 1. */
const UNSUPERVISED_LAUNCH: LaunchContext = { heartbeat: () => {}, cancelled: new AbortController().signal, tryNumber: 1 };

/** A newer try of the launch (or the stop of its attempt) holds the host's fence: this try must start nothing. */
class LaunchSuperseded extends Error {
  override name = 'LaunchSuperseded';
}

/**
 * A launch error as the workflow's retry rules need it: a host that never answered within the
 * connect deadline is lost (infrastructure: a new attempt, never a code error); a superseded try
 * is final for that try; a cancelled try reports its cancellation. Anything else stays as it is.
 */
function launchFailure(error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason ?? error;
  if (error instanceof SshUnreachable) {
    return ApplicationFailure.create({ type: FailureType.StageInfrastructureError, message: `a host of the slice was lost during launch: ${error.message}`, nonRetryable: true });
  }
  if (error instanceof LaunchSuperseded) {
    return ApplicationFailure.create({ type: LAUNCH_SUPERSEDED, message: `this launch try was superseded: ${error.message}`, nonRetryable: true });
  }
  return error;
}

/** Failure type of a launch try that a newer try (or the attempt's stop) overtook; it created nothing. */
export const LAUNCH_SUPERSEDED = 'StageLaunchSuperseded';

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

function sshEndpoints(workers: readonly WorkerEndpoint[]): SshEndpoint[] {
  return workers.map((w) => {
    if (w.kind !== 'ssh') {
      throw ApplicationFailure.create({ type: 'InvalidLaunchSpec', message: 'the docker-over-SSH executor needs SSH workers', nonRetryable: true });
    }
    return { host: w.host, port: w.port, user: w.user, hostKeys: w.hostKeys };
  });
}
