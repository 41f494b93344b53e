/**
 * The Node modules an image runs, followed through their imports inside the image's own file
 * system (what the final stage COPYs from the build context). A module the image lacks, or a
 * package it does not install, builds fine and fails at the first run: these find both.
 */
import { builtinModules } from 'node:module';
import { posix } from 'node:path';
import { contextPath, copyInstructions, filesTaken, type Instruction } from './dockerfiles.ts';

export interface ImageLayout {
  /** Image path → repository path of every file the final stage copies from the build context. */
  readonly files: ReadonlyMap<string, string>;
  /** Modules CMD or ENTRYPOINT names (resolved against WORKDIR). */
  readonly commandModules: readonly string[];
  /** Whether the image runs `npm ci --omit=dev`: then package.json's dependencies are installed. */
  readonly installsDependencies: boolean;
}

const MODULE = /\.(ts|mts|js|mjs)$/;

/** Where the final stage's COPYs put each file, as Docker lays them out. */
export function imageLayout(instructions: readonly Instruction[], context: readonly string[]): ImageLayout {
  const lastFrom = instructions.map((instruction) => instruction.keyword).lastIndexOf('FROM');
  const finalStage = instructions.slice(lastFrom + 1);
  const files = new Map<string, string>();
  const commandModules: string[] = [];
  let workdir = '/';
  let installsDependencies = false;
  for (const instruction of finalStage) {
    if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.args);
    if (instruction.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(instruction.args)) installsDependencies = true;
    if ((instruction.keyword === 'CMD' || instruction.keyword === 'ENTRYPOINT') && instruction.args.startsWith('[')) {
      for (const word of JSON.parse(instruction.args) as string[]) if (MODULE.test(word)) commandModules.push(posix.resolve(workdir, word));
    }
    if (instruction.keyword !== 'COPY' && instruction.keyword !== 'ADD') continue;
    const [copy] = copyInstructions([instruction]);
    if (copy === undefined || copy.flags.has('from')) continue;
    const destination = posix.resolve(workdir, copy.destination);
    for (const source of copy.sources) {
      const path = contextPath(source);
      if (/[*?[]/.test(path)) throw new Error(`line ${copy.line}: wildcard sources are not modelled`);
      const taken = filesTaken(source, context);
      const isFolder = !taken.includes(path);
      const intoFolder = isFolder || copy.destination.endsWith('/') || copy.sources.length > 1;
      for (const file of taken) {
        const target = isFolder ? posix.join(destination, posix.relative(path, file)) : intoFolder ? posix.join(destination, posix.basename(file)) : destination;
        files.set(target, file);
      }
    }
  }
  return { files, commandModules, installsDependencies };
}

/**
 * Module paths a shell script in the image execs: absolute (`exec node /opt/x/main.ts`) or next
 * to the script (`"$(dirname "$0")/../main.ts"`, resolved from where the script is in the image).
 */
export function scriptModules(script: string, scriptPath: string): string[] {
  const absolute = [...script.matchAll(/(?<![\w.)])(\/[\w-][\w./-]*\.(?:ts|mts|js|mjs))\b/g)].map((match) => match[1]!);
  const besideScript = [...script.matchAll(/\$\(dirname "\$0"\)(\/[\w./-]+\.(?:ts|mts|js|mjs))\b/g)].map((match) =>
    posix.resolve(posix.dirname(scriptPath), `.${match[1]!}`),
  );
  return [...new Set([...absolute, ...besideScript])];
}

/**
 * The specifiers a module loads at run time. `import type` and `export type` are erased by type
 * stripping; `import { type X }` is not (the module still loads), so it counts.
 */
export function runtimeImports(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[\s;{}()])\/\/.*$/gm, '$1');
  const specifiers: string[] = [];
  for (const match of code.matchAll(/\b(import|export)(\s+type\b)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g)) {
    if (match[2] === undefined) specifiers.push(match[3]!);
  }
  for (const match of code.matchAll(/\bimport\s*['"]([^'"]+)['"]/g)) specifiers.push(match[1]!);
  for (const match of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(match[1]!);
  return specifiers;
}

/** Files a module starts by path from the project root: `join(PROJECT_ROOT, 'workflows', 'index.ts')`. */
export function projectRootModules(source: string): string[] {
  return [...source.matchAll(/join\(\s*PROJECT_ROOT((?:\s*,\s*'[^']+')+)\s*\)/g)]
    .map((match) => [...match[1]!.matchAll(/'([^']+)'/g)].map((part) => part[1]!).join('/'))
    .filter((path) => MODULE.test(path));
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Follows every run-time import from the entry modules. `problems`: what would fail in the image
 * (a module that is not there, a package it does not install); `loaded`: every module reached.
 */
export function followImports(
  layout: ImageLayout,
  entries: readonly string[],
  installed: ReadonlySet<string>,
  read: (repositoryPath: string) => string,
): { problems: string[]; loaded: Set<string> } {
  const problems: string[] = [];
  const imageRootOfProject = [...layout.files].find(([, file]) => file === 'workers/project-root.ts')?.[0];
  const projectRoot = imageRootOfProject === undefined ? undefined : posix.dirname(posix.dirname(imageRootOfProject));
  const seen = new Set<string>();
  const queue = entries.map((entry) => ({ path: entry, from: 'the image\'s command' }));
  while (queue.length > 0) {
    const { path, from } = queue.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const file = layout.files.get(path);
    if (file === undefined) {
      problems.push(`${path} (loaded by ${from}) is not in the image`);
      continue;
    }
    if (!MODULE.test(path)) continue;
    const source = read(file);
    for (const specifier of runtimeImports(source)) {
      if (specifier.startsWith('.') || specifier.startsWith('/')) queue.push({ path: posix.resolve(posix.dirname(path), specifier), from: path });
      else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier) && !installed.has(packageName(specifier))) {
        problems.push(`${path} imports ${specifier}, which the image does not install`);
      }
    }
    if (projectRoot !== undefined) for (const module of projectRootModules(source)) queue.push({ path: posix.join(projectRoot, module), from: path });
  }
  return { problems, loaded: seen };
}
