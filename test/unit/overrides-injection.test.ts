/** An override value full of shell syntax reaches the trainer as one literal argument and runs nothing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { stageCommand } from '../../pipeline/launch.ts';
import { buildPlan } from '../../pipeline/plan.ts';

const run = promisify(execFile);
const NASTY = "; touch pwned `touch pwned2` $(touch pwned3) && touch pwned4 | x > pwned5";

test('a hostile override value stays one literal argument through the feature cache\'s bash -c', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rd-inject-'));
  try {
    // Stand-ins for the image's python and pip: record argv, do nothing else.
    await writeFile(join(dir, 'python'), '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGV_FILE"\n');
    await writeFile(join(dir, 'pip'), '#!/bin/sh\nexit 0\n');
    await chmod(join(dir, 'python'), 0o755);
    await chmod(join(dir, 'pip'), 0o755);
    const config = parsePipelineInput({
      experiment: 'inject',
      artifactRoot: 'file:///tmp/a',
      paths: { hostRepoDir: '/data/r' },
      upstreamFixes: ['feature-cache-real-scenes'],
      stages: ['featureCache'],
      providedArtifacts: { stage1: 'file:///tmp/a/stage1' },
      featureCache: { overrides: { experiment_uid: NASTY } },
    });
    // The stage's own command, without the stage wrapper in front (test/unit/stage-wrapper.test.ts runs that).
    const command = stageCommand(buildPlan(config, 'inject-1').stages.find((s) => s.stage === 'featureCache')!.launch!);
    assert.equal(command[0], '/bin/bash');
    await run('/bin/bash', command.slice(1), {
      cwd: dir,
      env: { PATH: `${dir}:/usr/bin:/bin`, ARGV_FILE: join(dir, 'argv') },
    });
    const argv = (await readFile(join(dir, 'argv'), 'utf8')).trimEnd().split('\n');
    assert.ok(argv.includes(`experiment_uid='${NASTY}'`), `argv: ${JSON.stringify(argv)}`);
    const files = await readdir(dir);
    assert.deepEqual(files.filter((f) => f.startsWith('pwned')), [], 'nothing in the value was executed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hydra receives override strings quoted, so commas and brackets are not sweeps or lists', () => {
  const config = parsePipelineInput({
    experiment: 'inject',
    artifactRoot: 'file:///tmp/a',
    paths: { hostRepoDir: '/data/r' },
    stages: ['stage2', 'metricCache'],
    providedArtifacts: { featureCache: 'file:///tmp/a/cache' },
    stage2: { overrides: { seed: 7 } },
    metricCache: { overrides: { 'worker.threads_per_node': '4,8' } },
  });
  const plan = buildPlan(config, 'r');
  assert.ok(plan.stages.find((s) => s.stage === 'metricCache')!.launch!.command.includes("worker.threads_per_node='4,8'"));
  assert.ok(plan.stages.find((s) => s.stage === 'stage2')!.launch!.command.includes('seed=7'));
});
