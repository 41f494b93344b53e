/**
 * A pinned tool an image test needs (uv, hadolint), installed on first use. When it cannot be
 * installed the test skips with the reason, except in CI (CI=true), where a skip would hide a
 * missing install: there the test fails with the install's error.
 */
export interface PinnedTool {
  /** The binary, when installed. */
  readonly path: string | undefined;
  /** node:test's `skip` option: the reason, or false. */
  readonly skip: string | false;
  /** Why it is not installed (the test throws it when it runs, i.e. in CI). */
  readonly error: Error | undefined;
}

export async function pinnedTool(ensure: () => Promise<string>): Promise<PinnedTool> {
  try {
    return { path: await ensure(), skip: false, error: undefined };
  } catch (error) {
    const reason = `cannot install the tool: ${(error as Error).message.split('\n')[0]}`;
    return { path: undefined, skip: process.env.CI === 'true' ? false : reason, error: error as Error };
  }
}

/** The tool's path inside a test body: throws the install error if there is none (in CI). */
export function requirePath(tool: PinnedTool): string {
  if (tool.path === undefined) throw tool.error ?? new Error('the tool is not installed');
  return tool.path;
}
