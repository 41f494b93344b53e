/**
 * Object-store cost of the completion protocol, with the real Cloud Storage client against the
 * emulator (fake-gcs-server) behind a counting proxy: every figure is a count of HTTP requests
 * the orchestrator sent, and the wall time it took. Feature caches of growing size are made by
 * the real stage wrapper around a command writing `<log>/<token>/{internvl_feature,trajectory_target}.gz`,
 * then uploaded to the emulator.
 *
 *   - verification from markers (what the stage workflow does) vs walking the cache with the
 *     contract's checker (what a listing-based verifier would do), per cache size;
 *   - the reuse check of a recorded artifact (what a plan does per reusable stage);
 *   - the watcher's log upkeep per poll (the only store traffic while a stage runs), as
 *     requests per polled stage-hour at the default 30 s poll interval;
 *   - the time to plan the full DAG (pure) and to look up reusable outputs for it.
 *
 *   BENCH_CACHE_FILES (default "1000,10000,100000") file counts; BENCH_WALK_MAX_FILES (default
 *   10000): the walk is skipped above it (one list request per token folder, and the emulator
 *   scans every object per list: at 100k files it would take hours and measure the emulator).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GcsArtifactStore } from '../activities/artifacts/gcs-store.ts';
import { LineageStore } from '../activities/lineage/lineage-store.ts';
import { markerReaders } from '../activities/artifacts/marker-readers.ts';
import { checkStillValid, verifyFromMarkers, verifyStageOutputs } from '../activities/verify/index.ts';
import { markerLocation } from '../pipeline/markers.ts';
import { UPSTREAM_FIXES } from '../pipeline/upstream.ts';
import type { VerificationSpec } from '../pipeline/contracts/types.ts';
import { parsePipelineInput } from '../pipeline/input.ts';
import type { ArtifactRecord } from '../pipeline/lineage.ts';
import { sha256Hex } from '../pipeline/fingerprint.ts';
import { buildPlan, planFingerprints } from '../pipeline/plan.ts';
import { STAGES } from '../pipeline/stages.ts';
import { startCountingProxy } from '../test/helpers/counting-proxy.ts';
import { gcsEmulatorUnmet, startGcsEmulator } from '../test/helpers/gcs-emulator.ts';
import { PROJECT_ROOT } from '../workers/project-root.ts';

const sizes = (process.env.BENCH_CACHE_FILES ?? '1000,10000,100000').split(',').map(Number);
const WRAPPER = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'main.ts');
const BUCKET = 'bench';
const POLL_INTERVAL_S = 30;
const walkMaxFiles = Number(process.env.BENCH_WALK_MAX_FILES ?? 10_000);

const unmet = gcsEmulatorUnmet();
if (unmet !== undefined) {
  console.log(`artifact-store bench skipped: ${unmet}`);
  process.exit(0);
}

/** An emulator (behind a counting proxy) holding what `seedDir` holds, or empty. */
async function storeOver(seedDir?: string) {
  const emulator = await startGcsEmulator(
    seedDir === undefined ? {} : { seed: { seedDir, filesystemRoot: await mkdtemp(join(tmpdir(), 'rd-bench-gcs-')) }, startTimeoutMs: 30 * 60_000 },
  );
  if (seedDir === undefined) await emulator.createBucket(BUCKET);
  const proxy = await startCountingProxy(emulator.apiEndpoint);
  const store = new GcsArtifactStore({ apiEndpoint: proxy.endpoint, projectId: emulator.projectId });
  /** Requests and milliseconds one operation costs. */
  const measure = async <T>(operation: () => Promise<T>): Promise<{ value: T; requests: number; ms: number }> => {
    proxy.reset();
    const start = performance.now();
    const value = await operation();
    return { value, requests: proxy.counts().total, ms: Math.round(performance.now() - start) };
  };
  const stop = async (): Promise<void> => {
    await proxy.close();
    await emulator.stop();
  };
  return { store, measure, stop };
}

/** A feature cache of `files` files made by the real wrapper around a command, in `dir` (its markers in `markersDir`). */
async function wrappedCache(dir: string, markersDir: string, files: number, spec: VerificationSpec): Promise<void> {
  const tokens = files / 2;
  const script = `const fs=require('fs'),p=require('path');const o=process.env.RECOGDRIVE_OUTPUT_DIR;
for(let i=0;i<${tokens};i++){const d=p.join(o,'log-'+(i%100),'token-'+i);fs.mkdirSync(d,{recursive:true});
fs.writeFileSync(p.join(d,'internvl_feature.gz'),'f'+i);fs.writeFileSync(p.join(d,'trajectory_target.gz'),'t'+i);}
console.log('Caching Complete.');`;
  await promisify(execFile)(process.execPath, [WRAPPER, '--', process.execPath, '-e', script], {
    env: {
      PATH: process.env.PATH,
      RECOGDRIVE_STAGE: 'featureCache',
      RECOGDRIVE_ATTEMPT: '1',
      RECOGDRIVE_OUTPUT_DIR: dir,
      RECOGDRIVE_MARKER_DIR: markersDir,
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(spec.outputs),
    },
    maxBuffer: 64 * 1024 * 1024,
  });
}

