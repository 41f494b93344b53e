/**
 * The janitor on `static` hosts (RECOGDRIVE_STATIC_HOSTS) on the test bed: real sshd and podman
 * per host, a real Temporal server and worker. Stage containers of closed or unknown runs are
 * removed; the container of a running run is kept; a container without our owner label is never
 * touched; a configured host that does not answer is reported as not listed while the others
 * are still cleaned; a container is removed only as listed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { StaticComputeProvider } from '../../activities/compute/static.ts';
import { ATTEMPT_LABEL, OWNER_LABEL, RUN_LABEL, STAGE_LABEL } from '../../activities/execution/docker-cli.ts';
import { loadSshKey } from '../../activities/ssh/credentials.ts';
import { SshPool } from '../../activities/ssh/pool.ts';
import type { JanitorReport } from '../../pipeline/janitor.ts';
import { formatJanitorReport, runJanitorOnce } from '../../workers/janitor-command.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';
import { startTestEnv, waitUntilRunning, type TestEnv } from '../helpers/local-env.ts';
import { testbedInput, testbedWorkerEnv } from '../helpers/testbed-input.ts';
import { testbedSkip } from './requirements.ts';
import { startTestbed, type Testbed } from './testbed.ts';

const skip = testbedSkip();
let bed: Testbed;
let env: TestEnv;
const hostOf = (worker: number) => `${bed.workers[worker]!.user}@${bed.workers[worker]!.address}:${bed.workers[worker]!.port}`;
before(async () => {
  if (skip) return;
  bed = await startTestbed({ workers: 2, dir: join(PROJECT_ROOT, '.data', 'testbed-static-janitor'), images: ['recogdrive-tpu:stage1'] });
  env = await startTestEnv({ env: { ...testbedWorkerEnv(bed), RECOGDRIVE_STATIC_HOSTS: `${hostOf(0)}, ${hostOf(1)}` } });
});
after(async () => {
  await env?.close();
  await bed?.stop();
});

let janitorRuns = 0;
const janitor = (): Promise<JanitorReport> =>
  runJanitorOnce(env.stack.client, { dryRun: false, graceMs: 0, taskQueue: env.stack.taskQueue, workflowId: `static-janitor-${++janitorRuns}` });

/** A stage container left on a worker (created, never started: the janitor does not care which). */
async function plant(worker: number, name: string, labels: Record<string, string>): Promise<string> {
  const args = ['create', '--name', name, ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), bed.images[0]!, 'true'];
  const created = await bed.docker(worker, args);
  assert.equal(created.code, 0, created.stderr);
  return created.stdout.trim();
}
const ours = (run: string, stage = 'stage2') => ({ [OWNER_LABEL]: 'recogdrive', [RUN_LABEL]: run, [STAGE_LABEL]: stage, [ATTEMPT_LABEL]: '1' });

/** Container names on a worker. */
async function namesOn(worker: number): Promise<string[]> {
  const { stdout } = await bed.docker(worker, ['ps', '-a', '--format', '{{.Names}}']);
  return stdout.split('\n').filter((l) => l.trim() !== '').sort();
}
const staticOnly = <T extends { backend: string }>(list: T[]): T[] => list.filter((e) => e.backend === 'static');
const at = (worker: number) => `@${bed.workers[worker]!.address}:${bed.workers[worker]!.port}`;

test('containers of unknown and closed runs are removed, a running run keeps its container, one without our owner label is never touched', { skip }, async () => {
  // A real stage container, started by the executor, of a run that is running.
  const live = await env.start('static-live', testbedInput(env, bed, { stage1: { workers: [0], env: { RECOGDRIVE_SIM_DURATION_MS: '120000' } } }));
  // A run that has completed (on the embedded default).
  const done = await env.start('static-done', env.input({ stages: ['stage1'], durationMs: 100 }));
  await Promise.all([waitUntilRunning(live, 'stage1'), done.result()]);
  try {
    await plant(0, 'rd-static-ghost-stage2', ours('static-ghost'));
    await plant(1, 'rd-static-done-stage2', ours('static-done'));
    await plant(0, 'someone-elses', { [RUN_LABEL]: 'static-ghost', [STAGE_LABEL]: 'stage2' });
    await plant(1, 'not-quite-ours', { [OWNER_LABEL]: 'someone-else', [RUN_LABEL]: 'static-ghost' });

    const report = await janitor();
    assert.deepEqual(report.failed, []);
    assert.equal(report.unlisted, undefined);
    assert.deepEqual(
      staticOnly(report.deleted).map((e) => [e.name, e.outcome, e.reason, e.run, e.stage, e.attempt]).sort(),
      [
        [`rd-static-done-stage2${at(1)}`, 'deleted', 'run static-done completed', 'static-done', 'stage2', '1'],
        [`rd-static-ghost-stage2${at(0)}`, 'deleted', 'run static-ghost unknown to Temporal', 'static-ghost', 'stage2', '1'],
      ],
    );
    // The executor labelled its container with the exact run id, stage and attempt.
    const [kept] = staticOnly(report.kept);
    assert.deepEqual([kept?.name, kept?.reason, kept?.run, kept?.stage, kept?.attempt], [`rd-static-live-stage1${at(0)}`, 'run static-live is running', 'static-live', 'stage1', '1']);
    assert.equal(staticOnly(report.kept).length, 1, 'containers without our owner label are not even listed');
    assert.deepEqual(await namesOn(0), ['rd-static-live-stage1', 'someone-elses']);
    assert.deepEqual(await namesOn(1), ['not-quite-ours']);
    assert.match(formatJanitorReport(report), new RegExp(`\\n {2}deleted {7}rd-static-ghost-stage2${at(0)} \\(static\\) {2}run static-ghost unknown to Temporal\\n`));
    assert.match(formatJanitorReport(report), new RegExp(`\\n {2}kept {10}rd-static-live-stage1${at(0)} \\(static\\) {2}run static-live is running`));
  } finally {
    await live.terminate('test over');
  }
});

