/** The local Temporal dev server: refuses a taken port instead of silently talking to someone else's server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevServer, PortInUse } from '../../infra/local/dev-server.ts';
import { ensureTemporalCli } from '../../infra/local/temporal-cli.ts';

test('starting a dev server on a port another server holds fails with PortInUse and leaves the other alone', { timeout: 120_000 }, async () => {
  const cli = await ensureTemporalCli();
  const first = await DevServer.start({ cli, uiPort: false });
  try {
    const port = Number(first.address.split(':')[1]);
    await assert.rejects(DevServer.start({ cli, port, uiPort: false }), (error: unknown) => {
      assert.ok(error instanceof PortInUse);
      assert.match(error.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
      return true;
    });
  } finally {
    await first.stop();
  }
});
