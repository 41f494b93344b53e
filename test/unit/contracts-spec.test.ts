/**
 * The plan for the TPU guide's settings renders the guide's own commands. The guide's text is
 * parsed as a shell would parse it; the differences allowed are each named here:
 *  - typo: the stray space inside cache_path=" /recogdrive/data/cache_output";
 *  - `:$PYTHONPATH` is expanded by the VM host's shell (empty on a fresh VM), so it is dropped;
 *  - `$(pwd)/recogdrive` is the input's paths.hostRepoDir;
 *  - `--rm` becomes `-d --name <container>`: the container must outlive its exit so a restarted
 *    watcher can read the exit code;
 *  - additions: artifact mounts (inputs read-only, the output) and the contract's addedArgs;
 *  - the stage wrapper: the command runs as `recogdrive-stage -- <the guide's command>` with the
 *    wrapper's RECOGDRIVE_STAGE/OUTPUT_DIR/MARKER_DIR/OUTPUT_CHECK env; both are checked exactly,
 *    then stripped (the markers' folder is one more artifact mount, beside the output).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { split } from 'shlex';
import { parsePipelineInput } from '../../pipeline/input.ts';
import { buildPlan } from '../../pipeline/plan.ts';
import { CONTRACTS } from '../../pipeline/contracts/index.ts';
import { defaultHostPath, dockerRunArgs, STAGE_WRAPPER, stageCommand, type LaunchSpec } from '../../pipeline/launch.ts';
import type { StageName } from '../../pipeline/stages.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const FIXTURE = join(PROJECT_ROOT, 'test', 'fixtures', 'spec-commands.md');
const GUIDE = join(PROJECT_ROOT, '..', 'shared', 'spec', 'recogdrive-tpu-guide.md');
const HOST_REPO = '/home/recogdrive/recogdrive';

function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

interface DockerRun {
  flags: string[];
  workdir: string;
  mounts: string[];
  env: string[];
  image: string;
  command: string[];
}

/** The `docker run` of a guide block, parsed like the remote shell parses it. */
function parseGuideCommand(block: string): DockerRun {
  const joined = block.replace(/\\\n/g, ' ');
  const remote = /--command=\\'([\s\S]*)\\'/.exec(joined)?.[1];
  assert.ok(remote, 'guide block has a --command');
  const fixed = remote.replaceAll('\\"', '"').replaceAll('=" /recogdrive', '="/recogdrive');
  const words = split(fixed);
  assert.deepEqual(words.slice(0, 2), ['docker', 'run']);
  return parseDockerRun(words.slice(2), (w) => w.replace(':$PYTHONPATH', '').replace('$(pwd)/recogdrive', HOST_REPO));
}

function parseDockerRun(args: string[], normalize: (word: string) => string = (w) => w): DockerRun {
  const run: DockerRun = { flags: [], workdir: '', mounts: [], env: [], image: '', command: [] };
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (word === '--workdir') run.workdir = args[++i]!;
    else if (word === '-v') run.mounts.push(normalize(args[++i]!));
    else if (word === '-e') run.env.push(normalize(args[++i]!));
    else if (word === '--name') run.flags.push(`--name=${args[++i]}`);
    else if (word.startsWith('-')) run.flags.push(word);
    else {
      run.image = word;
      run.command = args.slice(i + 1);
      break;
    }
  }
  return run;
}

/** The script's argv, unwrapping the guide's `/bin/bash -c "<fixes> && python ..."`. */
function scriptArgv(command: string[]): { fixes: string[]; argv: string[] } {
  if (command[0] !== '/bin/bash') return { fixes: [], argv: command };
  const parts = command[2]!.split(' && ');
  return { fixes: parts.slice(0, -1), argv: split(parts.at(-1)!) };
}

const config = parsePipelineInput(JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'spec-tpu.json'), 'utf8')));
const plan = buildPlan(config, 'spec-run');
const launchOf = (stage: string): LaunchSpec => plan.stages.find((s) => s.stage === stage)!.launch!;

/** The `-e` values the stage wrapper reads, exactly as the launch spec must set them. */
function wrapperEnv(stage: StageName, launch: LaunchSpec): string[] {
  return [
    `RECOGDRIVE_STAGE=${stage}`,
    `RECOGDRIVE_OUTPUT_DIR=${launch.output.containerPath}`,
    `RECOGDRIVE_MARKER_DIR=${launch.markers!.containerPath}`,
    `RECOGDRIVE_OUTPUT_CHECK=${JSON.stringify(CONTRACTS[stage].verification(config).outputs)}`,
  ];
}

