/**
 * The Node code an image runs finds every module it imports in that image: the worker image
 * (workers/cli.ts and what it starts by path: the workflow bundle, the simulator) and the stage
 * wrapper layer (main.ts, which its /usr/local/bin/recogdrive-stage shim execs). A build that
 * succeeds but lacks a module fails only at the first run; this catches it without an engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { buildContext, parseDockerfile, repositoryFiles } from './dockerfiles.ts';
import { followImports, imageLayout, scriptModules, type ImageLayout } from './image-modules.ts';

const context = buildContext(await repositoryFiles(), await readFile(join(PROJECT_ROOT, '.dockerignore'), 'utf8'));
const read = (path: string): string => readFileSync(join(PROJECT_ROOT, path), 'utf8');
const packageJson = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
/** What `npm ci --omit=dev` installs: the dependencies, not the devDependencies. */
const dependencies = new Set(Object.keys(packageJson.dependencies));

async function layoutOf(dockerfile: string): Promise<ImageLayout> {
  return imageLayout(parseDockerfile(await readFile(join(PROJECT_ROOT, dockerfile), 'utf8')), context);
}

/** The modules an image starts: its command's, and those the shell scripts it carries exec. */
function entryModules(layout: ImageLayout): string[] {
  const scripts = [...layout.files].filter(([, file]) => read(file).startsWith('#!'));
  return [...new Set([...layout.commandModules, ...scripts.flatMap(([path, file]) => scriptModules(read(file), path))])];
}

test('the worker image has every module workers/cli.ts loads, and installs every package they import', async () => {
  const layout = await layoutOf('docker/worker.Dockerfile');
  assert.ok(layout.installsDependencies, 'npm ci --omit=dev installs the dependencies');
  // The shims of the local backend (stage wrapper, simulator's python/pip) are entry points too.
  assert.deepEqual(entryModules(layout), ['/app/workers/cli.ts', '/app/docker/simulator/main.ts', '/app/docker/stage-wrapper/main.ts']);
  const { problems, loaded } = followImports(layout, entryModules(layout), dependencies, read);
  assert.deepEqual(problems, []);
  for (const started of ['/app/workflows/index.ts', '/app/docker/simulator/main.ts', '/app/activities/index.ts']) {
    assert.ok(loaded.has(started), `${started} is reached`);
  }
});

test('the stage wrapper layer has every module recogdrive-stage runs, and they import no package', async () => {
  const layout = await layoutOf('docker/stage-images/Dockerfile');
  assert.equal(layout.installsDependencies, false, 'there is no node_modules in a stage image');
  assert.deepEqual(entryModules(layout), ['/opt/recogdrive/docker/stage-wrapper/main.ts']);
  const { problems, loaded } = followImports(layout, entryModules(layout), new Set(), read);
  assert.deepEqual(problems, []);
  assert.ok(loaded.has('/opt/recogdrive/pipeline/markers.ts'), 'the wrapper reaches pipeline/');
});

test('a module or package missing from an image is reported with who loads it', async () => {
  const layout = await layoutOf('docker/stage-images/Dockerfile');
  const withoutPipeline: ImageLayout = { ...layout, files: new Map([...layout.files].filter(([path]) => !path.startsWith('/opt/recogdrive/pipeline/'))) };
  const { problems } = followImports(withoutPipeline, entryModules(layout), new Set(), read);
  assert.ok(problems.some((problem) => /^\/opt\/recogdrive\/pipeline\/markers\.ts \(loaded by \/opt\/recogdrive\/docker\/stage-wrapper\/.+\) is not in the image$/.test(problem)), problems.join('\n'));

  const worker = await layoutOf('docker/worker.Dockerfile');
  const withoutZod = new Set([...dependencies].filter((name) => name !== 'zod'));
  assert.ok(followImports(worker, entryModules(worker), withoutZod, read).problems.some((problem) => problem.endsWith('imports zod, which the image does not install')));
});
