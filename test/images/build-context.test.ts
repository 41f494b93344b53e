/**
 * Every Dockerfile of the repository can be built from a fresh clone: whatever it COPYs/ADDs from
 * the build context (the repository root) is there after .dockerignore, .dockerignore drops
 * nothing from a folder an image takes whole, and every base image is a fixed one. No Docker
 * engine is needed: the context is computed as Docker computes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import {
  buildContext,
  contextSources,
  copyInstructions,
  documentedBuilds,
  filesTaken,
  isDockerfile,
  isPinnedImage,
  missingSources,
  parseDockerfile,
  repositoryFiles,
  stages,
} from './dockerfiles.ts';

const repository = await repositoryFiles();
const dockerignore = await readFile(join(PROJECT_ROOT, '.dockerignore'), 'utf8');
const context = buildContext(repository, dockerignore);
const dockerfiles = repository.filter(isDockerfile);
const texts = new Map(await Promise.all(dockerfiles.map(async (path) => [path, await readFile(join(PROJECT_ROOT, path), 'utf8')] as const)));
/** Images a documented `docker build -t` in this repository makes: bases that are ours, not pulled. */
const builtHere = new Set([...texts.values()].flatMap((text) => documentedBuilds(text).flatMap((build) => build.tags)));

test('the image tests find every Dockerfile the images are built from', () => {
  for (const expected of ['docker/images/stage1/Dockerfile', 'docker/images/unified/Dockerfile', 'docker/stage-images/Dockerfile', 'docker/worker.Dockerfile']) {
    assert.ok(dockerfiles.includes(expected), `${expected} is found (found: ${dockerfiles.join(', ')})`);
  }
});

for (const dockerfile of dockerfiles) {
  const text = texts.get(dockerfile)!;

  test(`${dockerfile}: every file it copies from the build context is there after .dockerignore`, () => {
    assert.ok(contextSources(parseDockerfile(text)).length > 0, 'it copies something from the context');
    assert.deepEqual(missingSources(text, context), []);
  });

  test(`${dockerfile}: .dockerignore drops no file of a folder it copies`, () => {
    const dropped = contextSources(parseDockerfile(text)).flatMap(({ line, source }) => {
      const inImage = new Set(filesTaken(source, context));
      return filesTaken(source, repository)
        .filter((file) => !inImage.has(file))
        .map((file) => `line ${line}: ${source} loses ${file}`);
    });
    assert.deepEqual(dropped, []);
  });

  test(`${dockerfile}: every base image is pinned to an exact version or built by this repository`, () => {
    const names = new Set<string>();
    for (const stage of stages(parseDockerfile(text))) {
      const fromEarlierStage = names.has(stage.image);
      assert.ok(
        fromEarlierStage || isPinnedImage(stage.image) || builtHere.has(stage.image),
        `line ${stage.line}: FROM ${stage.written} (${stage.image}) is neither pinned nor built here`,
      );
      if (stage.name !== undefined) names.add(stage.name);
    }
    for (const copy of copyInstructions(parseDockerfile(text))) {
      const from = copy.flags.get('from');
      if (from !== undefined) assert.ok(names.has(from), `line ${copy.line}: COPY --from=${from} names an earlier stage (an image there would be unpinned)`);
    }
  });

  test(`${dockerfile}: its documented build command uses the repository root as the context`, () => {
    const builds = documentedBuilds(text);
    assert.ok(builds.length > 0, 'the header says how to build it');
    for (const build of builds) {
      assert.equal(build.file, dockerfile, 'docker build -f names this file');
      assert.equal(build.context, '.', 'the context is the repository root, where .dockerignore is');
    }
  });
}

test('the stage wrapper layer takes node from a pinned Node image, not from node_modules', () => {
  const instructions = parseDockerfile(texts.get('docker/stage-images/Dockerfile')!);
  const node = copyInstructions(instructions).find((copy) => copy.destination === '/opt/recogdrive/bin/node');
  assert.ok(node !== undefined, 'the layer installs /opt/recogdrive/bin/node');
  const from = node.flags.get('from');
  assert.ok(from !== undefined, 'copied --from a stage, not from the build context');
  const stage = stages(instructions).find((candidate) => candidate.name === from);
  assert.ok(stage !== undefined, 'from a stage of the same Dockerfile');
  assert.match(stage.image, /^node:24\.\d+\.\d+-bookworm-slim$/, 'Node 24 on the Debian release of the stage images, by exact version');
});