for (const [index, stage] of (['stage1', 'featureCache', 'stage2'] as const).entries()) {
  test(`plan for the guide's settings renders the guide's ${stage} command`, () => {
    const guide = parseGuideCommand(codeBlocks(readFileSync(FIXTURE, 'utf8'))[index]!);
    const launch = launchOf(stage);
    const [verb, ...args] = dockerRunArgs(launch, (s) => defaultHostPath(s));
    assert.equal(verb, 'run');
    const ours = parseDockerRun(args);

    assert.deepEqual(
      [...ours.flags].sort(),
      ['-d', `--name=${launch.containerName}`, ...guide.flags.filter((f) => f !== '--rm')].sort(),
      'flags: the guide\'s minus --rm, plus -d --name',
    );
    assert.equal(ours.workdir, guide.workdir);
    assert.deepEqual(ours.mounts[0], guide.mounts[0], 'the repo checkout is mounted as in the guide');
    const artifactMounts = launch.mounts.slice(1).map((m) => m.target);
    assert.equal(ours.mounts.length, guide.mounts.length + artifactMounts.length, 'only artifact mounts are added');
    const isWrapperEnv = (e: string) => e.startsWith('RECOGDRIVE_');
    assert.deepEqual(ours.env.filter(isWrapperEnv), wrapperEnv(stage, launch), 'the stage wrapper\'s env, and nothing else of ours');
    assert.deepEqual(ours.env.filter((e) => !isWrapperEnv(e)), guide.env);
    assert.equal(ours.image, guide.image);

    assert.deepEqual(ours.command.slice(0, STAGE_WRAPPER.length), [...STAGE_WRAPPER], 'the command runs under the stage wrapper');
    const guideScript = scriptArgv(guide.command);
    const ourScript = scriptArgv(stageCommand(ours));
    assert.deepEqual(ourScript.fixes, guideScript.fixes, 'runtime fixes come from the contract');
    const added = launch.addedArgs;
    assert.deepEqual(ourScript.argv.slice(0, ourScript.argv.length - added.length), guideScript.argv);
    assert.deepEqual(ourScript.argv.slice(ourScript.argv.length - added.length), added);
  });
}

test('the vendored guide commands are still verbatim in the guide', { skip: !existsSync(GUIDE) && 'guide not beside the project' }, () => {
  const guide = readFileSync(GUIDE, 'utf8');
  for (const block of codeBlocks(readFileSync(FIXTURE, 'utf8'))) assert.ok(guide.includes(block), 'block drifted from the guide');
});

test('stage 3 runs the upstream GRPO script under torchrun on the GPU VM, from the exported Stage 2 policy, with the metric cache', () => {
  const spec = parsePipelineInput(JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'spec-tpu.json'), 'utf8')));
  const planned = buildPlan(spec, 'spec-run').stages.find((s) => s.stage === 'stage3')!;
  // The plan says which flavour runs and why.
  assert.ok(
    planned.notes.includes('Trainer "gpu": the upstream run_training_recogdrive_rl.py (PyTorch Lightning) under torchrun: GRPO cannot run on the torchax trainer, which passes tokens_list=None (1 machine(s) × 8 GPU(s)).'),
    planned.notes.join('\n'),
  );
  const launch = planned.launch!;
  const argv = launch.command;
  const script = argv.indexOf('navsim/planning/script/run_training_recogdrive_rl.py');
  // a2-highgpu-8g: one machine of 8 A100s; Lightning's devices/num_nodes agree with torchrun.
  assert.deepEqual(argv.slice(script - 4, script), ['torchrun', '--nnodes=1', '--nproc_per_node=8', '--master_port=29500']);
  assert.ok(argv.includes('trainer.params.devices=8') && argv.includes('trainer.params.num_nodes=1'));
  assert.ok(argv.includes('agent.grpo=True'));
  assert.ok(argv.includes('agent.metric_cache_path=/recogdrive/data/metric_cache'));
  assert.ok(argv.includes('agent.reference_policy_checkpoint=/recogdrive/work_dirs/stage2_export/policy.pt'));
  assert.ok(argv.includes('agent.checkpoint_path=/recogdrive/work_dirs/stage2_export/policy.pt'));
  assert.deepEqual(launch.dockerFlags.slice(-3), ['--gpus', 'all', '--shm-size=16g']);
  const byTarget = new Map(launch.mounts.map((m) => [m.target, m]));
  assert.equal(byTarget.get('/recogdrive/data/metric_cache')?.readOnly, true);
  assert.equal(byTarget.get('/recogdrive/data/cache_output')?.readOnly, true);
  assert.equal(byTarget.get('/recogdrive/work_dirs/stage2_export')?.readOnly, true);
  assert.equal(byTarget.get('/recogdrive/work_dirs/stage2_output'), undefined, "Stage 2's own output is not Stage 3's input");
  assert.deepEqual(byTarget.get('/recogdrive/work_dirs/stage2_export')?.source, {
    kind: 'artifact',
    uri: 'gs://my-recogdrive-artifacts/pipeline/runs/spec-run/stage2-export',
  });
});

