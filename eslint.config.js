// Lint rules that protect the workflow sandbox and catch forgotten awaits.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** Workflow code and the pure modules it imports run in Temporal's deterministic sandbox. */
const sandboxRestrictions = (extraPatterns) => [
  'error',
  {
    paths: nodeBuiltins.map((name) => ({ name, message: 'Node built-ins are not deterministic: not allowed in workflow or pipeline code.' })),
    patterns: extraPatterns,
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '.tools/**', 'bench/results/**', 'test/fixtures/lint/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test runs these itself; awaiting them at top level would serialize the file.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': sandboxRestrictions([
        {
          group: ['**/activities', '**/activities/**'],
          allowTypeImports: true,
          message: 'Workflows may import activity types only (import type).',
        },
        { group: ['@temporalio/activity', '@temporalio/worker', '@temporalio/client'], message: 'Not available in the workflow sandbox.' },
        { group: ['**/workers/**', '**/infra/**'], message: 'Workflows may not import process code.' },
      ]),
    },
  },
  {
    files: ['**/pipeline/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': sandboxRestrictions([
        { group: ['@temporalio/*'], message: 'pipeline/ is pure and shared by workflows, CLI and API: no Temporal imports.' },
        { group: ['**/activities/**', '**/workflows/**', '**/workers/**', '**/infra/**'], message: 'pipeline/ depends on nothing else in the project.' },
      ]),
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
);
