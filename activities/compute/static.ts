/**
 * Hosts you already have (on-prem machines, a test bed): acquiring picks them up with their
 * pinned host keys from a known_hosts file; releasing leaves them running (stopping the stage's
 * containers is the executor's job). No machine is created, but a stage container can stay on a
 * host that never answered again during its run: the janitor lists and removes those on the
 * hosts it is given (static-janitor.ts).
 */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { computeName } from '../../pipeline/naming.ts';
import { keysFor, parseKnownHosts } from '../ssh/known-hosts.ts';
import type { ComputeLease, ComputeRequest, ReleaseResult } from '../types.ts';
import type { ComputeProvider, LeaseRecord } from './provider.ts';
import { StaticJanitor, type StaticJanitorOptions } from './static-janitor.ts';

export class StaticComputeProvider implements ComputeProvider {
  private readonly knownHostsFile: string;
  private readonly janitor: StaticJanitor | undefined;

  /** `janitor`: the hosts the janitor looks at and how to reach them (knownHostsFile is this one's). */
  constructor(knownHostsFile: string, janitor?: Omit<StaticJanitorOptions, 'knownHostsFile'>) {
    this.knownHostsFile = knownHostsFile;
    this.janitor = janitor === undefined ? undefined : new StaticJanitor({ ...janitor, knownHostsFile });
  }

  /** Our stage containers on the configured hosts (none configured: nothing). */
  async listLeases(): Promise<LeaseRecord[]> {
    return this.janitor === undefined ? [] : this.janitor.listLeases();
  }

  async deleteLease(record: LeaseRecord): Promise<boolean> {
    if (this.janitor === undefined) throw new Error(`${record.name}: this worker has no static hosts configured (RECOGDRIVE_STATIC_HOSTS)`);
    return this.janitor.deleteLease(record);
  }

  async acquire(request: ComputeRequest): Promise<ComputeLease> {
    const compute = request.compute;
    if (compute.backend !== 'static') throw new Error(`static provider asked for ${compute.backend}`);
    const entries = parseKnownHosts(await readFile(this.knownHostsFile, 'utf8').catch(() => ''));
    const workers = compute.hosts.map((h) => {
      const hostKeys = keysFor(entries, h.address, h.port);
      if (hostKeys.length === 0) {
        throw ApplicationFailure.create({
          type: 'SshHostKeyUnknown',
          message: `no host key for ${h.address}:${h.port} in ${this.knownHostsFile}; add it (ssh-keyscan) before using this host`,
          nonRetryable: true,
        });
      }
      return { kind: 'ssh' as const, host: h.address, port: h.port, user: h.user, hostKeys };
    });
    return { name: computeName(request.runId, request.stage, request.attempt), backend: 'static', workers };
  }

  async release(request: ComputeRequest): Promise<ReleaseResult> {
    return { name: computeName(request.runId, request.stage, request.attempt), released: false };
  }
}