test("stage2Export converts Stage 2's last orbax epoch with the bridge shipped in the image; the evaluation reads stage3Export's policy.pt", () => {
  const spec = parsePipelineInput(JSON.parse(readFileSync(join(PROJECT_ROOT, 'examples', 'spec-tpu.json'), 'utf8')));
  const stages = buildPlan(spec, 'spec-run').stages;
  const exportArgv = stages.find((s) => s.stage === 'stage2Export')!.launch!.command;
  assert.deepEqual(exportArgv.slice(exportArgv.indexOf('python')), [
    'python', '/opt/recogdrive/bridge/orbax_to_torch.py',
    '--checkpoint', '/recogdrive/work_dirs/stage2_output/checkpoint-epoch-1.pt',
    '--output', '/recogdrive/work_dirs/stage2_export/policy.pt',
    '--manifest', '/recogdrive/work_dirs/stage2_export/policy.json',
    '--prefix', 'agent.',
  ]);
  const evalArgv = stages.find((s) => s.stage === 'eval')!.launch!.command;
  assert.ok(evalArgv.includes('agent.checkpoint_path=/recogdrive/work_dirs/stage3_export/policy.pt'));
  assert.deepEqual(evalArgv.slice(evalArgv.indexOf('torchrun'), evalArgv.indexOf('torchrun') + 4), ['torchrun', '--nnodes=1', '--nproc_per_node=4', '--master_port=29500']);
});

test('every stage runs under the stage wrapper, told its stage, output folder, markers folder beside it and output check', () => {
  const launched = plan.stages.filter((s) => s.launch !== undefined);
  assert.ok(launched.length > 0);
  for (const { stage, launch } of launched) {
    assert.deepEqual(launch!.command.slice(0, 2), ['recogdrive-stage', '--'], stage);
    assert.equal(launch!.env.RECOGDRIVE_STAGE, stage);
    assert.equal(launch!.env.RECOGDRIVE_OUTPUT_DIR, launch!.output.containerPath);
    assert.ok(launch!.mounts.some((m) => m.target === launch!.env.RECOGDRIVE_OUTPUT_DIR && !m.readOnly), `${stage}: the output folder is a writable mount`);
    const markers = launch!.mounts.find((m) => m.target === launch!.env.RECOGDRIVE_MARKER_DIR);
    assert.equal(markers?.readOnly, false, `${stage}: the markers folder is a writable mount`);
    const outputUri = launch!.output.uri;
    assert.deepEqual(markers?.source, { kind: 'artifact', uri: outputUri.replace(/\/([^/]+)$/, '/_recogdrive/$1') }, `${stage}: markers beside the output, not in it`);
    assert.ok(!launch!.mounts.some((m) => m.target.startsWith(`${launch!.output.containerPath}/`)), `${stage}: nothing mounted inside the output folder`);
    assert.deepEqual(JSON.parse(launch!.env.RECOGDRIVE_OUTPUT_CHECK!), CONTRACTS[stage].verification(config).outputs);
    assert.equal(launch!.env.RECOGDRIVE_ATTEMPT, undefined, 'the executor sets the attempt');
  }
});

test('the hydra-core upgrade for caching is part of the feature-cache contract, not a manual step', () => {
  const command = stageCommand(launchOf('featureCache'));
  assert.equal(command[0], '/bin/bash');
  assert.match(command[2]!, /^pip install --upgrade hydra-core==1\.3\.2 omegaconf pytest && python /);
});
