/** `npm run demo` on a clean data folder: the whole pipeline on the embedded default, exit code = run outcome. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { processesMentioning } from '../helpers/local-env.ts';

function npmRunDemo(dataDir: string, extraArgs: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'demo', '--', ...extraArgs], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, RECOGDRIVE_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

test('npm run demo runs every stage, prints the UI address and the summary, exits 0 and leaves nothing running', { timeout: 180_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'recogdrive-demo-'));
  try {
    const { code, output } = await npmRunDemo(dataDir);
    assert.equal(code, 0, output);
    assert.match(output, /Temporal Web UI: http:\/\/127\.0\.0\.1:\d+/);
    assert.match(output, /run local-demo-\d{8}-\d{6} succeeded/);
    for (const stage of ['stage1', 'featureCache', 'stage2', 'metricCache', 'stage3', 'eval']) {
      assert.match(output, new RegExp(`\\n  ${stage} +RUN`), `summary lists ${stage}`);
    }
    assert.match(output, /pdmScore=/);
    assert.deepEqual(await processesMentioning(dataDir), [], 'server, worker and stages are gone');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('npm run demo exits non-zero when the run fails', { timeout: 180_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'recogdrive-demo-'));
  try {
    const { code, output } = await npmRunDemo(dataDir, ['--fault', 'stage2=crash']);
    assert.equal(code, 1, output);
    assert.match(output, /failed: stage stage2 failed: stage2 exited with code 1/);
    assert.deepEqual(await processesMentioning(dataDir), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
