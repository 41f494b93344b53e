/**
 * Running the stage simulator (docker/simulator/) as a real subprocess the way the local backend
 * runs it: container paths translated through a mount table (a seeded checkout at /recogdrive, one
 * artifact folder per stage), and the stage commands of the orchestrator's plan, scaled down.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const SIM_MAIN = path.join(ROOT, 'docker/simulator/main.ts');
const SHIMS = path.join(ROOT, 'docker/simulator/shims');
const WRAPPER = path.join(ROOT, 'docker/stage-wrapper/main.ts');
export const REPO = '/recogdrive';

export interface Mount {
  target: string;
  source: string;
  readOnly: boolean;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A scratch folder with a seeded checkout (`repoDir`) and artifact folders beside it. */
export class SimulatorBed {
  readonly tmp: string;
  readonly repoDir: string;

  constructor(prefix = 'recogdrive-sim-test-') {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.repoDir = path.join(this.tmp, 'repo');
  }

  artifact(name: string): string {
    return path.join(this.tmp, 'artifacts', name);
  }

  /** Seeds the checkout: `fixes` as the seed's --fixes (all, none, or a list). */
  async seed(fixes = 'all', extra: string[] = []): Promise<Result> {
    return sim(['seed', '--dir', this.repoDir, '--fixes', fixes, ...extra], this.env([]));
  }

  /** The repo mount plus the stage's artifact mounts: [container path, artifact name, read-only]. */
  mounts(...artifacts: [target: string, name: string, readOnly?: boolean][]): Mount[] {
    return [
      { target: REPO, source: this.repoDir, readOnly: false },
      ...artifacts.map(([target, name, readOnly = false]) => ({ target, source: this.artifact(name), readOnly })),
    ];
  }

  /** The environment a stage container gets (navsimEnv of the contracts) plus the simulator's controls. */
  env(mountTable: Mount[], extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: `${SHIMS}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      RECOGDRIVE_SIM_MOUNTS: JSON.stringify(mountTable),
      RECOGDRIVE_SIM_WORKDIR: REPO,
      RECOGDRIVE_SIM_DURATION_MS: '50',
      RECOGDRIVE_SIM_STATE_DIR: fs.mkdtempSync(path.join(this.tmp, 'state-')),
      RECOGDRIVE_SIM_NODE: process.execPath,
      RECOGDRIVE_SIM_MAIN: SIM_MAIN,
      PYTHONPATH: `${REPO}:${REPO}/internvl_chat`,
      NAVSIM_EXP_ROOT: `${REPO}/tests/work_dirs`,
      OPENSCENE_DATA_ROOT: `${REPO}/tests/dummy_data`,
      NUPLAN_MAPS_ROOT: `${REPO}/tests/dummy_maps`,
      NUPLAN_MAP_VERSION: 'nuplan-maps-v1.0',
      HYDRA_FULL_ERROR: '1',
      ...extra,
    };
  }

  remove(): void {
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

export function spawnResult(command: string, args: string[], env: NodeJS.ProcessEnv): { done: Promise<Result>; pid: number } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { done, pid: child.pid ?? -1 };
}

/** `node main.ts <argv>`. */
export function sim(argv: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return spawnResult(process.execPath, [SIM_MAIN, ...argv], env).done;
}

/** A command line through a shell, as a container's `/bin/bash -c ...` (the shims come first on PATH). */
export function shell(commandLine: string, env: NodeJS.ProcessEnv, shellPath = '/bin/bash'): Promise<Result> {
  return spawnResult(shellPath, ['-c', commandLine], env).done;
}

/** The stage wrapper around `python <argv>` of the simulator: markers go to `markerDir`, beside the output. */
export function wrapped(argv: string[], env: NodeJS.ProcessEnv, wrapper: { outputDir: string; markerDir: string; outputCheck: unknown }): Promise<Result> {
  return spawnResult(process.execPath, [WRAPPER, '--', process.execPath, SIM_MAIN, 'python', ...argv], {
    ...env,
    RECOGDRIVE_STAGE: 'featureCache',
    RECOGDRIVE_ATTEMPT: '1',
    RECOGDRIVE_OUTPUT_DIR: wrapper.outputDir,
    RECOGDRIVE_MARKER_DIR: wrapper.markerDir,
    RECOGDRIVE_OUTPUT_CHECK: JSON.stringify(wrapper.outputCheck),
  }).done;
}

export function assertExit(result: Result, code: number): void {
  assert.equal(result.code, code, `exit ${result.code} (signal ${result.signal})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

export function lastLine(text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? '';
}

export function list(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

/** Every `<log>/<token>/` folder of a cache dir, with its file names. */
export function cacheTokens(dir: string): Map<string, string[]> {
  const tokens = new Map<string, string[]>();
  for (const log of list(dir)) {
    if (log === 'metadata' || !fs.statSync(path.join(dir, log)).isDirectory()) continue;
    for (const token of list(path.join(dir, log))) tokens.set(token, list(path.join(dir, log, token)));
  }
  return tokens;
}

/** Paths of every file called `name` below `dir`. */
export function filesNamed(dir: string, name: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => path.basename(p) === name);
}

export function checkpointMetadata(dir: string): { commit_timestamp_nsecs: number | null } {
  return JSON.parse(fs.readFileSync(path.join(dir, '_CHECKPOINT_METADATA'), 'utf8')) as { commit_timestamp_nsecs: number | null };
}

export function csvRows(file: string): string[][] {
  return fs
    .readFileSync(file, 'utf8')
    .trimEnd()
    .split('\n')
    .map((line) => line.split(','));
}

/** The message of a log line, whatever logging prefix it carries (hydra's, nuplan's, Stage 1's). */
export function messages(stdout: string): string[] {
  return stdout.split('\n').map((line) => line.replace(/^\[[^\]]+\]\[[^\]]+\]\[[A-Z]+\] - /, '').replace(/^\S+ \S+ [A-Z]+ +\{[^}]+\} {2}/, '').replace(/^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}:\d{2} - [A-Z]+ - \S+ - /, ''));
}

