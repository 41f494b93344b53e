/**
 * A run started straight through Temporal (as `temporal workflow start` does, no API or CLI in
 * front) with worker-host paths outside the worker's roots fails in preflight, as invalid input,
 * before any stage starts or anything is written there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNothingLeaked, runFailure } from '../helpers/assertions.ts';
import { startTestEnv, type TestEnv } from '../helpers/local-env.ts';

let env: TestEnv;
before(async () => {
  env = await startTestEnv();
});
after(async () => {
  await env?.close();
});

test('artifactRoot, a provided artifact and the local hostRepoDir outside the roots fail the run before any stage starts', async () => {
  const outside = join(tmpdir(), `rd-outside-roots-${process.pid}`);
  const input = {
    ...env.input({ stages: ['stage2'] }),
    artifactRoot: `file://${outside}`,
    providedArtifacts: { featureCache: 'file:///etc/shadow' },
    paths: { hostRepoDir: '/etc' },
  };
  const failure = await runFailure((await env.start('outside-roots', input)).result());
  assert.equal(failure.type, 'InvalidPipelineInput');
  assert.match(failure.message, /artifactRoot: \S+ is outside the folders this worker may use/);
  assert.match(failure.message, /providedArtifacts\.featureCache: \/etc\/shadow is outside/);
  assert.match(failure.message, /paths\.hostRepoDir: \/etc is outside/);
  const events = (await env.stack.client.workflow.getHandle('outside-roots').fetchHistory()).events ?? [];
  assert.ok(!events.some((e) => String(e.eventType).includes('START_CHILD_WORKFLOW')), 'no stage was started');
  assert.equal(existsSync(outside), false, 'nothing was written outside the roots');
  await assertNothingLeaked(env);
});
