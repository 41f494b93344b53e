/**
 * A storage outage during planning is an error, never an absence: the lineage lookup (and
 * verification) against the real Cloud Storage client and the pinned emulator, with the outage
 * injected by a proxy (503s from some request on, mid-lookup) or a closed port. The lookup
 * activity fails retryably; once storage answers again the fingerprints equal an undisturbed lookup's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { GcsArtifactStore } from '../../activities/artifacts/gcs-store.ts';
import { markerReaders } from '../../activities/artifacts/marker-readers.ts';
import { createActivities } from '../../activities/index.ts';
import { LineageStore } from '../../activities/lineage/lineage-store.ts';
import { checkStillValid, verifyFromMarkers } from '../../activities/verify/index.ts';
import { FailureType } from '../../pipeline/failures.ts';
import { parsePipelineInput, type PipelineConfig } from '../../pipeline/input.ts';
import { fingerprintIndexUri, recordMarkers, type ArtifactRecord } from '../../pipeline/lineage.ts';
import { besideMarkersUri, markerFiles, type DoneMarker } from '../../pipeline/markers.ts';
import { planFingerprints, type PlanContext } from '../../pipeline/plan.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.ts';
import { gcsEmulatorSkip, startGcsEmulator, type GcsEmulator } from '../helpers/gcs-emulator.ts';
import { freePort } from '../../infra/local/dev-server.ts';

const skip = gcsEmulatorSkip();
const BUCKET = 'lineage';
const ROOT = `gs://${BUCKET}/root`;
const PROVIDED = `gs://${BUCKET}/provided/stage1`;
const DIGESTS = {
  'registry.example/recogdrive-tpu:stage1': `sha256:${'1'.repeat(64)}`,
  'registry.example/recogdrive-tpu:unified': `sha256:${'2'.repeat(64)}`,
};
const MANIFEST_DIGEST = `sha256:${'3'.repeat(64)}`;

let emulator: GcsEmulator;
let proxy: CountingProxy;
/** No retries inside the client: each failed request surfaces at once (Temporal is the one that retries). */
let store: GcsArtifactStore;

const config: PipelineConfig = parsePipelineInput({
  experiment: 'outage',
  artifactRoot: ROOT,
  paths: { hostRepoDir: '/home/me/recogdrive' },
  images: { stage1: 'registry.example/recogdrive-tpu:stage1', unified: 'registry.example/recogdrive-tpu:unified' },
  upstreamFixes: [...UPSTREAM_FIXES],
  stages: ['featureCache'],
  providedArtifacts: { stage1: PROVIDED },
});

function record(stage: ArtifactRecord['stage'], uri: string, fingerprint: string): ArtifactRecord {
  return {
    schema: 1,
    stage,
    fingerprint,
    uri,
    markers: { layout: 'beside', uri: besideMarkersUri(uri)! },
    artifactRoot: ROOT,
    components: {},
    inputs: {},
    imageDigest: DIGESTS['registry.example/recogdrive-tpu:stage1'],
    producer: { runId: 'earlier', workflowId: `earlier/${stage}`, attempt: 1 },
    verifiedAt: '2026-12-01T00:00:00.000Z',
    manifest: { files: 0, bytes: 0, digest: MANIFEST_DIGEST },
    summary: {},
    samples: [],
  };
}

function doneMarker(stage: string): DoneMarker {
  return {
    schema: 1,
    stage,
    attempt: 1,
    worker: 0,
    exitCode: 0,
    startedAt: '2026-12-01T00:00:00.000Z',
    finishedAt: '2026-12-01T00:00:00.000Z',
    manifest: { files: 0, bytes: 0, digest: MANIFEST_DIGEST, list: 'MANIFEST.tsv' },
    check: { spec: {}, problems: [], summary: {} },
  };
}

const activities = (artifactStore: GcsArtifactStore) =>
  createActivities({ compute: {}, executors: {}, artifactStores: [artifactStore], localImage: { base: '/nonexistent', dirs: [] } });

const fingerprintsOf = (context: PlanContext) =>
  Object.fromEntries(Object.entries(planFingerprints(config, context)).map(([stage, f]) => [stage, f?.fingerprint]));

/** The lookup as the activity does it; its error when it throws. */
async function lookupError(artifactStore: GcsArtifactStore): Promise<unknown> {
  return activities(artifactStore)
    .lookupArtifacts({ config, imageDigests: DIGESTS })
    .then(
      () => assert.fail('the lookup returned a plan context during the outage'),
      (error: unknown) => error,
    );
}

