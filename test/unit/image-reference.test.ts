/** Image references read as docker reads them: registry, path, tag, digest, Docker Hub's defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidImageReference, parseImageReference, pinnedDigest, pinnedReference } from '../../pipeline/image-reference.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

test('a registry host with a port, a nested path and a tag are read apart', () => {
  assert.deepEqual(parseImageReference('127.0.0.1:5000/team/recogdrive-tpu:stage1'), {
    registry: '127.0.0.1:5000',
    apiHost: '127.0.0.1:5000',
    repository: 'team/recogdrive-tpu',
    tag: 'stage1',
  });
  assert.deepEqual(parseImageReference('us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu:unified'), {
    registry: 'us-east5-docker.pkg.dev',
    apiHost: 'us-east5-docker.pkg.dev',
    repository: 'grhuang-02/xiaomi-tpu/recogdrive-tpu',
    tag: 'unified',
  });
  assert.equal(parseImageReference('localhost/img').registry, 'localhost');
});

test('Docker Hub names get its API host, the library/ prefix and the latest tag', () => {
  assert.deepEqual(parseImageReference('ubuntu'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/ubuntu', tag: 'latest' });
  assert.deepEqual(parseImageReference('nvidia/cuda:12.4.1-base'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'nvidia/cuda', tag: '12.4.1-base' });
  assert.equal(parseImageReference('docker.io/ubuntu:24.04').repository, 'library/ubuntu');
});

test('a digest is read with or without a tag; without a tag there is no default tag', () => {
  assert.deepEqual(parseImageReference(`gcr.io/p/img@${DIGEST}`), { registry: 'gcr.io', apiHost: 'gcr.io', repository: 'p/img', digest: DIGEST });
  assert.deepEqual(parseImageReference(`gcr.io/p/img:v2@${DIGEST}`), { registry: 'gcr.io', apiHost: 'gcr.io', repository: 'p/img', tag: 'v2', digest: DIGEST });
  assert.equal(pinnedDigest(`gcr.io/p/img:v2@${DIGEST}`), DIGEST);
  assert.equal(pinnedDigest('gcr.io/p/img:v2'), undefined);
});

test('the pinned reference names the registry and path with the digest, not the tag', () => {
  assert.equal(pinnedReference(parseImageReference('127.0.0.1:5000/team/img:stage1'), DIGEST), `127.0.0.1:5000/team/img@${DIGEST}`);
  assert.equal(pinnedReference(parseImageReference('ubuntu:24.04'), DIGEST), `docker.io/library/ubuntu@${DIGEST}`);
  assert.throws(() => pinnedReference(parseImageReference('ubuntu'), 'sha256:short'), /not a sha256 digest/);
});

test('malformed references are refused with the reason', () => {
  for (const [text, why] of [
    ['', /1 to 255/],
    ['Team/Img:v1', /lowercase/],
    ['img@sha256:abc', /sha256:<64 hex digits>/],
    ['img:bad tag', /characters a tag cannot have/],
    ['host:5000//img', /lowercase/],
  ] as const) {
    assert.throws(() => parseImageReference(text), (error: Error) => error instanceof InvalidImageReference && why.test(error.message), text);
  }
});
