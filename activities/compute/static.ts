/**
 * Hosts you already have (on-prem machines, a test bed): acquiring picks them up with their
 * pinned host keys from a known_hosts file; releasing leaves them running (stopping the stage's
 * containers is the executor's job). Nothing is created, so nothing can leak.
 */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { computeName } from '../../pipeline/naming.ts';
import { keysFor, parseKnownHosts } from '../ssh/known-hosts.ts';
import type { ComputeLease, ComputeRequest, ReleaseResult } from '../types.ts';
import type { ComputeProvider } from './provider.ts';

export class StaticComputeProvider implements ComputeProvider {
  private readonly knownHostsFile: string;

  constructor(knownHostsFile: string) {
    this.knownHostsFile = knownHostsFile;
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
