/**
 * Inputs the real upstream code would crash on or ignore are refused at validation, naming the
 * field and the upstream reason ("row N" = the table of ../shared/research/upstream-recogdrive.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { buildPlan } from '../../pipeline/plan.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { inputIssues } from '../helpers/input-issues.ts';

const base = { experiment: 'exp-1', artifactRoot: 'file:///tmp/artifacts', paths: { hostRepoDir: '/data/recogdrive' } };
const allFixed = { ...base, upstreamFixes: [...UPSTREAM_FIXES] };
const gcp = { project: 'recogdrive-test' };

const issuesOf = inputIssues;

const refused: Array<{ row: string; input: unknown; field: string; reason: RegExp }> = [
  {
    row: 'row 8: the feature cache crashes on real scenes (3-tuple collate, 2-tuple dataset)',
    input: { ...base, stages: ['featureCache'], providedArtifacts: { stage1: 'file:///tmp/s1' } },
    field: 'stages',
    reason: /featureCache cannot run on the upstream code .*collate unpacks \(features, targets, token\).*dataset\.py:307.*"upstreamFixes": \["feature-cache-real-scenes"\]/,
  },
  {
    row: 'row 2: GRPO cannot run on the torchax trainer (tokens_list=None); the GPU script is what works',
    input: { ...base, stages: ['stage3'], stage3: { trainer: 'torchax' }, providedArtifacts: { featureCache: 'file:///tmp/f', metricCache: 'file:///tmp/m', stage2Export: 'file:///tmp/s2x' } },
    field: 'stage3.trainer',
    reason: /stage3 cannot run .*tokens_list=None.*run_training_recogdrive_torchax\.py:256-261.*What works: the upstream GPU script \(stage3\.trainer "gpu", the default\).*"torchax-grpo"/,
  },
  {
    row: 'row 6: the evaluation is an NCCL torchrun job: as one python process on a TPU VM it fails',
    input: { ...base, stages: ['eval'], eval: { trainer: 'torchax' }, providedArtifacts: { stage3Export: 'file:///tmp/s3x' } },
    field: 'eval.trainer',
    reason: /eval cannot run .*init_process_group\("nccl"\).*run_pdm_score_recogdrive\.py:184-190.*What works: eval\.trainer "gpu".*"eval-without-torchrun"/,
  },
  {
    row: 'the GPU scripts need CUDA GPUs: GRPO on a TPU VM is refused before anything is created',
    input: { ...allFixed, gcp, stage3: { compute: { backend: 'tpu-api', accelerator: 'v6e-8', zones: ['us-east5-b'] } } },
    field: 'stage3.compute',
    reason: /stage3 runs the upstream GPU script \(trainer "gpu"\), which needs CUDA GPUs: a TPU VM has none/,
  },
  {
    row: 'the GPU scripts need CUDA GPUs: a CPU VM has none',
    input: { ...allFixed, gcp, eval: { compute: { backend: 'compute-engine', machineType: 'n2-standard-32', zones: ['us-east5-b'] } } },
    field: 'eval.compute',
    reason: /eval runs the upstream GPU script .*this compute has none \(use a GPU machine type/,
  },
  {
    row: 'the torchax trainer needs TPUs: Stage 2 with trainer "torchax" on a GPU VM',
    input: { ...allFixed, gcp, stage2: { compute: { backend: 'compute-engine', machineType: 'a2-highgpu-1g', zones: ['us-central1-a'] } } },
    field: 'stage2.compute',
    reason: /stage2 runs the torchax trainer .*a2-highgpu-1g is a GPU VM/,
  },
  {
    row: 'row 4: recogdrive_agent.yaml has no grpo_cfg node',
    input: { ...allFixed, stage3: { overrides: { 'agent.grpo_cfg.bc_coeff': 0.1 } } },
    field: 'stage3.overrides.agent.grpo_cfg.bc_coeff',
    reason: /no grpo_cfg node.*Could not override 'agent\.grpo_cfg\.bc_coeff'.*Key 'grpo_cfg' is not in struct/,
  },
  {
    row: 'row 4: default_metric_caching.yaml has no seed',
    input: { ...allFixed, metricCache: { overrides: { seed: 3 } } },
    field: 'metricCache.overrides.seed',
    reason: /default_metric_caching\.yaml has no seed key.*Key 'seed' is not in struct/,
  },
  {
    row: 'row 4: default_run_pdm_score.yaml has no seed',
    input: { ...allFixed, eval: { overrides: { seed: 3 } } },
    field: 'eval.overrides.seed',
    reason: /default_run_pdm_score\.yaml has no seed key/,
  },
  {
    row: 'row 4: worker.threads_per_node exists only in the Ray worker configs',
    input: { ...allFixed, metricCache: { worker: 'single_machine_thread_pool', overrides: { 'worker.threads_per_node': 8 } } },
    field: 'metricCache.overrides.worker.threads_per_node',
    reason: /only the Ray worker configs have threads_per_node.*set metricCache\.maxWorkers/,
  },
  {
    row: 'row 5: the torchax trainer ignores Lightning trainer knobs',
    input: { ...allFixed, stage2: { overrides: { 'trainer.params.precision': 'bf16' } } },
    field: 'stage2.overrides.trainer.params.precision',
    reason: /reads only trainer\.params\.max_epochs.*optax\.adamw.*would change nothing/,
  },
  {
    row: 'row 5: ... on Stage 3 too, when it runs on the torchax trainer',
    input: { ...allFixed, stage3: { trainer: 'torchax', overrides: { 'trainer.params.gradient_clip_val': 0.5 } } },
    field: 'stage3.overrides.trainer.params.gradient_clip_val',
    reason: /reads only trainer\.params\.max_epochs/,
  },
  {
    row: 'trainer.params.devices and num_nodes are set from the compute (torchrun and Lightning must agree)',
    input: { ...allFixed, stage3: { overrides: { 'trainer.params.devices': 4 } } },
    field: 'stage3.overrides.trainer.params.devices',
    reason: /refused: set from the stage's compute .*Lightning raises ValueError when devices × num_nodes is not torchrun's world size/,
  },
  {
    row: 'row 14: agent.cam_type is read by nothing',
    input: { ...allFixed, stage2: { camType: 'multi' } },
    field: 'stage2.camType',
    reason: /cam_type is accepted but read by nothing/,
  },
  {
    row: 'row 14: the caching script hard-codes InternVL whatever vlm_type says',
    input: { ...allFixed, featureCache: { vlmType: 'qwen' } },
    field: 'featureCache.vlmType',
    reason: /always loads InternVLChatModel/,
  },
  {
    row: 'row 14: with cached hidden states the planner never reads vlm_type',
    input: { ...allFixed, eval: { vlmType: 'qwen' } },
    field: 'eval.vlmType',
    reason: /never reads agent\.vlm_type/,
  },
  {
    row: 'row 14: NUPLAN_MAP_VERSION is read by nothing (maps version hard-coded)',
    input: { ...allFixed, paths: { ...allFixed.paths, mapVersion: 'nuplan-maps-v2.0' } },
    field: 'paths.mapVersion',
    reason: /hard-codes map_version="nuplan-maps-v1\.0".*caching\.py:54/,
  },
  {
    row: 'row 14: cache_hidden_state=false builds the VLM on cuda:<rank> (refused with the torchax trainer)',
    input: { ...allFixed, stage2: { cacheHiddenState: false } },
    field: 'stage2.cacheHiddenState',
    reason: /builds the VLM backbone on cuda:<LOCAL_RANK>.*no CUDA on a TPU VM.*or use trainer "gpu"/,
  },
  {
    row: 'the caching script forces num_workers=0',
    input: { ...allFixed, featureCache: { numWorkers: 4 } },
    field: 'featureCache.numWorkers',
    reason: /forces num_workers=0/,
  },
  {
    row: 'the torchax finetune never reads --down_sample_ratio',
    input: { ...allFixed, stage1: { downSampleRatio: 0.25 } },
    field: 'stage1.downSampleRatio',
    reason: /never reads --down_sample_ratio/,
  },
  {
    row: "stage 1's tensorboard_id writes to the fork author's Vertex AI project",
    input: { ...allFixed, stage1: { overrides: { tensorboard_id: 'tb-1' } } },
    field: 'stage1.overrides.tensorboard_id',
    reason: /aiplatform\.init\(project='grhuang-02'/,
  },
  {
    row: 'the caching script seeds nothing',
    input: { ...allFixed, featureCache: { overrides: { seed: 1 } } },
    field: 'featureCache.overrides.seed',
    reason: /never reads cfg\.seed/,
  },
];

for (const { row, input, field, reason } of refused) {
  test(`refused at validation: ${row}`, () => {
    const issues = issuesOf(input);
    const issue = issues.find((i) => i.startsWith(`${field}:`));
    assert.ok(issue !== undefined, `no issue for ${field}: ${JSON.stringify(issues)}`);
    assert.match(issue, reason);
  });
}

test('the same inputs at their upstream values, with the fixes declared, are accepted and the plan says which fix each stage relies on', () => {
  const config = parsePipelineInput({
    ...allFixed,
    stage1: { overrides: { seed: 1, save_steps: 100 } },
    stage2: { camType: 'single', vlmType: 'internvl', overrides: { seed: 7 } },
    metricCache: { overrides: { 'worker.threads_per_node': 8, 'cache.force_feature_computation': true } },
  });
  const plan = buildPlan(config, 'r');
  const notes = (stage: string) => plan.stages.find((s) => s.stage === stage)!.notes.join('\n');
  assert.match(notes('featureCache'), /upstreamFixes declares "feature-cache-real-scenes"/);
  // The default flavours need no fix: Stage 3 and the evaluation run the upstream GPU scripts.
  for (const stage of ['stage2', 'stage2Export', 'stage3', 'stage3Export', 'eval']) assert.doesNotMatch(notes(stage), /upstreamFixes/, stage);
  const torchax = buildPlan(parsePipelineInput({ ...allFixed, stage3: { trainer: 'torchax' }, eval: { trainer: 'torchax' } }), 'r');
  const torchaxNotes = (stage: string) => torchax.stages.find((s) => s.stage === stage)!.notes.join('\n');
  assert.match(torchaxNotes('stage3'), /upstreamFixes declares "torchax-grpo"/);
  assert.match(torchaxNotes('eval'), /upstreamFixes declares "eval-without-torchrun"/);
});

test('every plan note says truthfully what a retry does: trainers start over, the metric cache skips what it wrote', () => {
  const plan = buildPlan(parsePipelineInput(allFixed), 'r');
  const retry = (stage: string) => plan.stages.find((s) => s.stage === stage)!.notes[0]!;
  for (const stage of ['stage1', 'stage2', 'stage3']) assert.match(retry(stage), /^On retry: A new attempt (starts again from the base model|trains from scratch)/, stage);
  for (const stage of ['stage2Export', 'stage3Export']) assert.match(retry(stage), /^On retry: A new attempt converts the checkpoint again/, stage);
  assert.match(retry('featureCache'), /caches every token again/);
  assert.match(retry('metricCache'), /skips every metric_cache\.pkl already written/);
  for (const s of plan.stages) assert.doesNotMatch(s.notes.join(' '), /resumes? from (its|the) (latest|last) checkpoint/, s.stage);
});

test('an override key that does not exist upstream lists the allowed ones; a stage that takes none says so', () => {
  const issue = (raw: unknown, field: string) => issuesOf(raw).find((i) => i.startsWith(`${field}:`));
  assert.match(issue({ ...allFixed, stage2: { overrides: { output_dir: '/x' } } }, 'stage2.overrides.output_dir')!, /^stage2\.overrides\.output_dir: not an allowed override for stage2 \(allowed: seed, trainer\.params\.accumulate_grad_batches, trainer\.params\.gradient_clip_val, trainer\.params\.precision\)$/);
  assert.equal(issue({ ...allFixed, eval: { overrides: { foo: 1 } } }, 'eval.overrides.foo'), 'eval.overrides.foo: not an allowed override for eval (it takes none)');
  // A key only another trainer takes is refused naming the trainer that runs.
  assert.equal(
    issue({ ...allFixed, eval: { trainer: 'torchax' }, stage2: { overrides: { 'trainer.params.precision': 'bf16-mixed' } }, stage3: { overrides: { 'trainer.params.precision': 'bf16-mixed' } } }, 'stage3.overrides.trainer.params.precision'),
    undefined,
  );
});

test('without the upstream checks (replaying runs started before them) an input they refuse still parses', () => {
  const legacy = { ...base, stage3: { overrides: { 'agent.grpo_cfg.bc_coeff': 0.1 } }, metricCache: { overrides: { seed: 3 } } };
  assert.ok(issuesOf(legacy).length >= 3, 'refused by default');
  const config = parsePipelineInput(legacy, { upstreamChecks: false });
  assert.equal(config.stage3.overrides['agent.grpo_cfg.bc_coeff'], 0.1);
});

test('the simulator reproduces exactly the defects the input can declare fixed (one list on each side of the image boundary)', async () => {
  const { KNOWN_DEFECTS } = await import('../../docker/simulator/checkout.ts');
  assert.deepEqual([...KNOWN_DEFECTS], [...UPSTREAM_FIXES]);
});

test('the retired fix torch-loads-orbax (the exports replaced it) is still accepted, so inputs and runs from before keep parsing', () => {
  const config = parsePipelineInput({ ...base, upstreamFixes: ['feature-cache-real-scenes', 'torchax-grpo', 'torch-loads-orbax', 'eval-without-torchrun'] });
  assert.ok(config.upstreamFixes.includes('torch-loads-orbax'));
  assert.ok(issuesOf({ ...base, upstreamFixes: ['torch-loads-everything'] }).some((i) => i.startsWith('upstreamFixes.0:')));
});