test('a configured host that does not answer is reported NOT LISTED, the others are still cleaned; once it answers, its leftovers go too', { skip }, async () => {
  await plant(0, 'rd-static-lost-a-stage2', ours('static-lost-a'));
  await plant(1, 'rd-static-lost-b-stage2', ours('static-lost-b'));
  await bed.stopWorker(1);
  let report: JanitorReport;
  try {
    report = await janitor();
  } finally {
    await bed.startWorker(1);
  }
  // (The terminated run's container of the test before may go too: only ours are looked at.)
  const lost = (list: JanitorReport['deleted']) => staticOnly(list).filter((e) => e.name.startsWith('rd-static-lost-'));
  assert.deepEqual(lost(report.deleted).map((e) => [e.name, e.outcome]), [[`rd-static-lost-a-stage2${at(0)}`, 'deleted']]);
  assert.equal(report.unlisted?.length, 1);
  assert.equal(report.unlisted[0]!.backend, 'static');
  assert.match(report.unlisted[0]!.error, new RegExp(`^1 of 2 static host\\(s\\) not listed: ${hostOf(1)}: `));
  assert.doesNotMatch(report.unlisted[0]!.error, new RegExp(hostOf(0)));
  assert.match(formatJanitorReport(report), /\n {2}NOT LISTED {4}static: 1 of 2 static host\(s\) not listed: /);
  assert.deepEqual(await namesOn(1), ['not-quite-ours', 'rd-static-lost-b-stage2'], 'nothing removed on a host that was not listed');

  const again = await janitor();
  assert.equal(again.unlisted, undefined);
  assert.deepEqual(lost(again.deleted).map((e) => [e.name, e.reason]), [[`rd-static-lost-b-stage2${at(1)}`, 'run static-lost-b unknown to Temporal']]);
  assert.deepEqual(await namesOn(1), ['not-quite-ours']);
});

test('deleteLease removes a container only as listed: a newer one that took its name is left alone', { skip }, async () => {
  const key = await loadSshKey({ RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile });
  const pool = new SshPool({ key: key!, connectDeadlineMs: 5_000, keepaliveIntervalMs: 5_000, maxConnections: 4, maxChannelsPerConnection: 4 });
  const hosts = [0].map((i) => ({ user: bed.workers[i]!.user, address: bed.workers[i]!.address, port: bed.workers[i]!.port }));
  const provider = new StaticComputeProvider(bed.knownHostsFile, { hosts, pool, sudo: true, connectDeadlineMs: 3_000 });
  try {
    const oldId = await plant(0, 'rd-static-renamed-stage2', ours('static-renamed'));
    const [listed] = (await provider.listLeases()).filter((l) => l.labels.run === 'static-renamed');
    assert.deepEqual(listed?.labels, { owner: 'recogdrive', run: 'static-renamed', stage: 'stage2', attempt: '1', container: oldId, host: hostOf(0) });
    assert.ok(Math.abs(Date.parse(listed.createdAt) - Date.now()) < 60_000, `created just now: ${listed.createdAt}`);

    assert.equal((await bed.docker(0, ['rm', '-f', oldId])).code, 0);
    const newId = await plant(0, 'rd-static-renamed-stage2', ours('static-renamed'));
    assert.equal(await provider.deleteLease(listed), false, 'the listed container is gone; the newer one is not it');
    assert.ok((await namesOn(0)).includes('rd-static-renamed-stage2'));

    const [relisted] = (await provider.listLeases()).filter((l) => l.labels.run === 'static-renamed');
    assert.equal(relisted?.labels.container, newId);
    assert.equal(await provider.deleteLease(relisted), true);
    assert.equal(await provider.deleteLease(relisted), false, 'a second delete finds it gone');
    assert.ok(!(await namesOn(0)).includes('rd-static-renamed-stage2'));
    await assert.rejects(provider.deleteLease({ ...relisted, labels: { ...relisted.labels, host: 'root@10.9.9.9:22' } }), /not in RECOGDRIVE_STATIC_HOSTS/);
  } finally {
    pool.close();
  }
});
