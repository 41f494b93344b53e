/** The lint rules that keep workflow code deterministic actually fire (and stay quiet on clean code). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures', 'lint');
// The fixtures are ignored by `npm run lint`; here they are linted on purpose.
const eslint = new ESLint({ cwd: PROJECT_ROOT, ignore: false });

async function ruleHits(file: string): Promise<Array<{ rule: string | null; line: number }>> {
  const [result] = await eslint.lintFiles([join(FIXTURES, file)]);
  return result!.messages.map((m) => ({ rule: m.ruleId, line: m.line }));
}

test('a workflow importing Node built-ins or activity code, or dropping a promise, fails lint', { timeout: 60_000 }, async () => {
  const hits = await ruleHits('workflows/nondeterministic-workflow.ts');
  const lines = (rule: string) => hits.filter((h) => h.rule === rule).map((h) => h.line);
  assert.deepEqual(lines('@typescript-eslint/no-restricted-imports'), [2, 3, 4, 5]);
  assert.deepEqual(lines('@typescript-eslint/no-floating-promises'), [10]);
});

test('a workflow importing activity types only, and awaiting, passes lint', { timeout: 60_000 }, async () => {
  assert.deepEqual(await ruleHits('workflows/clean-workflow.ts'), []);
});

test('pipeline code may not import Node built-ins or Temporal', { timeout: 60_000 }, async () => {
  const hits = await ruleHits('pipeline/impure.ts');
  assert.deepEqual(hits.filter((h) => h.rule === '@typescript-eslint/no-restricted-imports').map((h) => h.line), [2, 3]);
});
