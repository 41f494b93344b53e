/**
 * The stage wrapper (docker/stage-wrapper/) as a real process around a real command
 * (`node docker/stage-wrapper/main.ts -- sh -c '...'`) writing into a temporary output folder
 * `<tmp>/out`, its markers beside it in `<tmp>/_recogdrive/out`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutputCheck } from '../../pipeline/contracts/types.ts';
import type { DoneMarker, FailedMarker, ProgressMarker } from '../../pipeline/markers.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const NODE = join(PROJECT_ROOT, 'node_modules', '.bin', 'node');
const MAIN = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'main.ts');
const SHIM = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'bin', 'recogdrive-stage');
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

const TOKEN_CACHE: OutputCheck = { kind: 'token-cache', files: ['internvl_feature.gz', 'trajectory_target.gz'], expectedTokens: 4 };

/** A feature-cache layout: 2 logs x 2 tokens, each with both builder files (sizes differ per file). */
const WRITE_TOKEN_CACHE = `
for log in log-b log-a; do for token in t2 t1; do
  mkdir -p "$RECOGDRIVE_OUTPUT_DIR/$log/$token"
  printf '%s' "$log/$token feature" > "$RECOGDRIVE_OUTPUT_DIR/$log/$token/internvl_feature.gz"
  printf '%s' "$log/$token target!" > "$RECOGDRIVE_OUTPUT_DIR/$log/$token/trajectory_target.gz"
done; done
printf 'caching 4 tokens\\n'
printf 'warning on stderr\\n' >&2
printf 'Caching Complete.'`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  pid: number;
  /** Resolves when stdout has printed `text`. */
  printed(text: string): Promise<void>;
  done: Promise<Run>;
}

/** The markers' folder beside an output folder made by withOutputDir. */
function markersOf(outputDir: string): string {
  return join(outputDir, '..', '_recogdrive', 'out');
}

