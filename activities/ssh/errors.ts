/** Why an SSH operation failed, as types the workflow's retry rules understand. Never carries key material. */
import { ApplicationFailure } from '@temporalio/common';

/** The host never accepted a connection before the deadline (still booting, gone, firewall). Retryable. */
export class SshUnreachable extends Error {
  override name = 'SshUnreachable';
}

/** The connection dropped while a command ran. Retryable: the caller reconnects and re-checks. */
export class SshConnectionLost extends Error {
  override name = 'SshConnectionLost';
}

/** The host presented a key that is not the pinned one: a different machine, or an attack. Never retried. */
export function hostKeyMismatch(host: string, port: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'SshHostKeyMismatch',
    message: `the SSH host key of ${host}:${port} is not the pinned one; refusing to connect`,
    nonRetryable: true,
  });
}

/** No pinned key for a host: connecting would trust whoever answers. Never retried. */
export function hostKeyUnknown(host: string, port: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'SshHostKeyUnknown',
    message: `no pinned SSH host key for ${host}:${port} (known_hosts file or provisioner host keys)`,
    nonRetryable: true,
  });
}
