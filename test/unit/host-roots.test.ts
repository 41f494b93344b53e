/**
 * The worker's allowed roots: file:// artifact roots, file:// provided artifacts and the local
 * backend's hostRepoDir outside them are refused — as a pure check (pathsOutsideRoots, for an
 * early answer) and by the `preflight` activity every channel's run goes through, before anything
 * is created or written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities/index.ts';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';
import type { ComputeProvider } from '../../activities/compute/provider.ts';
import { isWithinRoots, pathsOutsideRoots, workerHostPaths } from '../../pipeline/host-roots.ts';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { allowedRoots, configFromEnv } from '../../workers/config.ts';

const ROOTS = ['/srv/recogdrive'];
const input = (extra: Record<string, unknown> = {}) =>
  parsePipelineInput({ experiment: 'exp-1', artifactRoot: 'file:///srv/recogdrive/artifacts', paths: { hostRepoDir: '/srv/recogdrive/repo' }, upstreamFixes: [...UPSTREAM_FIXES], ...extra });

test('paths below a root are inside it on whole segments; /srv/recogdrive2 and .. escapes are not', () => {
  assert.equal(isWithinRoots('/srv/recogdrive', ROOTS), true);
  assert.equal(isWithinRoots('/srv/recogdrive/a/b', ROOTS), true);
  assert.equal(isWithinRoots('/srv/recogdrive2', ROOTS), false);
  assert.equal(isWithinRoots('/srv/recogdrive/../../etc', ROOTS), false);
  assert.equal(isWithinRoots('/etc', ROOTS), false);
  assert.equal(isWithinRoots('relative/path', ROOTS), false);
  assert.equal(isWithinRoots('/srv/recogdrive', []), false);
});

test('an input inside the roots passes; each worker-host path outside is refused by its field', () => {
  assert.deepEqual(pathsOutsideRoots(input(), ROOTS), []);
  const refusals = pathsOutsideRoots(input({ artifactRoot: 'file:///etc', paths: { hostRepoDir: '/etc' }, stages: ['stage2'], providedArtifacts: { featureCache: 'file:///etc/shadow' } }), ROOTS);
  assert.deepEqual(
    refusals.map((r) => r.path),
    ['artifactRoot', 'providedArtifacts.featureCache', 'paths.hostRepoDir'],
  );
  assert.match(refusals[0]!.message, /^\/etc is outside the folders this worker may use \(\/srv\/recogdrive\).*RECOGDRIVE_ALLOWED_ROOTS/);
});

test('hostRepoDir is a remote folder unless a stage runs on the local backend, and gs:// roots are not on this host', () => {
  const remote = input({
    artifactRoot: 'gs://bucket-name/runs',
    paths: { hostRepoDir: '/home/ubuntu/recogdrive' },
    stages: ['stage2'],
    providedArtifacts: { featureCache: 'gs://bucket-name/cache' },
    stage2: { compute: { backend: 'static', hosts: [{ address: '10.0.0.5', user: 'ubuntu' }] } },
  });
  assert.deepEqual(workerHostPaths(remote), []);
  assert.deepEqual(pathsOutsideRoots(remote, ROOTS), []);
});

test('the worker allows its data folder unless RECOGDRIVE_ALLOWED_ROOTS names others; bad roots are refused at start', () => {
  assert.deepEqual(allowedRoots(configFromEnv({ RECOGDRIVE_DATA_DIR: '/var/lib/rd' })), ['/var/lib/rd']);
  assert.deepEqual(allowedRoots(configFromEnv({ RECOGDRIVE_DATA_DIR: '/var/lib/rd' }), '/tmp/test-data'), ['/tmp/test-data']);
  assert.deepEqual(allowedRoots(configFromEnv({ RECOGDRIVE_ALLOWED_ROOTS: '/data/a, /data/b' })), ['/data/a', '/data/b']);
  assert.throws(() => configFromEnv({ RECOGDRIVE_ALLOWED_ROOTS: 'relative' }), /RECOGDRIVE_ALLOWED_ROOTS/);
  assert.throws(() => configFromEnv({ RECOGDRIVE_ALLOWED_ROOTS: '/data/../etc' }), /RECOGDRIVE_ALLOWED_ROOTS/);
});

test('preflight refuses paths outside the roots as invalid input, non-retryable, before it writes anything', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rd-roots-'));
  try {
    const activities = createActivities({
      compute: { local: {} as ComputeProvider },
      executors: {},
      artifactStores: [new FileArtifactStore()],
      localImage: { base: dir, dirs: [] },
      allowedRoots: [join(dir, 'data')],
    });
    const outside = join(dir, 'elsewhere');
    await assert.rejects(
      activities.preflight({
        backends: ['local'],
        artifactRoot: `file://${outside}`,
        hostPaths: [
          { field: 'artifactRoot', path: outside },
          { field: 'paths.hostRepoDir', path: '/etc' },
        ],
      }),
      (error: unknown) => {
        assert.ok(error instanceof ApplicationFailure);
        assert.equal(error.type, 'InvalidPipelineInput');
        assert.equal(error.nonRetryable, true);
        assert.match(error.message, /artifactRoot: .*elsewhere is outside/);
        assert.match(error.message, /paths\.hostRepoDir: \/etc is outside/);
        return true;
      },
    );
    assert.equal(existsSync(outside), false, 'nothing was created outside the roots');
    // A run started before roots were checked sends no hostPaths: its artifact root is still checked.
    await assert.rejects(activities.preflight({ backends: ['local'], artifactRoot: 'file:///etc' }), /artifactRoot: \/etc is outside/);
    await activities.preflight({ backends: ['local'], artifactRoot: `file://${join(dir, 'data', 'artifacts')}`, hostPaths: [{ field: 'artifactRoot', path: join(dir, 'data', 'artifacts') }] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
