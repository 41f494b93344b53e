/**
 * Each image's requirements.lock is a resolution of its requirements.in that still installs: uv
 * (pinned) resolves the .in again from PyPI, as of the pinned instant RESOLVED_AS_OF, starting
 * from the committed lock, and the result must equal it apart from its header comments. A lock
 * that no longer resolves (a pinned file deleted or yanked), or that drifted from its .in (edited
 * by hand, a package added to or dropped from the .in, a pin the .in no longer allows), fails here
 * rather than in an image build. Starting from the lock, not from scratch: the package mirror
 * backfills files uploaded before RESOLVED_AS_OF, and a newer-but-allowed version is not drift.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureUv } from '../../infra/local/image-tools.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { PYTHON_IMAGES, compileLock, lockBody, requirementsIn, requirementsLock } from '../../docker/images/lock.ts';
import { pinnedTool, requirePath } from './pinned-tool.ts';

const uv = await pinnedTool(() => ensureUv());

/** `name==version` of every locked package. */
function lockedVersions(lock: string): string[] {
  return [...lock.matchAll(/^([A-Za-z0-9][A-Za-z0-9._-]*==[^\s\\]+)/gm)].map((match) => match[1]!);
}

for (const image of PYTHON_IMAGES) {
  // A few seconds per image here, with uv's cache warm or empty; the timeout allows a slow index.
  test(`${requirementsLock(image)} is what ${requirementsIn(image)} resolves to`, { skip: uv.skip, timeout: 300_000 }, async () => {
    const committed = await readFile(join(PROJECT_ROOT, requirementsLock(image)), 'utf8');
    const resolved = await compileLock(requirePath(uv), image, committed);
    const [was, now] = [lockedVersions(committed), lockedVersions(resolved)];
    assert.deepEqual(
      { added: now.filter((pin) => !was.includes(pin)), removed: was.filter((pin) => !now.includes(pin)) },
      { added: [], removed: [] },
      `the lock drifted: run \`node docker/images/lock.ts ${image}\` and review the diff`,
    );
    assert.equal(lockBody(resolved), lockBody(committed), 'hashes and annotations equal too');
  });
}

test('every image lock pins each package once with hashes, for CPython 3.11 on linux x86_64 with TPU wheels', async () => {
  for (const image of PYTHON_IMAGES) {
    const lock = await readFile(join(PROJECT_ROOT, requirementsLock(image)), 'utf8');
    const pins = lockedVersions(lock);
    const names = pins.map((pin) => pin.split('==')[0]!.toLowerCase());
    assert.equal(new Set(names).size, names.length, `${image}: one version per package`);
    assert.equal(lock.match(/^[A-Za-z0-9][^\n]*==[^\n]*\\\n\s+--hash=sha256:[0-9a-f]{64}/gm)?.length, pins.length, `${image}: every pin has a hash`);
    for (const required of ['jax==0.6.2', 'jaxlib==0.6.2', 'libtpu==0.0.17.1', 'torch==2.12.1', 'torchax==0.0.13', 'numpy==1.26.4']) {
      assert.ok(pins.includes(required), `${image} locks ${required}`);
    }
    assert.ok(!names.includes('nuplan-devkit'), `${image}: nuplan-devkit comes from git (docker/images/nuplan-devkit.txt), not the lock`);
  }
});

test('the two images differ where the guide says they do', async () => {
  const [stage1, unified] = await Promise.all(PYTHON_IMAGES.map(async (image) => lockedVersions(await readFile(join(PROJECT_ROOT, requirementsLock(image)), 'utf8'))));
  assert.ok(stage1!.includes('transformers==4.37.2') && stage1!.includes('peft==0.10.0') && stage1!.includes('hydra-core==1.3.2'));
  assert.ok(unified!.includes('transformers==4.43.4') && unified!.includes('hydra-core==1.3.2'));
  const peft = unified!.find((pin) => pin.startsWith('peft=='))!.split('==')[1]!.split('.').map(Number);
  assert.ok(peft[0]! > 0 || peft[1]! >= 18, `unified: peft >= 0.18 (locked ${peft.join('.')})`);
  assert.ok(unified!.some((pin) => pin.startsWith('diffusers==')) && unified!.some((pin) => pin.startsWith('ray==')) && unified!.some((pin) => pin.startsWith('pandas==')));
});
