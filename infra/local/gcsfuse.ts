/**
 * gcsfuse (github.com/GoogleCloudPlatform/gcsfuse, written by others): mounts a Cloud Storage
 * bucket as a folder. A VM's stage writes its artifacts through it; the test bed's bare VMs run it
 * against the Cloud Storage emulator. Built from the Go module proxy into .tools/gcsfuse/bin at a
 * pinned version (the proxy serves the v3 module path only; `go install` names the binary gcsfuse).
 */
import { ensureGoTool, findGoTool, goToolBinary, type GoTool } from './go-tool.ts';

export const GCSFUSE_VERSION = 'v3.11.4';
export const GCSFUSE_GO_PACKAGE = `github.com/googlecloudplatform/gcsfuse/v3@${GCSFUSE_VERSION}`;

const TOOL: GoTool = {
  name: 'gcsfuse',
  goPackage: GCSFUSE_GO_PACKAGE,
  purpose: "the bare test-bed VMs' Cloud Storage mounts",
  installCommand: 'node infra/local/install-gcsfuse.ts',
  buildTime: 'about 3 minutes cold on 2 cores',
};

export const GCSFUSE_BINARY = goToolBinary(TOOL);

/** The binary's path when the pinned version is installed, else undefined. */
export function findGcsfuse(): Promise<string | undefined> {
  return findGoTool(TOOL);
}

/** The path of the pinned gcsfuse; builds it with `go install` when it is not there. */
export function ensureGcsfuse(log: (line: string) => void = () => {}): Promise<string> {
  return ensureGoTool(TOOL, log);
}