function wrapperEnv(outputDir: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    RECOGDRIVE_STAGE: 'featureCache',
    RECOGDRIVE_ATTEMPT: '1',
    RECOGDRIVE_OUTPUT_DIR: outputDir,
    RECOGDRIVE_MARKER_DIR: markersOf(outputDir),
    RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(TOKEN_CACHE),
    ...extra,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function start(argv: string[], env: Record<string, string>, program: string[] = [NODE, MAIN]): Started {
  const child = spawn(program[0]!, [...program.slice(1), ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const w of waiters) if (stdout.includes(w.text)) w.resolve();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    pid: child.pid!,
    printed: (text) => new Promise<void>((resolve) => (stdout.includes(text) ? resolve() : waiters.push({ text, resolve }))),
    done,
  };
}

function wrapper(script: string, env: Record<string, string>): Promise<Run> {
  return start(['--', 'sh', '-c', script], env).done;
}

async function withOutputDir(use: (dir: string) => Promise<void>): Promise<void> {
  const parent = await mkdtemp(join(tmpdir(), 'rd-wrapper-'));
  const dir = join(parent, 'out');
  await mkdir(dir);
  try {
    await use(dir);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('exit 0 writes DONE.json whose manifest counts, bytes and digest match MANIFEST.tsv, with the contract check run on the outputs', async () => {
  await withOutputDir(async (dir) => {
    const run = await wrapper(WRITE_TOKEN_CACHE, wrapperEnv(dir));
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'caching 4 tokens\nCaching Complete.', 'stdout passes through byte for byte');
    assert.equal(run.stderr, 'warning on stderr\n', 'stderr passes through, and the wrapper adds nothing on success');

    const manifest = await readFile(join(markersOf(dir), 'MANIFEST.tsv'));
    const expected = ['log-a', 'log-b']
      .flatMap((log) => ['t1', 't2'].flatMap((token) => [
        `${log}/${token}/internvl_feature.gz\t${`${log}/${token} feature`.length}`,
        `${log}/${token}/trajectory_target.gz\t${`${log}/${token} target!`.length}`,
      ]))
      .map((line) => `${line}\n`)
      .join('');
    assert.equal(manifest.toString('utf8'), expected, 'every output file, sorted by path');
    assert.deepEqual((await readdir(dir)).sort(), ['log-a', 'log-b'], 'nothing but the outputs in the output folder (upstream readers iterate it)');

    const done = await readJson<DoneMarker>(join(markersOf(dir), 'DONE.json'));
    assert.deepEqual(done.manifest, {
      files: 8,
      bytes: expected.split('\n').filter(Boolean).reduce((sum, line) => sum + Number(line.split('\t')[1]), 0),
      digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
      list: 'MANIFEST.tsv',
    });
    assert.deepEqual(done.check, { spec: TOKEN_CACHE, problems: [], summary: { tokens: 4, incompleteTokens: 0 } });
    assert.equal(done.schema, 1);
    assert.equal(done.stage, 'featureCache');
    assert.equal(done.attempt, 1);
    assert.equal(done.worker, 0);
    assert.equal(done.exitCode, 0);
    assert.ok(Date.parse(done.startedAt) <= Date.parse(done.finishedAt));
    assert.equal(existsSync(join(markersOf(dir), 'attempt-1', 'FAILED.json')), false);
  });
});

test('a check that finds problems is recorded in DONE.json, and the exit code stays the command\'s 0', async () => {
  await withOutputDir(async (dir) => {
    const run = await wrapper(`${WRITE_TOKEN_CACHE}; rm "$RECOGDRIVE_OUTPUT_DIR/log-a/t1/trajectory_target.gz"`, wrapperEnv(dir));
    assert.equal(run.code, 0);
    const done = await readJson<DoneMarker>(join(markersOf(dir), 'DONE.json'));
    assert.deepEqual(done.check.summary, { tokens: 3, incompleteTokens: 1 });
    assert.match(done.check.problems.join('\n'), /log-a\/t1 lacks trajectory_target\.gz/);
    assert.match(done.check.problems.join('\n'), /cached 3 complete tokens, expected 4/);
    assert.equal(done.manifest.files, 7);
  });
});

test('a second run on the same output leaves the first DONE.json and MANIFEST.tsv byte-identical and says a verdict exists', async () => {
  await withOutputDir(async (dir) => {
    assert.equal((await wrapper(WRITE_TOKEN_CACHE, wrapperEnv(dir))).code, 0);
    const first = { done: await readFile(join(markersOf(dir), 'DONE.json')), manifest: await readFile(join(markersOf(dir), 'MANIFEST.tsv')) };
    const again = await wrapper(`echo more > "$RECOGDRIVE_OUTPUT_DIR/extra.txt"`, wrapperEnv(dir, { RECOGDRIVE_ATTEMPT: '2' }));
    assert.equal(again.code, 0);
    assert.deepEqual(await readFile(join(markersOf(dir), 'DONE.json')), first.done);
    assert.deepEqual(await readFile(join(markersOf(dir), 'MANIFEST.tsv')), first.manifest);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
    assert.match(again.stderr, /verdict already exists/);
  });
});

test('exit 3 writes FAILED.json with exit code 3 and the last 50 lines, no DONE.json, and the wrapper exits 3', async () => {
  await withOutputDir(async (dir) => {
    const run = await wrapper('i=1; while [ $i -le 60 ]; do echo "line $i"; i=$((i+1)); done; echo "Traceback: boom" >&2; exit 3', wrapperEnv(dir));
    assert.equal(run.code, 3);
    const failed = await readJson<FailedMarker>(join(markersOf(dir), 'attempt-1', 'FAILED.json'));
    assert.equal(failed.exitCode, 3);
    assert.equal(failed.signal, null);
    assert.equal(failed.writer, 'wrapper');
    assert.equal(failed.stage, 'featureCache');
    assert.equal(failed.attempt, 1);
    assert.equal(failed.lastLines.length, 50);
    assert.deepEqual(failed.lastLines.slice(-2), ['line 60', 'Traceback: boom']);
    assert.equal(failed.lastLines[0], 'line 12');
    assert.equal(existsSync(join(markersOf(dir), 'DONE.json')), false);
    assert.equal(existsSync(join(markersOf(dir), 'MANIFEST.tsv')), false);
  });
});

test('SIGTERM to the wrapper reaches the command (whose own exit code 143 is kept) and FAILED.json records it', async () => {
  await withOutputDir(async (dir) => {
    const started = start(['--', 'sh', '-c', 'trap \'echo "command got TERM"; exit 143\' TERM; echo ready; while :; do sleep 0.05; done'], wrapperEnv(dir));
    await started.printed('ready');
    process.kill(started.pid, 'SIGTERM');
    const run = await started.done;
    assert.equal(run.code, 143);
    assert.match(run.stdout, /command got TERM/);
    const failed = await readJson<FailedMarker>(join(markersOf(dir), 'attempt-1', 'FAILED.json'));
    assert.equal(failed.exitCode, 143);
    // (sh may report its killed `sleep` as "Terminated" in between.)
    assert.deepEqual([failed.lastLines[0], failed.lastLines.at(-1)], ['ready', 'command got TERM']);
  });
});

test('a command killed by a signal makes the wrapper exit 128+n: SIGTERM forwarded to its group -> 143, SIGKILL (OOM kill) -> 137', async () => {
  await withOutputDir(async (dir) => {
    // `exec sleep`: the signal goes to the whole process group, so it reaches sleep, not only sh.
    const started = start(['--', 'sh', '-c', 'echo ready; exec sleep 30'], wrapperEnv(dir));
    await started.printed('ready');
    process.kill(started.pid, 'SIGTERM');
    const run = await started.done;
    assert.equal(run.code, 143);
    const failed = await readJson<FailedMarker>(join(markersOf(dir), 'attempt-1', 'FAILED.json'));
    assert.deepEqual([failed.exitCode, failed.signal], [null, 'SIGTERM']);

    const oom = await wrapper('kill -KILL $$', wrapperEnv(dir, { RECOGDRIVE_ATTEMPT: '2' }));
    assert.equal(oom.code, 137);
    assert.equal((await readJson<FailedMarker>(join(markersOf(dir), 'attempt-2', 'FAILED.json'))).signal, 'SIGKILL');
  });
});

test('progress.json appears while the command runs and is refreshed on the interval', async () => {
  await withOutputDir(async (dir) => {
    const release = join(dir, 'release');
    const started = start(
      ['--', 'sh', '-c', `echo "step 1 loss 0.5"; echo; while [ ! -e ${release} ]; do sleep 0.05; done; echo "step 2"`],
      wrapperEnv(dir, { RECOGDRIVE_PROGRESS_INTERVAL_MS: '100' }),
    );
    const path = join(markersOf(dir), 'attempt-1', 'progress.json');
    const read = () => readFile(path, 'utf8').then((t) => JSON.parse(t) as ProgressMarker, () => undefined);
    const first = await until(async () => ((await read())?.lines === 2 ? read() : undefined), 'progress.json with 2 lines');
    assert.equal(first.schema, 1);
    assert.equal(first.stage, 'featureCache');
    assert.equal(first.attempt, 1);
    assert.equal(first.worker, 0);
    assert.equal(first.lastLine, 'step 1 loss 0.5', 'the last non-empty line');
    const later = await until(async () => {
      const p = await read();
      return p !== undefined && p.updatedAt !== first.updatedAt ? p : undefined;
    }, 'a refreshed progress.json');
    assert.equal(later.startedAt, first.startedAt);
    assert.equal(existsSync(join(markersOf(dir), 'DONE.json')), false, 'no verdict while running');
    assert.deepEqual((await readdir(join(markersOf(dir), 'attempt-1'))), ['progress.json'], 'no temporary file left beside it');

    await writeFile(release, '');
    const run = await started.done;
    assert.equal(run.code, 0);
    assert.ok(existsSync(join(markersOf(dir), 'DONE.json')));
  });
});

test('worker 1 writes no markers, on success or failure, and still exits with the command\'s code', async () => {
  await withOutputDir(async (dir) => {
    const env = wrapperEnv(dir, { RECOGDRIVE_WORKER: '1', RECOGDRIVE_PROGRESS_INTERVAL_MS: '10' });
    assert.equal((await wrapper(`${WRITE_TOKEN_CACHE}; sleep 0.1`, env)).code, 0);
    assert.equal((await wrapper('sleep 0.1; exit 5', env)).code, 5);
    assert.deepEqual((await readdir(dir)).sort(), ['log-a', 'log-b']);
    assert.equal(existsSync(markersOf(dir)), false, 'no markers folder either');
  });
});

test('a missing or invalid environment exits 2 naming each problem, and the command never runs', async () => {
  await withOutputDir(async (dir) => {
    const ran = join(dir, 'ran');
    const missing = await wrapper(`touch ${ran}`, wrapperEnv(dir, { RECOGDRIVE_STAGE: undefined, RECOGDRIVE_OUTPUT_CHECK: undefined }));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /RECOGDRIVE_STAGE is not set/);
    assert.match(missing.stderr, /RECOGDRIVE_OUTPUT_CHECK is not set/);

    const invalid = await wrapper(`touch ${ran}`, wrapperEnv(dir, { RECOGDRIVE_ATTEMPT: 'one', RECOGDRIVE_OUTPUT_CHECK: '{"kind":"token-cache"}', RECOGDRIVE_OUTPUT_DIR: 'relative' }));
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /RECOGDRIVE_ATTEMPT must be an integer >= 1/);
    assert.match(invalid.stderr, /RECOGDRIVE_OUTPUT_CHECK token-cache: "files" must be a non-empty list/);
    assert.match(invalid.stderr, /RECOGDRIVE_OUTPUT_DIR must be an absolute path/);

    const usage = start([`touch ${ran}`], wrapperEnv(dir));
    assert.equal((await usage.done).code, 2, 'no "--" before the command');
    assert.equal(existsSync(ran), false, 'the command did not run');
    assert.deepEqual(await readdir(join(dir, '..')), ['out'], 'and nothing was written');
    assert.deepEqual(await readdir(dir), []);
  });
});

test('a command that cannot be started exits 127 and is recorded as failed with the reason', async () => {
  await withOutputDir(async (dir) => {
    const run = await start(['--', 'no-such-command-here'], wrapperEnv(dir)).done;
    assert.equal(run.code, 127);
    const failed = await readJson<FailedMarker>(join(markersOf(dir), 'attempt-1', 'FAILED.json'));
    assert.equal(failed.exitCode, 127);
    assert.match(failed.reason ?? '', /cannot run no-such-command-here/);
  });
});

test('the bin/recogdrive-stage shim runs the wrapper under busybox sh, with node from RECOGDRIVE_WRAPPER_NODE', { skip: BUSYBOX === undefined && 'no busybox' }, async () => {
  await withOutputDir(async (dir) => {
    const env = { ...wrapperEnv(dir), PATH: '/usr/bin:/bin', RECOGDRIVE_WRAPPER_NODE: NODE };
    const run = await start(['--', 'sh', '-c', WRITE_TOKEN_CACHE], env, [BUSYBOX!, 'sh', SHIM]).done;
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await readJson<DoneMarker>(join(markersOf(dir), 'DONE.json'))).check.summary.tokens, 4);
  });
});