const rows: string[] = [];
let cleanup = async (): Promise<void> => {};
try {
  for (const files of sizes) {
    const spec: VerificationSpec = {
      outputs: { kind: 'token-cache', files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens: files / 2 },
      logMustContain: ['Caching Complete.'],
      logMustNotContain: [],
    };
    const seedDir = await mkdtemp(join(tmpdir(), 'rd-bench-seed-'));
    const prefix = `cache-${files}`;
    const makeStart = performance.now();
    await wrappedCache(join(seedDir, BUCKET, prefix), join(seedDir, BUCKET, '_recogdrive', prefix), files, spec);
    const wrapperMs = Math.round(performance.now() - makeStart);
    const loadStart = performance.now();
    const { store, measure, stop } = await storeOver(seedDir);
    console.log(`  (setup: ${files} files made by the wrapper in ${wrapperMs} ms, loaded into the emulator in ${Math.round(performance.now() - loadStart)} ms)`);
    const uri = `gs://${BUCKET}/${prefix}`;
    const readers = markerReaders(() => store, uri, markerLocation(uri, 'beside'));
    const markers = await measure(() => verifyFromMarkers(readers, spec, ['Caching Complete.']));
    if (!markers.value.ok) throw new Error(`verification failed: ${markers.value.problems.join('; ')}`);
    const walk = files <= walkMaxFiles ? await measure(() => verifyStageOutputs(store.reader(uri), spec, ['Caching Complete.'])) : undefined;
    const record = {
      uri,
      manifest: markers.value.manifest!,
      samples: markers.value.samples!,
    } as unknown as ArtifactRecord;
    const reuse = await measure(() => checkStillValid(readers, record));
    rows.push(
      `${String(files).padStart(7)} files | wrapper manifest+check ${String(wrapperMs).padStart(6)} ms (in the container, local disk) | ` +
        `verify from markers ${markers.requests} requests ${markers.ms} ms | walking the cache ${walk === undefined ? `skipped (would be ${files / 2 + 101} requests: one list per log and per token folder)` : `${walk.requests} requests ${walk.ms} ms`} | ` +
        `reuse check ${reuse.requests} requests ${reuse.ms} ms`,
    );
    console.log(rows.at(-1));
    await stop();
    await rm(seedDir, { recursive: true, force: true });
  }

  const { store, measure, stop } = await storeOver();
  cleanup = stop;

  // While a stage runs the watcher polls the container, not the store; the store sees only the
  // log upkeep: one append per poll that brought new output.
  const log = `gs://${BUCKET}/logs/stage2/attempt-1-worker-0.log`;
  await store.appendText(log, 'first line\n');
  const append = await measure(() => store.appendText(log, 'Epoch: 0, Step: 10, Loss: 0.5\n'.repeat(20)));
  const perHour = (3600 / POLL_INTERVAL_S) * append.requests;
  console.log(
    `watching: ${append.requests} requests per log append (read generation, upload chunk, compose, delete chunk); ` +
      `at the default ${POLL_INTERVAL_S} s poll, at most ${perHour} requests per polled stage-hour (0 per poll without new output), plus verification once`,
  );

  // Planning: pure, and the lookup of every stage's verified output in the store.
  const config = parsePipelineInput({
    experiment: 'bench',
    artifactRoot: `gs://${BUCKET}/root`,
    paths: { hostRepoDir: '/srv/recogdrive' },
    upstreamFixes: [...UPSTREAM_FIXES],
    images: { stage1: 'r.example/recogdrive-tpu@sha256:' + '1'.repeat(64), unified: 'r.example/recogdrive-tpu@sha256:' + '2'.repeat(64) },
  });
  const iterations = 200;
  const planStart = performance.now();
  for (let i = 0; i < iterations; i++) buildPlan(config, `bench-${i}`);
  const planMs = (performance.now() - planStart) / iterations;

  const lineage = new LineageStore(() => store);
  const fingerprints = planFingerprints(config, { imageDigests: {} });
  for (const stage of STAGES) {
    // A small verified output per stage (the lookup reads its markers and samples, whatever it holds).
    const uri = `gs://${BUCKET}/planned/${stage}`;
    await store.writeText(`${uri}/out.txt`, stage);
    const manifestText = `out.txt\t${stage.length}\n`;
    await store.writeText(`${uri}/_recogdrive/MANIFEST.tsv`, manifestText);
    const manifest = { files: 1, bytes: stage.length, digest: `sha256:${sha256Hex(manifestText)}` };
    const done = { schema: 1, stage, attempt: 1, worker: 0, exitCode: 0, startedAt: '', finishedAt: '', manifest: { ...manifest, list: '_recogdrive/MANIFEST.tsv' }, check: { spec: {}, problems: [], summary: {} } };
    await store.writeText(`${uri}/DONE.json`, JSON.stringify(done));
    const verified = { manifest, summary: {}, samples: [{ path: 'out.txt', size: stage.length }] };
    await lineage.recordArtifact(config.artifactRoot, {
      schema: 1,
      stage,
      fingerprint: fingerprints[stage]!.fingerprint,
      uri,
      artifactRoot: config.artifactRoot,
      components: fingerprints[stage]!.components!,
      inputs: {},
      imageDigest: 'sha256:bench',
      producer: { runId: 'bench-source', workflowId: `bench-source/${stage}`, attempt: 1 },
      verifiedAt: new Date().toISOString(),
      manifest: verified.manifest!,
      summary: verified.summary,
      samples: verified.samples!,
    });
  }
  const lookup = await measure(() => lineage.lookup(config, {}));
  const reused = Object.keys(lookup.value.found ?? {}).length;
  console.log(
    `planning: buildPlan of the 6-stage DAG ${(planMs * 1000).toFixed(0)} µs (pure, mean of ${iterations}); ` +
      `lookup of reusable outputs ${lookup.requests} requests ${lookup.ms} ms (${reused} of 6 stages reusable)`,
  );
} finally {
  await cleanup();
}
