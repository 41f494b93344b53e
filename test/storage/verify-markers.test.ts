/**
 * Verification from completion markers, on both stores: outputs made by the real stage wrapper
 * around a real command (markers beside the output, and in the old layout inside it), then read
 * back through the file:// store and through the real Cloud Storage client against the emulator
 * (requests counted by a proxy).
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
import { markerReaders } from '../../activities/artifacts/marker-readers.ts';
import { checkStillValid, verifyFromMarkers, verifyProvidedOutput, type OutputReaders } from '../../activities/verify/index.ts';
import type { VerificationSpec } from '../../pipeline/contracts/types.ts';
import type { ArtifactRecord } from '../../pipeline/lineage.ts';
import { markerLocation, type MarkerLayout } from '../../pipeline/markers.ts';
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

/** The output folder's name in the folder `wrappedCache` makes: its markers go to `_recogdrive/cache` beside it. */
const OUTPUT = 'cache';

/**
 * Runs the wrapper around a command writing a feature cache of `tokens` tokens into `<folder>/cache`
 * (`skipTarget` leaves some incomplete); returns the folder. `inside`: the old layout (no marker dir).
 */
async function wrappedCache(tokens: number, skipTarget = 0, layout: MarkerLayout = 'beside'): Promise<string> {
  const parent = await mkdtemp(join(tmpdir(), 'rd-verify-'));
  const dir = join(parent, OUTPUT);
  const script = `i=0; while [ $i -lt ${tokens} ]; do d="$RECOGDRIVE_OUTPUT_DIR/log-$((i % 3))/token-$i"; mkdir -p "$d";
    printf 'feature %s' $i > "$d/internvl_feature.gz";
    [ $i -lt ${skipTarget} ] || printf 'target %s' $i > "$d/trajectory_target.gz"; i=$((i+1)); done; echo 'Caching Complete.'`;
  await promisify(execFile)(NODE, [WRAPPER, '--', 'sh', '-c', script], {
    env: {
      PATH: process.env.PATH,
      RECOGDRIVE_STAGE: 'featureCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: dir,
      ...(layout === 'beside' ? { RECOGDRIVE_MARKER_DIR: join(parent, '_recogdrive', OUTPUT) } : {}),
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(SPEC.outputs),
    },
  });
  return parent;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Puts a local folder into a store under `uri` (gs://: one object per file). */
async function publish(store: ArtifactStore, dir: string, uri: string): Promise<void> {
  if (uri.startsWith('file://')) return;
  for (const file of await filesUnder(dir)) await store.writeText(`${uri}/${file}`, await readFile(join(dir, file), 'utf8'));
}

/** Readers of an output in a store, its markers where the layout puts them. */
function readersOf(store: ArtifactStore, uri: string, layout: MarkerLayout = 'beside'): OutputReaders {
  return markerReaders(() => store, uri, markerLocation(uri, layout));
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
  /** `uriFor`: where a folder made by wrappedCache is in the store (its output is `<that>/cache`). */
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
    /** The URI of a new output (its markers beside it, or inside it in the old layout). */
    const output = async (name: string, tokens = TOKENS, skipTarget = 0, layout: MarkerLayout = 'beside'): Promise<string> => {
      const dir = await wrappedCache(tokens, skipTarget, layout);
      dirs.push(dir);
      const folder = ctx.uriFor(dir, name);
      await publish(ctx.store, dir, folder);
      return `${folder}/${OUTPUT}`;
    };
    const verify = (uri: string, spec = SPEC, seen = ['Caching Complete.']) => verifyFromMarkers(readersOf(ctx.store, uri), spec, seen);
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
      const report = await verify(uri);
      const requests = (ctx.requests?.() ?? 0) - before;
      assert.deepEqual(report.problems, []);
      assert.equal(report.ok, true);
      assert.equal(report.summary.tokens, TOKENS);
      assert.equal(report.manifest!.files, TOKENS * 2);
      assert.equal(report.samples!.length, 8);
      // DONE.json + its attempt's VERDICT.json + the manifest + one read per sampled file, whatever the number of files.
      if (ctx.requests !== undefined) assert.equal(requests, 3 + 8);
    });

    test('a partial output (tokens lacking a file) is rejected naming what is missing', async () => {
      const uri = await output('partial', TOKENS, 3);
      const report = await verify(uri);
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p) => /3 token folders are incomplete .*lacks trajectory_target\.gz/.test(p)), report.problems.join('\n'));
      assert.ok(report.problems.some((p) => /cached 9 complete tokens, expected 12/.test(p)), report.problems.join('\n'));
    });

    test('a short cache (fewer tokens than expected) is rejected', async () => {
      const uri = await output('short', 5);
      const report = await verify(uri);
      assert.equal(report.ok, false);
      assert.ok(report.problems.some((p) => /cached 5 complete tokens, expected 12/.test(p)), report.problems.join('\n'));
    });

    test('an empty cache behind "Caching Complete." is rejected', async () => {
      const uri = await output('empty', 0);
      const report = await verify(uri);
      assert.equal(report.ok, false);
      assert.ok(report.problems.includes('the cache holds no complete token'), report.problems.join('\n'));
    });

    test('an output without DONE.json fails verification', async () => {
      const uri = await output('no-done');
      await ctx.remove(uri.replace(/cache$/, '_recogdrive/cache'), 'DONE.json');
      const report = await verify(uri);
      assert.equal(report.ok, false);
      assert.match(report.problems[0]!, /no DONE\.json/);
    });

    test('a sampled file missing after the wrapper finished fails verification by name', async () => {
      const uri = await output('lost-file');
      const first = await verify(uri);
      const victim = first.samples![0]!.path;
      await ctx.remove(uri, victim);
      const again = await verify(uri);
      assert.ok(again.problems.includes(`${victim} is listed in the manifest but missing`), again.problems.join('\n'));
      // And a reuse check of the recorded artifact notices it too.
      assert.deepEqual(await checkStillValid(readersOf(ctx.store, uri), recordOf(uri, first)), [`${victim} is listed in the manifest but missing`]);
    });

    test('DONE.json checked against another output contract does not pass for this one', async () => {
      const uri = await output('other-contract');
      const other: VerificationSpec = { ...SPEC, outputs: { ...SPEC.outputs, expectedTokens: 99 } as VerificationSpec['outputs'] };
      const report = await verify(uri, other);
      assert.ok(report.problems.some((p) => /checked against another output contract/.test(p)), report.problems.join('\n'));
    });

    test('a silent-failure log line fails an otherwise complete output', async () => {
      const uri = await output('log-line');
      const report = await verify(uri, SPEC, ['Caching Complete.', 'Image path not found']);
      assert.deepEqual(report.problems, ['the log says "Image path not found"']);
    });

    test('the second writer of DONE.json is refused and the first verdict stands', async () => {
      const done = `${(await output('second-writer')).replace(/cache$/, '_recogdrive/cache')}/DONE.json`;
      const original = await ctx.store.readText(done);
      assert.ok(original !== undefined);
      assert.equal(await ctx.store.createIfAbsent(done, '{"forged":true}'), false);
      assert.equal(await ctx.store.readText(done), original);
    });

    test('an output of a run started before the markers moved out (markers inside it) still verifies and is still reusable', async () => {
      const uri = await output('old-layout', TOKENS, 0, 'inside');
      const report = await verifyFromMarkers(readersOf(ctx.store, uri, 'inside'), SPEC, ['Caching Complete.']);
      assert.deepEqual(report.problems, []);
      assert.equal(report.summary.tokens, TOKENS);
      assert.deepEqual(await checkStillValid(readersOf(ctx.store, uri, 'inside'), recordOf(uri, report)), []);
    });

    test('a provided output is verified from its markers wherever they are: beside it, inside it (old layout), or by walking it', async () => {
      const beside = await output('provided-beside');
      const inside = await output('provided-inside', TOKENS, 0, 'inside');
      const short = await output('provided-short', 5, 0, 'inside');
      const candidates = (uri: string) => (['beside', 'inside'] as const).map((layout) => readersOf(ctx.store, uri, layout));
      for (const uri of [beside, inside]) {
        const report = await verifyProvidedOutput(candidates(uri), ctx.store.reader(uri), SPEC);
        assert.deepEqual(report.problems, [], uri);
        assert.equal(report.doneAttempt, 1, `${uri} was verified from its DONE.json`);
      }
      assert.ok((await verifyProvidedOutput(candidates(short), ctx.store.reader(short), SPEC)).problems.some((p) => /cached 5 complete tokens/.test(p)));
    });
  });
}

test('the wrapper writes its markers beside the output: the cache root holds only log folders, as upstream readers iterating it expect', async () => {
  const parent = await wrappedCache(3);
  try {
    const root = await readdir(join(parent, OUTPUT), { withFileTypes: true });
    assert.deepEqual(root.map((e) => [e.name, e.isDirectory()]).sort(), [['log-0', true], ['log-1', true], ['log-2', true]]);
    const markers = join(parent, '_recogdrive', OUTPUT);
    assert.ok((await stat(join(markers, 'DONE.json'))).isFile());
    const manifest = await readFile(join(markers, 'MANIFEST.tsv'), 'utf8');
    assert.equal(manifest.split('\n').filter(Boolean).length, 6, manifest);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test('in the old layout (no marker dir) the wrapper leaves its markers inside the output but out of the manifest', async () => {
  const parent = await wrappedCache(2, 0, 'inside');
  const dir = join(parent, OUTPUT);
  try {
    const manifest = await readFile(join(dir, '_recogdrive', 'MANIFEST.tsv'), 'utf8');
    assert.ok(!manifest.includes('DONE.json') && !manifest.includes('_recogdrive'), manifest);
    assert.ok((await stat(join(dir, 'DONE.json'))).isFile());
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});
