/**
 * The janitor's view of `static` hosts: the stage containers this project left on them (a host
 * that never answered again while its run went on keeps its container). Lists every container
 * labelled OWNER_LABEL=recogdrive on each configured host (RECOGDRIVE_STATIC_HOSTS) over SSH,
 * with its run, stage and attempt labels, and removes one by its id, as listed.
 */
import { readFile } from 'node:fs/promises';
import { LEASE_OWNER, type LeaseRecord } from '../../pipeline/janitor.ts';
import { ATTEMPT_LABEL, OWNER_LABEL, parseContainerTime, RUN_LABEL, STAGE_LABEL } from '../execution/docker-cli.ts';
import { keysFor, parseKnownHosts } from '../ssh/known-hosts.ts';
import type { ExecResult, SshEndpoint, SshPool } from '../ssh/pool.ts';
import { IncompleteListing } from './provider.ts';

export interface StaticHost {
  user: string;
  address: string;
  port: number;
}

export interface StaticJanitorOptions {
  /** The hosts to look at: every host runs use as `static`. */
  hosts: readonly StaticHost[];
  pool: Pick<SshPool, 'exec'>;
  /** Prefix docker with `sudo -n`, as the executor does. */
  sudo: boolean;
  /** Host keys are pinned from here, as acquire pins them. */
  knownHostsFile: string;
  /** A host that does not accept a connection this fast is reported, not waited for. */
  connectDeadlineMs: number;
  /** A docker command that hangs this long on a host is given up (default 60 s). */
  commandTimeoutMs?: number;
}

/** user@address:port: how a host is named in a lease's labels and in errors. */
export function staticHostId(host: StaticHost): string {
  return `${host.user}@${host.address}:${host.port}`;
}

const LABELS = [OWNER_LABEL, RUN_LABEL, STAGE_LABEL, ATTEMPT_LABEL] as const;
// `index .Config.Labels` works with Docker and Podman alike (`docker ps --format {{.Label}}` does not).
const INSPECT_FORMAT = ['{{.Id}}', '{{.Name}}', '{{.Created}}', ...LABELS.map((l) => `{{index .Config.Labels "${l}"}}`)].join('|');
const CONTAINER_ID = /^[0-9a-f]{64}$/;
const NOT_FOUND = /no such (container|object)/i;