test('a COPY of what .dockerignore excludes is caught: the old layer copied node from node_modules', () => {
  const afterNpmInstall = [...repository, 'node_modules/node/bin/node', 'node_modules/node/package.json'];
  const oldLayer = ['FROM recogdrive-tpu:stage1-base', 'COPY node_modules/node/bin/node /opt/recogdrive/bin/node', 'COPY pipeline/ /opt/recogdrive/pipeline/'].join('\n');
  assert.deepEqual(missingSources(oldLayer, buildContext(afterNpmInstall, dockerignore)), ['line 2: node_modules/node/bin/node']);
  assert.deepEqual(missingSources(oldLayer, afterNpmInstall), [], 'without .dockerignore it would be there');
});

test('.dockerignore is applied with Docker\'s rules: a bare name excludes only that path at the root', () => {
  const files = ['test/unit/a.test.ts', 'docker/simulator/test/fixture.json', 'node_modules/x/index.js', 'docker/x/node_modules/y.js'];
  assert.deepEqual(buildContext(files, 'node_modules\n# a comment\ntest\n'), ['docker/simulator/test/fixture.json', 'docker/x/node_modules/y.js']);
});

test('COPY sources are matched as Docker matches them: folders, wildcards within one level, ./ and trailing /', () => {
  const files = ['pipeline/a.ts', 'pipeline/verify/b.ts', 'docker/images/stage1/requirements.lock', 'docker/images/unified/requirements.lock'];
  assert.deepEqual(filesTaken('pipeline/', files), ['pipeline/a.ts', 'pipeline/verify/b.ts']);
  assert.deepEqual(filesTaken('./pipeline', files), ['pipeline/a.ts', 'pipeline/verify/b.ts']);
  assert.deepEqual(filesTaken('docker/images/*/requirements.lock', files), ['docker/images/stage1/requirements.lock', 'docker/images/unified/requirements.lock']);
  assert.deepEqual(filesTaken('docker/*.lock', files), [], '* does not cross a /');
  assert.deepEqual(filesTaken('pipe', files), [], 'a prefix of a folder name is not the folder');
});

test('Dockerfile instructions are read as Docker reads them: continuations, comments inside them, heredocs, JSON form', () => {
  const text = [
    '# syntax=docker/dockerfile:1',
    'FROM python:3.11.15-slim-bookworm AS base',
    'RUN apt-get update \\',
    '# a comment inside the continuation is dropped',
    ' && echo done',
    'RUN <<EOF',
    'COPY not/an/instruction /x',
    'EOF',
    'COPY --chmod=755 --from=base /usr/bin/env /env',
    'COPY ["docker/images/nuplan-devkit.txt", "/tmp/"]',
  ].join('\n');
  const instructions = parseDockerfile(text);
  assert.deepEqual(
    instructions.map((instruction) => [instruction.line, instruction.keyword]),
    [[2, 'FROM'], [3, 'RUN'], [6, 'RUN'], [9, 'COPY'], [10, 'COPY']],
  );
  assert.equal(instructions[1]!.args, 'apt-get update   && echo done');
  assert.deepEqual(contextSources(instructions), [{ line: 10, source: 'docker/images/nuplan-devkit.txt' }]);
  assert.deepEqual(stages(instructions), [{ line: 2, written: 'python:3.11.15-slim-bookworm', image: 'python:3.11.15-slim-bookworm', name: 'base' }]);
});

test('a base image is pinned by a full version tag or a digest, not by a major version or latest', () => {
  assert.ok(isPinnedImage('python:3.11.15-slim-bookworm'));
  assert.ok(isPinnedImage(`node@sha256:${'a'.repeat(64)}`));
  assert.ok(isPinnedImage('registry.example:5000/team/image:1.2.3'));
  assert.ok(!isPinnedImage('node:24-bookworm-slim'));
  assert.ok(!isPinnedImage('python:3.11'));
  assert.ok(!isPinnedImage('registry.example:5000/team/image'));
  assert.ok(!isPinnedImage('debian:latest'));
});
