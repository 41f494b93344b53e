/**
 * The `torch-state-dict` output check (pipeline/verify/torch-state-dict.ts) over an in-memory
 * output: the bridge's torch file and manifest as docker/bridge/orbax_to_torch.py writes them pass;
 * each way a conversion can be incomplete or wrong is named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOutputs, type OutputReader } from '../../pipeline/verify/index.ts';
import type { OutputCheck } from '../../pipeline/contracts/types.ts';

function reader(files: Record<string, string>): OutputReader {
  return {
    list: () => Promise.resolve([]),
    readText: (path) => Promise.resolve(files[path]),
    stat: (path) => Promise.resolve(files[path] === undefined ? undefined : { size: Buffer.byteLength(files[path]) }),
  };
}

const CHECK: OutputCheck = { kind: 'torch-state-dict', file: 'bridge/reference.pt', manifest: 'bridge/reference.json', prefix: 'agent.' };

const tensors = {
  'agent.action_head.dit.x_embedder.weight': { shape: [384, 3], dtype: 'float32' },
  'agent.action_head.feature_encoder.bias': { shape: [384], dtype: 'bfloat16' },
  'agent.action_head.norm.num_batches_tracked': { shape: [], dtype: 'int32' },
};

function manifest(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    format: 'recogdrive-orbax-to-torch/1',
    source: { checkpoint: '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt', step: 20 },
    epoch: 1,
    prefix: 'agent.',
    output: '/recogdrive/work_dirs/bridge/reference.pt',
    count: 3,
    bytes: 5380,
    tensors,
    ...overrides,
  });
}

const TORCH_FILE = 'PK\u0003\u0004 a torch zip of 7667 bytes, shortened';

test('a complete conversion passes with its tensor count and file size', async () => {
  const result = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest() }), CHECK);
  assert.deepEqual(result, { problems: [], summary: { bytes: Buffer.byteLength(TORCH_FILE), tensors: 3 } });
});

test('a missing or empty torch file fails', async () => {
  const missing = await checkOutputs(reader({ 'bridge/reference.json': manifest() }), CHECK);
  assert.deepEqual(missing.problems, ['bridge/reference.pt is missing: the bridge wrote no torch file']);
  const empty = await checkOutputs(reader({ 'bridge/reference.pt': '', 'bridge/reference.json': manifest() }), CHECK);
  assert.deepEqual(empty.problems, ['bridge/reference.pt is empty']);
});

test('a missing, unparsable or shapeless manifest fails', async () => {
  const missing = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE }), CHECK);
  assert.deepEqual(missing.problems, ['bridge/reference.json is missing: the bridge did not finish']);
  const truncated = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest().slice(0, 40) }), CHECK);
  assert.match(truncated.problems[0]!, /^bridge\/reference\.json is not a manifest \(/);
  const list = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': '[]' }), CHECK);
  assert.deepEqual(list.problems, ['bridge/reference.json is not a manifest (not a JSON object)']);
  const noTensors = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ tensors: undefined }) }), CHECK);
  assert.deepEqual(noTensors.problems, ['bridge/reference.json has no "tensors" object']);
});

test('an empty tensor list fails', async () => {
  const result = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ tensors: {}, count: 0 }) }), CHECK);
  assert.deepEqual(result.problems, ["bridge/reference.json lists no tensor: the checkpoint's params were empty"]);
  assert.equal(result.summary.tensors, 0);
});

test('keys without the prefix, another prefix, or a wrong count fail', async () => {
  const unprefixed = {
    'agent.action_head.dit.x_embedder.weight': tensors['agent.action_head.dit.x_embedder.weight'],
    'action_head.feature_encoder.bias': tensors['agent.action_head.feature_encoder.bias'],
  };
  const result = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ tensors: unprefixed, count: 2 }) }), CHECK);
  assert.deepEqual(result.problems, ['1 of 2 keys lack the prefix "agent." (e.g. "action_head.feature_encoder.bias"): the GPU scripts would skip them']);

  const other = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ prefix: '' }) }), CHECK);
  assert.deepEqual(other.problems, ['bridge/reference.json was written with prefix "", expected "agent."']);

  const count = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ count: 4 }) }), CHECK);
  assert.deepEqual(count.problems, ['bridge/reference.json says count 4 but lists 3 tensors']);
});

test('an entry without a shape or dtype fails', async () => {
  const broken = { ...tensors, 'agent.action_head.x': { shape: [-1], dtype: 'float32' }, 'agent.action_head.y': { shape: [2] } };
  const result = await checkOutputs(reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ tensors: broken, count: 5 }) }), CHECK);
  assert.deepEqual(result.problems, ['2 manifest entries lack a shape or dtype (e.g. "agent.action_head.x")']);
});

test('an empty prefix accepts any key', async () => {
  const bare = { 'action_head.x': { shape: [1], dtype: 'float32' } };
  const result = await checkOutputs(
    reader({ 'bridge/reference.pt': TORCH_FILE, 'bridge/reference.json': manifest({ tensors: bare, count: 1, prefix: '' }) }),
    { ...CHECK, prefix: '' } as OutputCheck,
  );
  assert.deepEqual(result.problems, []);
});
