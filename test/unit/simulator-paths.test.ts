/** The simulator's mount table and hydra override parsing, in process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MountTable } from '../../docker/simulator/paths.ts';
import { HydraConfig, parseOverride, parseValue, type ConfigSchema } from '../../docker/simulator/hydra-config.ts';
import { PythonError } from '../../docker/simulator/errors.ts';

const table = new MountTable(
  [
    { target: '/recogdrive', source: '/host/repo', readOnly: false },
    { target: '/recogdrive/data/cache_output', source: '/host/art/cache', readOnly: true },
    { target: '/recogdrive/data/cache', source: '/host/art/other', readOnly: false },
  ],
  '/recogdrive',
);

test('the longest mount target wins', () => {
  assert.deepEqual(table.locate('/recogdrive/data/cache_output/log/token'), { host: '/host/art/cache/log/token', readOnly: true });
  assert.deepEqual(table.locate('/recogdrive/data/cache_output'), { host: '/host/art/cache', readOnly: true });
});

test('mount targets match on path-segment boundaries only', () => {
  assert.deepEqual(table.locate('/recogdrive/data/cache_outputs/x'), { host: '/host/repo/data/cache_outputs/x', readOnly: false });
  assert.deepEqual(table.locate('/recogdrive/data/cache/x'), { host: '/host/art/other/x', readOnly: false });
});

test('relative paths are relative to the workdir and paths are normalized', () => {
  assert.deepEqual(table.locate('work_dirs/out'), { host: '/host/repo/work_dirs/out', readOnly: false });
  assert.deepEqual(table.locate('/recogdrive/data/cache_output/../x'), { host: '/host/repo/data/x', readOnly: false });
  assert.equal(table.absolute('models/InternVL3-2B/'), '/recogdrive/models/InternVL3-2B');
});

test('a path outside every mount has no host location; without a table paths are used as they are', () => {
  assert.equal(table.locate('/tmp/x'), undefined);
  assert.deepEqual(new MountTable(undefined, '/work').locate('a/b'), { host: '/work/a/b', readOnly: false });
});

test('hydra values: quotes stripped, lists, booleans, numbers, bare strings trimmed', () => {
  assert.equal(parseValue("'/recogdrive/a=b'"), '/recogdrive/a=b');
  assert.equal(parseValue(' /recogdrive/data/cache_output'), '/recogdrive/data/cache_output');
  assert.deepEqual(parseValue('[]'), []);
  assert.deepEqual(parseValue("[a, 'b,c']"), ['a', 'b,c']);
  assert.equal(parseValue('True'), true);
  assert.equal(parseValue('1e-4'), 1e-4);
  assert.equal(parseValue('null'), null);
  assert.deepEqual(parseOverride('+is_dummy_run=True'), { op: 'append', key: 'is_dummy_run', value: true, text: 'is_dummy_run=True' });
});

test('hydra composition from the upstream data: overrides, group options, mandatory values, unknown keys', () => {
  const schema: ConfigSchema = { primary: 'default_training', name: 'default_training' };
  const cfg = HydraConfig.compose(schema, ['agent=recogdrive_agent', 'train_test_split=navtrain', 'experiment_name=x', 'agent.lr=1e-5', '+extra=1'], {});
  assert.equal(cfg.group('agent'), 'recogdrive_agent');
  assert.equal(cfg.int('trainer.params.max_epochs'), 100);
  assert.equal(cfg.get('agent.lr'), 1e-5);
  assert.equal(cfg.get('extra'), 1);
  const failure = (args: string[]) => {
    try {
      HydraConfig.compose(schema, args, {});
    } catch (error) {
      assert.ok(error instanceof PythonError);
      return `${error.type}: ${error.message}`;
    }
    return assert.fail('composed');
  };
  assert.match(failure(['experiment_name=x']), /You must specify 'train_test_split'/);
  assert.match(failure(['train_test_split=navtrain', 'nope=1']), /Could not override 'nope'/);
  assert.match(failure(['train_test_split=navtrain', 'agent=c']), /Could not find 'agent\/c'/);
  assert.match(failure(['train_test_split=navtrain', 'experiment_name=x', '+seed=1']), /An item is already at 'seed'/);
});