/** One line of `docker inspect --format INSPECT_FORMAT` as a lease; undefined for a line that is not one. */
export function parseContainerLine(line: string, host: StaticHost): LeaseRecord | undefined {
  const fields = line.trim().split('|');
  const [id, rawName, created] = fields;
  if (id === undefined || !CONTAINER_ID.test(id) || rawName === undefined || created === undefined) return undefined;
  const name = rawName.replace(/^\//, ''); // Docker prints "/name", Podman "name".
  const labels: Record<string, string> = { container: id, host: staticHostId(host) };
  // A label value with a `|` in it shifts the fields: keep only the owner, so the janitor keeps it (no run label).
  const [owner, run, stage, attempt] = fields.length === 3 + LABELS.length ? fields.slice(3) : [];
  if (owner) labels.owner = owner;
  if (run) labels.run = run;
  if (stage) labels.stage = stage;
  if (attempt) labels.attempt = attempt;
  const createdAt = parseContainerTime(created);
  return {
    name: `${name}@${host.address}:${host.port}`,
    backend: 'static',
    labels,
    createdAt: createdAt === undefined ? created : new Date(createdAt).toISOString(),
  };
}

export class StaticJanitor {
  private readonly options: StaticJanitorOptions;

  constructor(options: StaticJanitorOptions) {
    this.options = options;
  }

  /**
   * Our containers on every configured host. Hosts that cannot be listed (unreachable, no
   * pinned key, docker failing) do not hide the others: IncompleteListing carries what was
   * listed and names them. When no host could be listed, a plain error.
   */
  async listLeases(): Promise<LeaseRecord[]> {
    const { hosts } = this.options;
    if (hosts.length === 0) return [];
    const entries = parseKnownHosts(await readFile(this.options.knownHostsFile, 'utf8').catch(() => ''));
    const results = await Promise.allSettled(hosts.map((host) => this.listHost(host, entries)));
    const leases: LeaseRecord[] = [];
    const problems: string[] = [];
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') leases.push(...result.value);
      else problems.push(`${staticHostId(hosts[i]!)}: ${(result.reason as Error).message}`);
    });
    if (problems.length === 0) return leases;
    const message = `${problems.length} of ${hosts.length} static host(s) not listed: ${problems.join('; ')}`;
    if (problems.length === hosts.length) throw new Error(message);
    throw new IncompleteListing(message, leases);
  }

  /**
   * Removes the container `record` names if that host still has it (by its id: a newer container
   * that took the same name is not it). True when removed, false when it was gone.
   */
  async deleteLease(record: LeaseRecord): Promise<boolean> {
    if (record.backend !== 'static') throw new Error(`static compute asked to delete a ${record.backend} lease (${record.name})`);
    const host = this.options.hosts.find((h) => staticHostId(h) === record.labels.host);
    if (host === undefined) throw new Error(`${record.name}: host ${record.labels.host ?? '(none)'} is not in RECOGDRIVE_STATIC_HOSTS`);
    const id = record.labels.container;
    if (id === undefined || !CONTAINER_ID.test(id)) throw new Error(`${record.name}: not a container id: ${JSON.stringify(id)}`);
    const endpoint = this.endpoint(host, parseKnownHosts(await readFile(this.options.knownHostsFile, 'utf8').catch(() => '')));

    const found = await this.docker(endpoint, ['inspect', '--type', 'container', '--format', '{{.Id}}', id]);
    if (found.code !== 0 && NOT_FOUND.test(found.stderr)) return false;
    if (found.code !== 0) throw new Error(`could not inspect ${record.name} (exit ${found.code}): ${lastLine(found.stderr)}`);
    if (found.stdout.trim() !== id) return false;
    const removed = await this.docker(endpoint, ['rm', '-f', id]);
    if (removed.code === 0) return true;
    if (NOT_FOUND.test(removed.stderr)) return false;
    throw new Error(`could not remove ${record.name} (exit ${removed.code}): ${lastLine(removed.stderr)}`);
  }

  private async listHost(host: StaticHost, entries: ReturnType<typeof parseKnownHosts>): Promise<LeaseRecord[]> {
    const endpoint = this.endpoint(host, entries);
    const ps = await this.docker(endpoint, ['ps', '-a', '-q', '--no-trunc', '--filter', `label=${OWNER_LABEL}=${LEASE_OWNER}`]);
    if (ps.code !== 0) throw new Error(`docker ps failed (exit ${ps.code}): ${lastLine(ps.stderr)}`);
    const ids = ps.stdout.split('\n').map((l) => l.trim()).filter((l) => CONTAINER_ID.test(l));
    if (ids.length === 0) return [];
    const inspected = await this.docker(endpoint, ['inspect', '--type', 'container', '--format', INSPECT_FORMAT, ...ids]);
    const leases = inspected.stdout.split('\n').flatMap((line) => parseContainerLine(line, host) ?? []);
    // A container removed between ps and inspect is simply not listed.
    if (inspected.code !== 0 && !NOT_FOUND.test(inspected.stderr)) throw new Error(`docker inspect failed (exit ${inspected.code}): ${lastLine(inspected.stderr)}`);
    return leases;
  }

  private endpoint(host: StaticHost, entries: ReturnType<typeof parseKnownHosts>): SshEndpoint {
    const hostKeys = keysFor(entries, host.address, host.port);
    if (hostKeys.length === 0) throw new Error(`no host key for ${host.address}:${host.port} in ${this.options.knownHostsFile}; add it (ssh-keyscan)`);
    return { host: host.address, port: host.port, user: host.user, hostKeys };
  }

  private async docker(endpoint: SshEndpoint, args: readonly string[]): Promise<ExecResult> {
    const argv = this.options.sudo ? ['sudo', '-n', 'docker', ...args] : ['docker', ...args];
    const timeoutMs = this.options.commandTimeoutMs ?? 60_000;
    try {
      return await this.options.pool.exec(endpoint, argv, { connectDeadlineMs: this.options.connectDeadlineMs, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') throw new Error(`docker ${args[0]} did not answer within ${timeoutMs / 1000} s`, { cause: error });
      throw error;
    }
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}
