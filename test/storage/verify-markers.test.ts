/**
 * Verification from completion markers, on both stores: outputs made by the real stage wrapper
 * around a real command, then read back through the file:// store and through the real Cloud
 * Storage client against the emulator (requests counted by a proxy).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { FileArtifactStore } from '../../activities/artifacts/file-store.ts';
import { GcsArtifactStore } from '../../activities/artifacts/gcs-store.ts';
import type { ArtifactStore } from '../../activities/artifacts/store.ts';
import { checkStillValid, verifyFromMarkers } from '../../activities/verify/index.ts';
import type { VerificationSpec } from '../../pipeline/contracts/types.ts';
import type { ArtifactRecord } from '../../pipeline/lineage.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.ts';
import { gcsEmulatorSkip, startGcsEmulator, type GcsEmulator } from '../helpers/gcs-emulator.ts';

const NODE = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
const WRAPPER = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'main.ts');
const TOKENS = 12;
const SPEC: VerificationSpec = {
  outputs: { kind: 'token-cache', files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens: TOKENS },
  logMustContain: ['Caching Complete.'],
  logMustNotContain: ['Image path not found'],
};

/** Runs the wrapper around a command writing a feature cache of `tokens` tokens; `skipTarget` leaves some incomplete. */
async function wrappedCache(tokens: number, skipTarget = 0): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rd-verify-'));
  const script = `i=0; while [ $i -lt ${tokens} ]; do d="$RECOGDRIVE_OUTPUT_DIR/log-$((i % 3))/token-$i"; mkdir -p "$d";
    printf 'feature %s' $i > "$d/internvl_feature.gz";
    [ $i -lt ${skipTarget} ] || printf 'target %s' $i > "$d/trajectory_target.gz"; i=$((i+1)); done; echo 'Caching Complete.'`;
  await promisify(execFile)(NODE, [WRAPPER, '--', 'sh', '-c', script], {
    env: {
      PATH: process.env.PATH,
      RECOGDRIVE_STAGE: 'featureCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: dir,
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(SPEC.outputs),
    },
  });
  return dir;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Puts a local output folder into a store under `uri` (gs://: one object per file). */
async function publish(store: ArtifactStore, dir: string, uri: string): Promise<void> {
  if (uri.startsWith('file://')) return;
  for (const file of await filesUnder(dir)) await store.writeText(`${uri}/${file}`, await readFile(join(dir, file), 'utf8'));
}

function recordOf(uri: string, report: Awaited<ReturnType<typeof verifyFromMarkers>>): ArtifactRecord {
  return {
    schema: 1,
    stage: 'featureCache',
    fingerprint: `sha256:${'a'.repeat(64)}`,
    uri,
    artifactRoot: uri,
    components: {},
    inputs: {},
    imageDigest: 'sha256:x',
    producer: { runId: 'r', workflowId: 'r/featureCache', attempt: 1 },
    verifiedAt: new Date().toISOString(),
    manifest: report.manifest!,
    summary: report.summary,
    samples: report.samples!,
  };
}

interface Backend {
  name: string;
  skip: string | false;
  setUp(): Promise<{ store: ArtifactStore; uriFor(dir: string, name: string): string; requests?: () => number; remove(uri: string, path: string): Promise<void> }>;
  tearDown(): Promise<void>;
}

let emulator: GcsEmulator | undefined;
let proxy: CountingProxy | undefined;

const backends: Backend[] = [
  {
    name: 'file://',
    skip: false,
    async setUp() {
      const store = new FileArtifactStore();
      return { store, uriFor: (dir) => `file://${dir}`, remove: (uri, path) => rm(join(uri.slice('file://'.length), path)) };
    },
    async tearDown() {},
  },
  {
    name: 'gs:// (fake-gcs-server, real client)',
    skip: gcsEmulatorSkip(),
    async setUp() {
      emulator = await startGcsEmulator();
      await emulator.createBucket('verify');
      proxy = await startCountingProxy(emulator.apiEndpoint);
      const store = new GcsArtifactStore({ apiEndpoint: proxy.endpoint, projectId: emulator.projectId });
      const { Storage } = await import('@google-cloud/storage');
      const raw = new Storage({ apiEndpoint: emulator.apiEndpoint, projectId: emulator.projectId });
      return {
        store,
        uriFor: (_dir, name) => `gs://verify/${name}`,
        requests: () => proxy!.counts().total,
        remove: async (uri, path) => {
          await raw.bucket('verify').file(`${uri.slice('gs://verify/'.length)}/${path}`).delete();
        },
      };
    },
    async tearDown() {
      await proxy?.close();
      await emulator?.stop();
    },
  },
];

for (const backend of backends) {
  describe(`verification from markers on ${backend.name}`, { skip: backend.skip }, () => {
    let ctx: Awaited<ReturnType<Backend['setUp']>>;
    const dirs: string[] = [];
    const output = async (name: string, tokens = TOKENS, skipTarget = 0): Promise<string> => {
      const dir = await wrappedCache(tokens, skipTarget);
      dirs.push(dir);
      const uri = ctx.uriFor(dir, name);
      await publish(ctx.store, dir, uri);
      return uri;
    };
    before(async () => {
      ctx = await backend.setUp();
    });
    after(async () => {
      await backend.tearDown();
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    });

    test('a complete output passes with the wrapper counts, reading a constant number of objects', async () => {
      const uri = await output('complete');
      const before = ctx.requests?.() ?? 0;
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      const requests = (ctx.requests?.() ?? 0) - before;
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      assert.equal(report.summary.tokens, TOKENS);
      assert.equal(report.manifest!.files, TOKENS * 2);
      assert.equal(report.samples!.length, 8);
      // DONE.json + the manifest + one read per sampled file, whatever the number of files.
      if (ctx.requests !== undefined) assert.equal(requests, 2 + 8);
    });

    test('a partial output (tokens lacking a file) is rejected naming what is missing', async () => {
      const uri = await output('partial', TOKENS, 3);
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p) => /3 token folders are incomplete .*lacks trajectory_target\.gz/.test(p)), report.problems.join('\n'));
      assert.ok(report.problems.some((p) => /cached 9 complete tokens, expected 12/.test(p)), report.problems.join('\n'));
    });

    test('a short cache (fewer tokens than expected) is rejected', async () => {
      const uri = await output('short', 5);
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p) => /cached 5 complete tokens, expected 12/.test(p)), report.problems.join('\n'));
    });

    test('an empty cache behind "Caching Complete." is rejected', async () => {
      const uri = await output('empty', 0);
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      assert.equal(report.ok, false);
      assert.ok(report.problems.includes('the cache holds no complete token'), report.problems.join('\n'));
    });

    test('an output without DONE.json fails verification', async () => {
      const uri = await output('no-done');
      await ctx.remove(uri, 'DONE.json');
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      assert.equal(report.ok, false);
      assert.match(report.problems[0]!, /no DONE\.json/);
    });

    test('a sampled file missing after the wrapper finished fails verification by name', async () => {
      const uri = await output('lost-file');
      const first = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      const victim = first.samples![0]!.path;
      await ctx.remove(uri, victim);
      const again = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.']);
      assert.ok(again.problems.includes(`${victim} is listed in the manifest but missing`), again.problems.join('\n'));
      // And a reuse check of the recorded artifact notices it too.
      assert.deepEqual(await checkStillValid(ctx.store.reader(uri), recordOf(uri, first)), [`${victim} is listed in the manifest but missing`]);
    });

    test('DONE.json checked against another output contract does not pass for this one', async () => {
      const uri = await output('other-contract');
      const other: VerificationSpec = { ...SPEC, outputs: { ...SPEC.outputs, expectedTokens: 99 } as VerificationSpec['outputs'] };
      const report = await verifyFromMarkers(ctx.store.reader(uri), other, ['Caching Complete.']);
      assert.ok(report.problems.some((p) => /checked against another output contract/.test(p)), report.problems.join('\n'));
    });

    test('a silent-failure log line fails an otherwise complete output', async () => {
      const uri = await output('log-line');
      const report = await verifyFromMarkers(ctx.store.reader(uri), SPEC, ['Caching Complete.', 'Image path not found']);
      assert.deepEqual(report.problems, ['the log says "Image path not found"']);
    });

    test('the second writer of DONE.json is refused and the first verdict stands', async () => {
      const uri = await output('second-writer');
      const original = await ctx.store.readText(`${uri}/DONE.json`);
      assert.equal(await ctx.store.createIfAbsent(`${uri}/DONE.json`, '{"forged":true}'), false);
      assert.equal(await ctx.store.readText(`${uri}/DONE.json`), original);
    });
  });
}

test('the wrapper leaves its markers out of the manifest', async () => {
  const dir = await wrappedCache(2);
  try {
    const manifest = await readFile(join(dir, '_recogdrive', 'MANIFEST.tsv'), 'utf8');
    assert.ok(!manifest.includes('DONE.json') && !manifest.includes('_recogdrive'), manifest);
    assert.ok((await stat(join(dir, 'DONE.json'))).isFile());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
