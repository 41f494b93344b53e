/**
 * Whether this machine can run the test bed (root, and the packages of install.sh). Tests skip
 * with the reason when it cannot, except in CI (CI=true), where a skip would hide a missing install.
 */
import fs from 'node:fs';

const BINARIES = ['/usr/sbin/sshd', '/usr/bin/podman', '/usr/bin/runc', '/usr/bin/tini-static', '/bin/busybox', '/usr/bin/fuser'];

export function testbedUnmet(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  const missing = BINARIES.filter((f) => !fs.existsSync(f));
  return missing.length > 0 ? `needs ${missing.join(', ')}: run bash test/testbed/install.sh` : undefined;
}

/** A node:test `skip` value: the reason, or false (always false in CI). */
export function testbedSkip(): string | false {
  const unmet = testbedUnmet();
  return unmet !== undefined && process.env.CI !== 'true' ? unmet : false;
}

/** Bare workers (startTestbed({ bare: true })) also need mount namespaces (util-linux) and FUSE for gcsfuse. */
const BARE_NEEDS = ['/usr/bin/unshare', '/usr/bin/nsenter', '/dev/fuse'];

/** A node:test `skip` value for bare test beds: the reason, or false (always false in CI). */
export function bareTestbedSkip(): string | false {
  const missing = BARE_NEEDS.filter((f) => !fs.existsSync(f));
  const unmet = testbedUnmet() ?? (missing.length > 0 ? `needs ${missing.join(', ')} (util-linux, the fuse kernel module)` : undefined);
  return unmet !== undefined && process.env.CI !== 'true' ? unmet : false;
}
