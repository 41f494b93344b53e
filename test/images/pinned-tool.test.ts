/** An image test whose tool cannot be installed skips on a developer's machine and fails in CI. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pinnedTool, requirePath } from './pinned-tool.ts';

const cannotInstall = (): Promise<string> => Promise.reject(new Error('pip install uv==0.13.8 failed: no network\nmore detail'));

async function withCi<T>(value: string | undefined, body: () => Promise<T>): Promise<T> {
  const saved = process.env.CI;
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  }
}

test('outside CI a tool that cannot be installed skips the test, saying why', async () => {
  const tool = await withCi(undefined, () => pinnedTool(cannotInstall));
  assert.equal(tool.skip, 'cannot install the tool: pip install uv==0.13.8 failed: no network');
});

test('in CI a tool that cannot be installed fails the test with the install error', async () => {
  const tool = await withCi('true', () => pinnedTool(cannotInstall));
  assert.equal(tool.skip, false);
  assert.throws(() => requirePath(tool), /no network/);
});

test('an installed tool runs the test', async () => {
  const tool = await withCi('true', () => pinnedTool(() => Promise.resolve('/tools/uv/bin/uv')));
  assert.equal(tool.skip, false);
  assert.equal(requirePath(tool), '/tools/uv/bin/uv');
});
