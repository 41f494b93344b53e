/**
 * The docker commands a stage executor runs on a worker (as argv, never a shell string) and the
 * parsing of what they print. Works with Docker and with Podman's docker-compatible CLI.
 */

export interface ContainerState {
  id: string;
  status: string;
  exitCode: number;
  oomKilled: boolean;
  /** Epoch ms; undefined when not started / not finished. */
  startedAt: number | undefined;
  finishedAt: number | undefined;
  /** The stage attempt that created it (label recogdrive.attempt); undefined for a container without one. */
  attempt?: number;
}

/** The label that names the stage attempt a container belongs to (so a later attempt removes it instead of adopting it). */
export const ATTEMPT_LABEL = 'recogdrive.attempt';
/** Every container this project starts carries OWNER_LABEL=LEASE_OWNER: what the janitor lists on static hosts. */
export const OWNER_LABEL = 'recogdrive.owner';
/** The container's stage, and its exact run id (run ids are [A-Za-z0-9._:-], safe as a label value). */
export const STAGE_LABEL = 'recogdrive.stage';
export const RUN_LABEL = 'recogdrive.run';

const STATE_FORMAT = `{{.Id}}|{{.State.Status}}|{{.State.ExitCode}}|{{.State.OOMKilled}}|{{.State.StartedAt}}|{{.State.FinishedAt}}|{{index .Config.Labels "${ATTEMPT_LABEL}"}}`;

export const docker = {
  inspect: (name: string) => ['docker', 'inspect', '--format', STATE_FORMAT, name],
  imagePresent: (image: string) => ['docker', 'image', 'inspect', '--format', '{{.Id}}', image],
  pull: (image: string) => ['docker', 'pull', '--quiet', image],
  /** Blocks until the container exits and prints its exit code: how the watcher learns of an exit at once. */
  wait: (name: string) => ['docker', 'wait', name],
  logsSince: (name: string, since: string | undefined) => [
    'docker',
    'logs',
    '--timestamps',
    ...(since === undefined ? [] : ['--since', since]),
    name,
  ],
  logs: (name: string) => ['docker', 'logs', name],
  logsTail: (name: string, lines: number) => ['docker', 'logs', '--tail', String(lines), name],
  stop: (name: string, graceSeconds: number) => ['docker', 'stop', '-t', String(graceSeconds), name],
  remove: (name: string) => ['docker', 'rm', '-f', name],
};

/**
 * Frees the TPU for a new container: a stale libtpu lock file or a process still holding the
 * accelerator makes the next start fail ("TPU is already in use"). A constant script: no value in it.
 */
export const FREE_TPU = ['sh', '-c', 'rm -f /tmp/libtpu_lockfile; for d in /dev/vfio/[0-9]* /dev/accel[0-9]*; do [ -e "$d" ] && fuser -k "$d"; done; true'];

/** Parses `docker inspect --format STATE_FORMAT`; undefined when the output is not that. */
export function parseContainerState(text: string): ContainerState | undefined {
  const [id, status, exitCode, oomKilled, startedAt, finishedAt, attempt] = text.trim().split('|');
  if (id === undefined || status === undefined || exitCode === undefined || finishedAt === undefined) return undefined;
  return {
    ...(attempt !== undefined && /^[1-9]\d*$/.test(attempt) ? { attempt: Number(attempt) } : {}),
    id,
    status,
    exitCode: Number(exitCode),
    oomKilled: oomKilled === 'true',
    startedAt: parseContainerTime(startedAt ?? ''),
    finishedAt: parseContainerTime(finishedAt),
  };
}

/**
 * Docker prints RFC 3339 ("2026-11-25T04:33:07.123456789Z"), Podman Go's default layout
 * ("2026-11-25 04:33:07.123456789 +0000 UTC"). The zero time means "never".
 */
export function parseContainerTime(text: string): number | undefined {
  const goLayout = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2})/.exec(text.trim());
  const iso = goLayout ? `${goLayout[1]}T${goLayout[2]}${goLayout[3]}:${goLayout[4]}` : text.trim();
  const ms = Date.parse(iso);
  return Number.isNaN(ms) || ms <= 0 ? undefined : ms;
}

/** A log line of `docker logs --timestamps`: its timestamp (as a sortable key and as text) and the line. */
export interface TimedLine {
  key: bigint;
  timestamp: string;
  text: string;
}

/** Splits `docker logs --timestamps` output into lines; nanosecond keys order them exactly. */
export function parseTimedLines(output: string): TimedLine[] {
  const lines: TimedLine[] = [];
  for (const raw of output.split('\n')) {
    const space = raw.indexOf(' ');
    if (space <= 0) continue;
    const timestamp = raw.slice(0, space);
    const key = timestampKey(timestamp);
    if (key !== undefined) lines.push({ key, timestamp, text: raw.slice(space + 1) });
  }
  return lines;
}

function timestampKey(timestamp: string): bigint | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(timestamp);
  if (!match) return undefined;
  const seconds = Date.parse(`${match[1]}${match[3]}`) / 1000;
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
}
