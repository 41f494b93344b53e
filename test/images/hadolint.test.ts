/**
 * hadolint (pinned, from PyPI) finds nothing in any Dockerfile of the repository, at every
 * level down to style. A rule may be silenced only inline, for one instruction, with the reason
 * on the comment line above it.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureHadolint } from '../../infra/local/image-tools.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { isDockerfile, repositoryFiles } from './dockerfiles.ts';
import { pinnedTool, requirePath } from './pinned-tool.ts';

const run = promisify(execFile);
const hadolint = await pinnedTool(() => ensureHadolint());
const dockerfiles = (await repositoryFiles()).filter(isDockerfile);
const scratch = await mkdtemp(join(tmpdir(), 'recogdrive-hadolint-'));
after(() => rm(scratch, { recursive: true, force: true }));

interface Finding {
  code: string;
  level: string;
  line: number;
  message: string;
}

/** hadolint's findings, with no configuration but this (a user's or a folder's .hadolint.yaml would change them). */
async function lint(path: string): Promise<string[]> {
  const config = join(scratch, 'hadolint.yaml');
  await writeFile(config, 'ignored: []\n');
  const result = await run(requirePath(hadolint), ['--config', config, '--failure-threshold', 'style', '--format', 'json', '--no-fail', path], {
    cwd: PROJECT_ROOT,
  });
  return (JSON.parse(result.stdout) as Finding[]).map((finding) => `line ${finding.line} ${finding.code} (${finding.level}): ${finding.message}`);
}

for (const dockerfile of dockerfiles) {
  test(`hadolint finds nothing in ${dockerfile}`, { skip: hadolint.skip }, async () => {
    assert.deepEqual(await lint(dockerfile), []);
  });

  test(`${dockerfile}: every rule it silences says why on the line above`, async () => {
    const lines = (await readFile(join(PROJECT_ROOT, dockerfile), 'utf8')).split('\n');
    const unexplained = lines.flatMap((line, index) => {
      if (!/^#\s*hadolint\s+ignore=/.test(line)) return [];
      const above = lines[index - 1] ?? '';
      return above.startsWith('#') && !/hadolint/.test(above) ? [] : [`line ${index + 1}: ${line}`];
    });
    assert.deepEqual(unexplained, []);
  });
}

test('hadolint reports what it should: an unpinned apt-get and a named user', { skip: hadolint.skip }, async () => {
  const bad = join(scratch, 'Dockerfile');
  await writeFile(bad, 'FROM debian:12.8-slim\nRUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*\nUSER nobody\n');
  const findings = await lint(bad);
  assert.ok(findings.some((finding) => finding.startsWith('line 2 DL3008')), findings.join('\n'));
  assert.ok(findings.some((finding) => finding.startsWith('line 3 DL3066')), findings.join('\n'));
});
