/**
 * The repository's Dockerfiles as the image tests read them: where they are, their instructions
 * (continuations, comments and heredocs handled as Docker's parser does), and what each
 * COPY/ADD takes from the build context.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import dockerignore from '@balena/dockerignore';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const run = promisify(execFile);
/**
 * The package's types declare `export default`, its code does `module.exports = factory`: under
 * Node's ESM the default import is the factory itself, which TypeScript types as `.default`.
 */
const ignore = dockerignore as unknown as typeof dockerignore.default;

/** The files a fresh clone has once the working tree is committed: tracked plus new, not git-ignored. */
export async function repositoryFiles(): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: PROJECT_ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  const { stdout: deleted } = await run('git', ['ls-files', '--deleted', '-z'], { cwd: PROJECT_ROOT, maxBuffer: 64 * 1024 * 1024 });
  const gone = new Set(deleted.split('\0'));
  return [...new Set(stdout.split('\0'))].filter((path) => path !== '' && !gone.has(path)).sort();
}

/** `Dockerfile`, `Dockerfile.<x>` and `<x>.Dockerfile`, anywhere in the repository. */
export function isDockerfile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return name === 'Dockerfile' || name.startsWith('Dockerfile.') || name.endsWith('.Dockerfile');
}

export interface Instruction {
  /** Upper-case keyword: FROM, COPY, ... */
  readonly keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

/**
 * Instructions of a Dockerfile. Comment lines end nothing (Docker drops them even inside a
 * continuation); a heredoc body (`RUN <<EOF ... EOF`) is skipped. Only the default escape
 * character is understood: a file that changes it is refused rather than misread.
 */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.split('\n');
  if (lines.some((line) => /^#\s*escape\s*=/i.test(line))) throw new Error('escape directive: not supported by this parser');
  const instructions: Instruction[] = [];
  let index = 0;
  while (index < lines.length) {
    const first = lines[index]!;
    const start = index;
    index += 1;
    if (first.trim() === '' || first.trimStart().startsWith('#')) continue;
    let joined = first;
    while (/\\\s*$/.test(joined) && index < lines.length) {
      const next = lines[index]!;
      index += 1;
      if (next.trimStart().startsWith('#')) continue;
      joined = joined.replace(/\\\s*$/, ' ') + next;
    }
    const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(joined);
    if (match === null) throw new Error(`line ${start + 1}: not an instruction: ${first}`);
    const args = match[2]!.trim();
    instructions.push({ keyword: match[1]!.toUpperCase(), args, line: start + 1 });
    for (const heredoc of args.matchAll(/<<-?(["']?)([A-Za-z_][A-Za-z0-9_]*)\1/g)) {
      const end = heredoc[2]!;
      while (index < lines.length && lines[index]!.trim() !== end) index += 1;
      index += 1;
    }
  }
  return instructions;
}

/** What a COPY or ADD takes: its flags (`--from`, `--chmod`, ...), sources and destination. */
export interface CopyInstruction {
  readonly keyword: 'COPY' | 'ADD';
  readonly line: number;
  readonly flags: ReadonlyMap<string, string>;
  readonly sources: readonly string[];
  readonly destination: string;
}

const KNOWN_COPY_FLAGS = new Set(['from', 'chown', 'chmod', 'link', 'parents', 'exclude', 'checksum', 'keep-git-dir']);

export function copyInstructions(instructions: readonly Instruction[]): CopyInstruction[] {
  return instructions
    .filter((instruction) => instruction.keyword === 'COPY' || instruction.keyword === 'ADD')
    .map((instruction) => {
      const words = instruction.args.split(/\s+/);
      const flags = new Map<string, string>();
      while (words[0]?.startsWith('--')) {
        const [name, value = 'true'] = words.shift()!.slice(2).split(/=(.*)/s);
        if (!KNOWN_COPY_FLAGS.has(name!)) throw new Error(`line ${instruction.line}: unknown ${instruction.keyword} flag --${name}`);
        flags.set(name!, value);
      }
      const rest = words.join(' ');
      const paths = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : words;
      if (paths.length < 2) throw new Error(`line ${instruction.line}: ${instruction.keyword} needs a source and a destination`);
      return {
        keyword: instruction.keyword as 'COPY' | 'ADD',
        line: instruction.line,
        flags,
        sources: paths.slice(0, -1),
        destination: paths[paths.length - 1]!,
      };
    });
}

/** ADD also takes URLs and git repositories: those are not in the build context. */
export function isRemoteSource(source: string): boolean {
  return /^(https?:\/\/|git@|git:\/\/)/.test(source);
}

/** A build-context path as Docker reads a COPY source: relative to the context root, no `./`, no trailing `/`. */
export function contextPath(source: string): string {
  return source.replace(/^(\.?\/)+/, '').replace(/\/+$/, '').replace(/\/\.$/, '');
}

const GLOB = /[*?[]/;

/** Go's filepath.Match, which Docker uses for COPY sources: `*` and `?` never cross a `/`. */
function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const ch = pattern[i]!;
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '[') {
      const close = pattern.indexOf(']', i + 1);
      if (close === -1) throw new Error(`unterminated [ in ${pattern}`);
      source += `[${pattern.slice(i + 1, close)}]`;
      i = close;
    } else source += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * The context files a COPY/ADD source takes (a file, every file under a folder, or what a
 * wildcard matches, a matched folder with all its files). Empty when Docker would fail with
 * "not found" / "no source files".
 */
export function filesTaken(source: string, context: readonly string[]): string[] {
  const path = contextPath(source);
  if (path === '') return [...context];
  if (!GLOB.test(path)) return context.filter((file) => file === path || file.startsWith(`${path}/`));
  const pattern = globToRegExp(path);
  const depth = path.split('/').length;
  return context.filter((file) => {
    const parts = file.split('/');
    return parts.length >= depth && pattern.test(parts.slice(0, depth).join('/'));
  });
}

/**
 * The build context Docker sends for the repository root: the repository's files less what
 * .dockerignore excludes, matched with Docker's rules (@balena/dockerignore is a port of
 * Docker's matcher; git's rules differ: `test` there would also drop docker/x/test/).
 */
export function buildContext(files: readonly string[], dockerignore: string): string[] {
  const patterns = dockerignore
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const rules = ignore().add(patterns);
  return files.filter((file) => !rules.ignores(file));
}

/** `FROM [--platform=...] <image> [AS <name>]`, with the global ARG defaults substituted. */
export interface Stage {
  readonly line: number;
  /** The image as written. */
  readonly written: string;
  /** The image with global ARG defaults substituted. */
  readonly image: string;
  readonly name: string | undefined;
}

export function stages(instructions: readonly Instruction[]): Stage[] {
  const globalArgs = new Map<string, string>();
  const result: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'ARG' && result.length === 0) {
      const [name, value = ''] = instruction.args.split(/=(.*)/s);
      globalArgs.set(name!.trim(), value.trim());
    }
    if (instruction.keyword !== 'FROM') continue;
    const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
    const written = words[0]!;
    const image = written.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => globalArgs.get(name) ?? '');
    result.push({ line: instruction.line, written, image, name: words[1]?.toUpperCase() === 'AS' ? words[2] : undefined });
  }
  return result;
}

/** A `docker build` command documented in a Dockerfile's comments (continuation lines joined). */
export interface DocumentedBuild {
  readonly file: string | undefined;
  readonly context: string | undefined;
  readonly tags: readonly string[];
}

export function documentedBuilds(text: string): DocumentedBuild[] {
  const comments = text
    .split('\n')
    .filter((line) => line.startsWith('#'))
    .map((line) => line.replace(/^#\s?/, ''));
  const commands: string[] = [];
  for (const line of comments) {
    const previous = commands[commands.length - 1];
    if (previous !== undefined && previous.endsWith('\\')) commands[commands.length - 1] = `${previous.slice(0, -1)} ${line.trim()}`;
    else commands.push(line.trim());
  }
  return commands
    .filter((command) => command.startsWith('docker build '))
    .map((command) => {
      const words = command.split(/\s+/).slice(2);
      const valueOf = (flag: string): string[] => words.flatMap((word, i) => (word === flag && words[i + 1] !== undefined ? [words[i + 1]!] : []));
      return { file: valueOf('-f')[0], context: words[words.length - 1], tags: valueOf('-t') };
    });
}

/** COPY/ADD sources of the build context (not `--from` a stage or image, not a URL). */
export function contextSources(instructions: readonly Instruction[]): { line: number; source: string }[] {
  return copyInstructions(instructions)
    .filter((copy) => !copy.flags.has('from'))
    .flatMap((copy) => copy.sources.filter((source) => !(copy.keyword === 'ADD' && isRemoteSource(source))).map((source) => ({ line: copy.line, source })))
    .map(({ line, source }) => {
      if (source.includes('$')) throw new Error(`line ${line}: ${source}: a variable in a source cannot be checked`);
      return { line, source };
    });
}

/** The sources that take nothing from `context`: each is a failed build ("not found"). */
export function missingSources(dockerfile: string, context: readonly string[]): string[] {
  return contextSources(parseDockerfile(dockerfile))
    .filter(({ source }) => filesTaken(source, context).length === 0)
    .map(({ line, source }) => `line ${line}: ${source}`);
}

/** A tag with a full version (`3.11.15-slim-bookworm`) or a digest: the same image on every build. */
export function isPinnedImage(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  if (colon <= lastSlash) return false;
  return /^v?\d+\.\d+\.\d+([-.+_].*)?$/.test(image.slice(colon + 1));
}