// ---- the stage commands of the orchestrator's plan (pipeline/contracts), scaled down ----

export const STAGE1_SCRIPT = 'internvl_chat/internvl/train/internvl_chat_finetune_torchax.py';
export const STAGE1_ARGS = [
  '--model_name_or_path', 'models/InternVL3-2B', '--conv_style', 'internvl2_5',
  '--output_dir', 'work_dirs/stage1_output', '--meta_path', 'data/meta.json',
  '--force_image_size', '448', '--max_dynamic_patch', '1', '--down_sample_ratio', '0.5', '--bf16', 'True',
  '--num_train_epochs', '1', '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '1',
  '--learning_rate', '4e-5', '--weight_decay', '0.05', '--warmup_ratio', '0.0', '--logging_steps', '1',
  '--max_seq_length', '2048', '--do_train', 'True', '--grad_checkpoint', 'False', '--group_by_length', 'False',
  '--dynamic_image_size', 'False', '--use_thumbnail', 'False', '--ps_version', 'v2', '--save_steps', '4',
];

export const FEATURE_CACHE =
  'python navsim/planning/script/run_caching_recogdrive_torchax.py agent=recogdrive_agent ' +
  "agent.vlm_path=models/InternVL3-2B agent.vlm_type=internvl train_test_split=navtrain 'train_logs=[]' " +
  'cache_path=/recogdrive/data/cache_output experiment_name=caching_job ' +
  'dataloader.params.batch_size=4 dataloader.params.num_workers=0';
export const FEATURE_CACHE_SCRIPT = 'navsim/planning/script/run_caching_recogdrive_torchax.py';
/** The feature cache's args: `train_logs=[]` keeps navtrain's own logs, validation logs included. */
export const FEATURE_CACHE_ARGS = [
  'agent=recogdrive_agent', 'agent.vlm_path=models/InternVL3-2B', 'agent.vlm_type=internvl', 'train_test_split=navtrain', 'train_logs=[]',
  'cache_path=/recogdrive/data/cache_output', 'experiment_name=caching_job', 'dataloader.params.batch_size=4', 'dataloader.params.num_workers=0',
];
export const PIP_FIX = 'pip install --upgrade hydra-core==1.3.2 omegaconf pytest';

