/**
 * The Cloud Storage emulator of the tests: fake-gcs-server (github.com/fsouza/fake-gcs-server,
 * written by others), built from the Go module proxy into .tools/fake-gcs-server/bin at a pinned
 * version. Needs `go` (>= 1.26 for this version; the machines have it preinstalled).
 */
import { ensureGoTool, findGoTool, goToolBinary, type GoTool } from './go-tool.ts';

/** The newest version the Go module proxy serves (`go list -m -versions github.com/fsouza/fake-gcs-server`). */
export const FAKE_GCS_SERVER_VERSION = 'v1.56.1';
export const FAKE_GCS_SERVER_GO_PACKAGE = `github.com/fsouza/fake-gcs-server@${FAKE_GCS_SERVER_VERSION}`;

const TOOL: GoTool = {
  name: 'fake-gcs-server',
  goPackage: FAKE_GCS_SERVER_GO_PACKAGE,
  purpose: 'the Cloud Storage emulator of the tests',
  installCommand: 'node infra/local/install-gcs-emulator.ts',
  goVersion: '>= 1.26',
  buildTime: 'about a minute on 2 cores',
};

export const FAKE_GCS_SERVER_BINARY = goToolBinary(TOOL);

/** The binary's path when the pinned version is installed, else undefined. */
export async function findFakeGcsServer(): Promise<string | undefined> {
  return findGoTool(TOOL);
}

/** The path of the pinned fake-gcs-server; builds it with `go install` when it is not there. */
export async function ensureFakeGcsServer(log: (line: string) => void = () => {}): Promise<string> {
  return ensureGoTool(TOOL, log);
}
