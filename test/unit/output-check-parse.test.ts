/** The stage wrapper reads every output check a contract can render (RECOGDRIVE_OUTPUT_CHECK), whatever the trainer flavour. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOutputCheck } from '../../docker/stage-wrapper/output-check.ts';
import { CONTRACTS } from '../../pipeline/contracts/index.ts';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { STAGES } from '../../pipeline/stages.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';

const base = { experiment: 'exp', artifactRoot: 'gs://bucket-x', paths: { hostRepoDir: '/r' }, upstreamFixes: [...UPSTREAM_FIXES] };

test('every contract output check round-trips through the wrapper parser, for both trainer flavours', () => {
  const configs = [
    parsePipelineInput(base),
    parsePipelineInput({ ...base, stage2: { trainer: 'gpu' }, stage3: { trainer: 'torchax' }, eval: { trainer: 'torchax' } }),
  ];
  const kinds = new Set<string>();
  for (const config of configs) {
    for (const stage of STAGES) {
      const outputs = CONTRACTS[stage].verification(config).outputs;
      kinds.add(outputs.kind);
      assert.deepEqual(parseOutputCheck(JSON.stringify(outputs)), { check: outputs }, stage);
    }
  }
  assert.deepEqual([...kinds].sort(), ['epoch-checkpoints', 'eval-csv', 'final-checkpoint', 'lightning-checkpoints', 'metric-cache', 'token-cache', 'torch-state-dict']);
});

test('a malformed torch-state-dict check is named, not crashed on', () => {
  assert.deepEqual(parseOutputCheck(JSON.stringify({ kind: 'torch-state-dict', file: 'policy.pt', manifest: 'policy.json' })), {
    problem: 'torch-state-dict: "prefix" must be a string (got undefined)',
  });
  assert.match((parseOutputCheck(JSON.stringify({ kind: 'torch-state-dict', file: '../x.pt', manifest: 'policy.json', prefix: 'agent.' })) as { problem: string }).problem, /"file" must be a path relative to the output folder/);
});