export const TRAINING_SCRIPT = 'navsim/planning/script/run_training_recogdrive_torchax.py';
export const COMMON_AGENT = [
  'agent=recogdrive_agent', 'agent.lr=1e-4', 'agent.vlm_path=models/InternVL3-2B', 'agent.cam_type=single',
  'agent.cache_hidden_state=True', 'agent.vlm_type=internvl', 'agent.dit_type=small', 'agent.vlm_size=small',
  'agent.sampling_method=ddim',
];
export const STAGE2_ARGS = [
  ...COMMON_AGENT, 'agent.grpo=False', 'trainer.params.max_epochs=2', 'experiment_name=stage2_training',
  'train_test_split=navtrain', 'cache_path=/recogdrive/data/cache_output', 'use_cache_without_dataset=True',
  'force_cache_computation=False', 'dataloader.params.num_workers=0', 'output_dir=/recogdrive/work_dirs/stage2_output',
];

export const METRIC_SCRIPT = 'navsim/planning/script/run_metric_caching.py';
export const METRIC_ARGS = ['train_test_split=navtrain', 'cache.cache_path=/recogdrive/data/metric_cache', 'worker=ray_distributed_no_torch'];

export const STAGE3_ARGS = (reference = '/recogdrive/work_dirs/stage2_export/policy.pt') => [
  ...COMMON_AGENT, 'agent.grpo=True', 'agent.metric_cache_path=/recogdrive/data/metric_cache',
  `agent.reference_policy_checkpoint=${reference}`, `agent.checkpoint_path=${reference}`,
  'trainer.params.max_epochs=3', 'dataloader.params.batch_size=8', 'experiment_name=stage3_grpo',
  'train_test_split=navtrain', 'cache_path=/recogdrive/data/cache_output', 'use_cache_without_dataset=True',
  'force_cache_computation=False', 'dataloader.params.num_workers=0', 'output_dir=/recogdrive/work_dirs/stage3_output',
];

export const EVAL_SCRIPT = 'navsim/planning/script/run_pdm_score_recogdrive.py';
export const EVAL_ARGS = [
  'agent=recogdrive_agent', 'agent.checkpoint_path=/recogdrive/work_dirs/stage3_export/policy.pt',
  'agent.vlm_path=models/InternVL3-2B', 'agent.cam_type=single', 'agent.cache_hidden_state=True', 'agent.vlm_type=internvl',
  'agent.dit_type=small', 'agent.vlm_size=small', 'agent.grpo=False', 'agent.sampling_method=ddim', 'train_test_split=navtest',
  'cache_path=/recogdrive/data/navtest_cache', 'metric_cache_path=/recogdrive/data/navtest_metric_cache',
  'use_cache_without_dataset=True', 'experiment_name=recogdrive_agent_eval', 'output_dir=/recogdrive/work_dirs/eval_output',
];

/** Seed sizes: 3 train logs + 1 validation log (all in navtrain) × 4 tokens, 2 test logs × 4 tokens. */
export const TRAIN_TOKENS = 12;
export const VAL_TOKENS = 4;
export const NAVTRAIN_TOKENS = TRAIN_TOKENS + VAL_TOKENS;
export const TEST_TOKENS = 8;

/** The checkpoint exports (pipeline/contracts/exports.ts): the bridge the stage images ship. */
export const EXPORT_SCRIPT = '/opt/recogdrive/bridge/orbax_to_torch.py';
export const exportArgs = (checkpoint: string, out: string, format?: 'lightning') => [
  ...(format === undefined ? [] : ['--format', format]),
  '--checkpoint', checkpoint, '--output', `${out}/policy.pt`, '--manifest', `${out}/policy.json`, '--prefix', 'agent.',
];

export const GPU_STAGE2_SCRIPT = 'navsim/planning/script/run_training_recogdrive.py';
export const GPU_STAGE3_SCRIPT = 'navsim/planning/script/run_training_recogdrive_rl.py';
/** torchrun as the contracts launch it on one machine of `gpus` GPUs, and the Lightning device args that go with it. */
export const torchrun = (gpus: number, nodes = 1) => ['torchrun', `--nnodes=${nodes}`, `--nproc_per_node=${gpus}`, '--master_port=29500'];
export const lightningDevices = (gpus: number, nodes = 1) => [`trainer.params.devices=${gpus}`, `trainer.params.num_nodes=${nodes}`];