function assertRetryable(error: unknown): void {
  assert.ok(error instanceof ApplicationFailure, `got ${String(error)}`);
  assert.equal(error.type, FailureType.ArtifactStoreUnavailable);
  assert.equal(error.nonRetryable, false, 'Temporal must retry it');
  assert.match(error.message, /the artifact store could not be read/);
}

/** Fails every request after the first `okRequests` (the outage starts mid-lookup). */
function outageAfter(okRequests: number, times = 1000): void {
  let seen = 0;
  proxy.failNext(() => ++seen > okRequests, 503, times, 'service unavailable (injected)');
}

let undisturbed: PlanContext;

before(async () => {
  if (skip) return;
  emulator = await startGcsEmulator();
  await emulator.createBucket(BUCKET);
  proxy = await startCountingProxy(emulator.apiEndpoint);
  store = new GcsArtifactStore({ apiEndpoint: proxy.endpoint, projectId: emulator.projectId, maxRetries: 0 });
  // A provided stage1 output with its lineage record (its fingerprint stands for it downstream).
  const provided = record('stage1', PROVIDED, `sha256:${'4'.repeat(64)}`);
  await store.writeText(`${recordMarkers(provided).uri}/${markerFiles('beside').artifact}`, JSON.stringify(provided));
  // A verified featureCache output of an earlier run under the fingerprint this plan asks for.
  const wanted = planFingerprints(config, { imageDigests: DIGESTS, provided: { stage1: provided } }).featureCache!.fingerprint;
  const cache = record('featureCache', `${ROOT}/runs/earlier/cache`, wanted);
  await store.writeText(`${recordMarkers(cache).uri}/${markerFiles('beside').done}`, JSON.stringify(doneMarker('featureCache')));
  await store.writeText(fingerprintIndexUri(ROOT, 'featureCache', wanted), JSON.stringify(cache));
  undisturbed = await new LineageStore(() => store).lookup(config, DIGESTS);
});

after(async () => {
  if (skip) return;
  await proxy?.close();
  await emulator?.stop();
});

test('an undisturbed lookup finds the provided record and the verified output it may reuse', { skip }, () => {
  assert.equal(undisturbed.provided?.stage1?.fingerprint, `sha256:${'4'.repeat(64)}`);
  assert.equal(undisturbed.found?.featureCache?.producer.runId, 'earlier');
  // The record matters: without it the provided artifact would get the URI fallback, and every fingerprint downstream would change.
  assert.notEqual(fingerprintsOf(undisturbed).featureCache, fingerprintsOf({ imageDigests: DIGESTS }).featureCache);
});

for (const okRequests of [0, 1, 2]) {
  test(`503s from request ${okRequests + 1} of the lookup on make it fail retryably; afterwards the fingerprints are the undisturbed ones`, { skip }, async () => {
    proxy.reset();
    outageAfter(okRequests);
    assertRetryable(await lookupError(store));
    assert.ok(proxy.requests().length > okRequests, 'the outage was met');
    proxy.reset(); // storage is back
    const again = await activities(store).lookupArtifacts({ config, imageDigests: DIGESTS });
    assert.deepEqual(fingerprintsOf(again), fingerprintsOf(undisturbed));
    assert.deepEqual(Object.keys(again.found ?? {}), ['featureCache']);
  });
}

test('storage that does not answer at all (a closed port) fails the lookup retryably', { skip }, async () => {
  const closed = await freePort();
  const unreachable = new GcsArtifactStore({ apiEndpoint: `http://127.0.0.1:${closed}`, projectId: 'test-project', maxRetries: 0 });
  const error = await lookupError(unreachable);
  assertRetryable(error);
  assert.match((error as Error).message, /no HTTP response/);
});

test('a 404 is an absence: a provided artifact without a record gets the URI fingerprint, without error', { skip }, async () => {
  proxy.reset();
  const lookup = await new LineageStore(() => store).lookup({ ...config, providedArtifacts: { stage1: `gs://${BUCKET}/provided/no-record` } }, DIGESTS);
  assert.equal(lookup.provided?.stage1, undefined);
});

test('verification and the reuse check throw on a failed read instead of reporting a missing output', { skip }, async () => {
  const cache = undisturbed.found!.featureCache!;
  const readers = markerReaders(() => store, cache.uri, recordMarkers(cache));
  const spec = { outputs: {}, logMustContain: [], logMustNotContain: [] } as unknown as Parameters<typeof verifyFromMarkers>[1];
  proxy.reset();
  outageAfter(0);
  await assert.rejects(verifyFromMarkers(readers, spec, undefined), /HTTP 503/);
  await assert.rejects(checkStillValid(readers, cache), /HTTP 503/);
  proxy.reset();
  assert.deepEqual(await checkStillValid(readers, cache), []);
});

