/** What the janitor makes of static hosts' containers and of RECOGDRIVE_STATIC_HOSTS, without hosts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContainerLine } from '../../activities/compute/static-janitor.ts';
import { decideLeaks } from '../../pipeline/janitor.ts';
import { configFromEnv } from '../../workers/config.ts';

const HOST = { user: 'root', address: 'tpu-1.lab', port: 2222 };
const ID = 'a'.repeat(64);

test('a Docker inspect line becomes a lease named container@host:port with run, stage, attempt, owner, container id and host', () => {
  const lease = parseContainerLine(`${ID}|/rd-exp-1-stage2|2026-11-25T04:33:07.123456789Z|recogdrive|Exp.1:b_2|stage2|3`, HOST);
  assert.deepEqual(lease, {
    name: 'rd-exp-1-stage2@tpu-1.lab:2222',
    backend: 'static',
    labels: { container: ID, host: 'root@tpu-1.lab:2222', owner: 'recogdrive', run: 'Exp.1:b_2', stage: 'stage2', attempt: '3' },
    createdAt: '2026-11-25T04:33:07.123Z',
  });
});

test("Podman's name without a slash and Go time layout are read the same", () => {
  const lease = parseContainerLine(`${ID}|rd-exp-1-stage2|2026-11-25 04:33:07.5 +0000 UTC|recogdrive|exp-1|stage2|1`, HOST);
  assert.equal(lease?.name, 'rd-exp-1-stage2@tpu-1.lab:2222');
  assert.equal(lease?.createdAt, '2026-11-25T04:33:07.500Z');
});

test('a container with a | in a label keeps only its id and host, so the janitor keeps it; a line that is not a container is skipped', () => {
  const lease = parseContainerLine(`${ID}|rd-x|2026-11-25T04:33:07Z|recogdrive|run|with|bar|stage2|1`, HOST);
  assert.deepEqual(lease?.labels, { container: ID, host: 'root@tpu-1.lab:2222' });
  assert.equal(decideLeaks([lease!], {}, Date.now(), 0)[0]?.action, 'keep');
  assert.equal(parseContainerLine('Error: no such object', HOST), undefined);
  assert.equal(parseContainerLine('', HOST), undefined);
});

test('a container without a run label, or with an unreadable creation time, is kept', () => {
  const noRun = parseContainerLine(`${ID}|rd-x|2026-11-25T04:33:07Z|recogdrive||stage2|1`, HOST)!;
  const oddTime = parseContainerLine(`${ID}|rd-y|yesterday|recogdrive|gone-run|stage2|1`, HOST)!;
  assert.equal(oddTime.createdAt, 'yesterday');
  const decisions = decideLeaks([noRun, oddTime], { 'gone-run': { state: 'unknown' } }, Date.now(), 0);
  assert.deepEqual(decisions.map((d) => [d.action, d.reason]), [
    ['keep', 'no run label: whose it is cannot be told'],
    ['keep', 'creation time "yesterday" is unreadable'],
  ]);
});

test('RECOGDRIVE_STATIC_HOSTS: user@host[:port], port 22 by default, empty by default; anything else is refused naming the setting', () => {
  assert.deepEqual(configFromEnv({}).RECOGDRIVE_STATIC_HOSTS, []);
  assert.deepEqual(configFromEnv({ RECOGDRIVE_STATIC_HOSTS: 'root@10.0.0.5, ubuntu@tpu-1.lab:2222,' }).RECOGDRIVE_STATIC_HOSTS, [
    { user: 'root', address: '10.0.0.5', port: 22 },
    { user: 'ubuntu', address: 'tpu-1.lab', port: 2222 },
  ]);
  for (const bad of ['10.0.0.5', 'root@', 'root@host:0', 'root@host:70000', 'root@host;rm -rf /', 'Root@host', 'root@host:22:1', 'root@h1,ubuntu@h1:22']) {
    assert.throws(() => configFromEnv({ RECOGDRIVE_STATIC_HOSTS: bad }), /RECOGDRIVE_STATIC_HOSTS/, bad);
  }
});
