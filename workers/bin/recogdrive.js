#!/usr/bin/env node
// Runs the TypeScript CLI on a Node that strips types (>= 22.18); falls back to the project's
// own Node 24 (devDependency `node`) when the one on PATH is older.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'workers', 'cli.ts');
const [major, minor] = process.versions.node.split('.').map(Number);
const modern = major > 22 || (major === 22 && minor >= 18);
const bundled = join(root, 'node_modules', 'node', 'bin', 'node');
const node = modern || !existsSync(bundled) ? process.execPath : bundled;
const result = spawnSync(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
