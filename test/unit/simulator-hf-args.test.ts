/**
 * The simulator's HfArgumentParser (docker/simulator/hf-args.ts) against upstream: transformers
 * 4.37.2 hf_argparser.py + training_args.py with the Stage 1 dataclasses of
 * internvl_chat/internvl/train/internvl_chat_finetune_torchax.py (zorrofox/recogdrive @ 7ed3135),
 * on Python 3.11's argparse. The expected texts were printed by a real HfArgumentParser built from
 * those dataclasses. Errors run the simulator as a process; parsing results are checked on HfArgs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerFs } from '../../docker/simulator/container-fs.ts';
import { PythonError, PythonExit } from '../../docker/simulator/errors.ts';
import { HfArgs, hfUsage } from '../../docker/simulator/hf-args.ts';
import { MountTable } from '../../docker/simulator/paths.ts';
import { HF_FIELDS } from '../../docker/simulator/upstream/hf-arguments.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'docker/simulator/main.ts');
const REPO = '/recogdrive';
const SCRIPT = 'internvl_chat/internvl/train/internvl_chat_finetune_torchax.py';
const SCRIPT_PATH = `${REPO}/${SCRIPT}`;
const PROG = 'internvl_chat_finetune_torchax.py';
const USAGE_FIRST_LINES = [
  `usage: ${PROG} [-h]`,
  `${' '.repeat(41)}[--model_name_or_path MODEL_NAME_OR_PATH]`,
  `${' '.repeat(41)}[--vision_path VISION_PATH]`,
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'recogdrive-sim-hf-'));
const repoDir = path.join(tmp, 'repo');
fs.mkdirSync(repoDir);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const containerFs = new ContainerFs(new MountTable([{ target: REPO, source: repoDir, readOnly: false }], REPO));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function stage1(args: readonly string[]): Promise<Result> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    RECOGDRIVE_SIM_MOUNTS: JSON.stringify([{ target: REPO, source: repoDir, readOnly: false }]),
    RECOGDRIVE_SIM_WORKDIR: REPO,
    RECOGDRIVE_SIM_DURATION_MS: '20',
    RECOGDRIVE_SIM_STATE_DIR: path.join(tmp, 'state'),
  };
  const child = spawn(process.execPath, [MAIN, 'python', SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const parse = (args: readonly string[]) => HfArgs.parse(args, containerFs, PROG, SCRIPT_PATH);
const lines = (text: string) => text.replace(/\n$/, '').split('\n');

/** argparse's error as the simulator raises it in process: exit 2, the usage, then `prog: error: ...`. */
function argparseError(args: readonly string[]): string {
  try {
    parse(args);
  } catch (error) {
    assert.ok(error instanceof PythonExit, String(error));
    assert.equal(error.code, 2);
    assert.deepEqual(error.lines[0]?.split('\n').slice(0, 3), USAGE_FIRST_LINES);
    return error.lines.at(-1) ?? '';
  }
  return assert.fail(`parsed ${args.join(' ')}`);
}

describe('argparse errors: usage + `<prog>: error: <msg>` on stderr, exit 2 (Python 3.11 argparse)', { concurrency: 4 }, () => {
  test('transformers 4.37.2 string_to_bool: a bool field given `maybe`', async () => {
    const result = await stage1(['--output_dir', '/o', '--freeze_llm', 'maybe']);
    assert.equal(result.code, 2);
    assert.deepEqual(lines(result.stderr).slice(0, 3), USAGE_FIRST_LINES);
    assert.equal(
      lines(result.stderr).at(-1),
      `${PROG}: error: argument --freeze_llm: Truthy value expected: got maybe but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).`,
    );
    assert.equal(result.stdout, '');
  });

  test("internvl_chat_finetune_torchax.py: ps_version is Literal['v1', 'v2'] (argparse choices)", async () => {
    const result = await stage1(['--output_dir', '/o', '--ps_version', 'v3']);
    assert.equal(result.code, 2);
    assert.equal(lines(result.stderr).at(-1), `${PROG}: error: argument --ps_version: invalid choice: 'v3' (choose from 'v1', 'v2')`);
  });

  test('training_args.py: output_dir has no default, so argparse requires it', async () => {
    const result = await stage1(['--model_name_or_path', 'models/InternVL3-2B']);
    assert.equal(result.code, 2);
    assert.equal(lines(result.stderr).at(-1), `${PROG}: error: the following arguments are required: --output_dir`);
  });

  test('the whole usage is argparse\'s, wrapped for 80 columns (168 lines for the 169 options)', () => {
    const usage = lines(hfUsage(PROG));
    assert.equal(usage.length, 167);
    assert.deepEqual(usage.slice(0, 3), USAGE_FIRST_LINES);
    assert.ok(usage.includes(`${' '.repeat(41)}--output_dir OUTPUT_DIR`));
    assert.ok(usage.includes(`${' '.repeat(41)}[--ps_version {v1,v2}]`));
    assert.ok(usage.includes(`${' '.repeat(41)}[--no_remove_unused_columns]`));
    assert.ok(usage.includes(`${' '.repeat(41)}[--report_to REPORT_TO [REPORT_TO ...]]`));
  });

  test('type errors: int, float (training_args.py max_steps: int, learning_rate: float)', () => {
    assert.equal(argparseError(['--output_dir', '/o', '--max_steps', 'abc']), `${PROG}: error: argument --max_steps: invalid int value: 'abc'`);
    assert.equal(argparseError(['--output_dir', '/o', '--max_steps', '1.5']), `${PROG}: error: argument --max_steps: invalid int value: '1.5'`);
    assert.equal(argparseError(['--output_dir', '/o', '--learning_rate', 'x']), `${PROG}: error: argument --learning_rate: invalid float value: 'x'`);
    assert.equal(argparseError(['--output_dir', '/o', '--debug', 'foo']), `${PROG}: error: argument --debug: invalid DebugOption value: 'foo'`);
    assert.equal(argparseError(['--output_dir', '/o', '--lr_scheduler_kwargs', 'x']), `${PROG}: error: argument --lr_scheduler_kwargs: invalid Dict value: 'x'`);
  });

  test('Optional[bool] fields default None take exactly one value (training_args.py tf32): a bare `--tf32` is refused', () => {
    assert.equal(argparseError(['--output_dir', '/o', '--tf32']), `${PROG}: error: argument --tf32: expected one argument`);
    assert.equal(argparseError(['--output_dir', '/o', '--report_to']), `${PROG}: error: argument --report_to: expected at least one argument`);
  });

  test('allow_abbrev: an ambiguous prefix lists its matches in parser order', () => {
    assert.equal(
      argparseError(['--output_dir', '/o', '--save', '3']),
      `${PROG}: error: ambiguous option: --save could match --save_strategy, --save_steps, --save_total_limit, --save_safetensors, --save_on_each_node, --save_only_model`,
    );
    assert.match(argparseError(['--output_dir', '/o', '--save=3']), /: error: ambiguous option: --save=3 could match --save_strategy, /);
  });

  test('`--no_<name>` is a store_false flag: an explicit value is ignored-explicit-argument', () => {
    assert.equal(argparseError(['--output_dir', '/o', '--no_remove_unused_columns=1']), `${PROG}: error: argument --no_remove_unused_columns: ignored explicit argument '1'`);
  });
});

describe('arguments argparse does not know: ValueError from parse_args_into_dataclasses (hf_argparser.py:347), exit 1', () => {
  test('`--foo bar` is left over: a traceback through main() (script line 838)', async () => {
    const result = await stage1(['--output_dir', '/o', '--foo', 'bar']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      [
        'Traceback (most recent call last):',
        `  File "${SCRIPT_PATH}", line 1345, in <module>`,
        '    main()',
        `  File "${SCRIPT_PATH}", line 838, in main`,
        '    model_args, data_args, training_args = parser.parse_args_into_dataclasses()',
        `    ${' '.repeat(39)}${'^'.repeat(36)}`,
        '  File "/usr/local/lib/python3.11/site-packages/transformers/hf_argparser.py", line 347, in parse_args_into_dataclasses',
        '    raise ValueError(f"Some specified arguments are not used by the HfArgumentParser: {remaining_args}")',
        "ValueError: Some specified arguments are not used by the HfArgumentParser: ['--foo', 'bar']",
        '',
      ].join('\n'),
    );
  });

  test('a stray positional and an unknown single-dash option are left over too', () => {
    for (const [args, left] of [
      [['--output_dir=/o', 'extra'], "['extra']"],
      [['--output_dir', '/o', '-x'], "['-x']"],
    ] as const) {
      assert.throws(
        () => parse(args),
        (error: unknown) => error instanceof PythonError && error.type === 'ValueError' && error.message === `Some specified arguments are not used by the HfArgumentParser: ${left}`,
      );
    }
  });
});

describe('what argparse accepts', () => {
  test('allow_abbrev=True: `--output /o` is --output_dir; unambiguous prefixes work with `=` too', () => {
    const args = parse(['--output', '/o', '--model_name=models/x', '--per_device_train', '2']);
    assert.equal(args.required('output_dir'), '/o');
    assert.equal(args.str('model_name_or_path'), 'models/x');
    assert.equal(args.int('per_device_train_batch_size'), 2);
  });

  test('bool fields take an optional value (a bare flag is True); defaults of True also have --no_<name>', () => {
    const args = parse(['--output_dir', '/o', '--bf16', '--freeze_llm', 'no', '--do_train', 'True', '--no_remove_unused_columns', '--tf32', 'y']);
    assert.equal(args.bool('bf16'), true);
    assert.equal(args.bool('freeze_llm'), false);
    assert.equal(args.bool('do_train'), true);
    assert.equal(args.bool('remove_unused_columns'), false);
    assert.equal(args.bool('tf32'), true);
    assert.equal(parse(['--output_dir', '/o']).bool('remove_unused_columns'), true);
  });

  test('defaults come from the dataclasses as argparse passes them (training_args.py; a list with a plain default is None)', () => {
    const args = parse(['--output_dir', '/o', '--max_steps', '-1']);
    const defaultOf = (name: string) => HF_FIELDS.find((field) => field.name === name)?.default;
    assert.equal(args.float('learning_rate'), defaultOf('learning_rate'));
    assert.equal(args.float('learning_rate'), 5e-5);
    assert.equal(args.str('learning_rate'), '5e-05');
    assert.equal(args.float('num_train_epochs'), 3);
    assert.equal(args.str('num_train_epochs'), '3.0');
    assert.equal(args.float('save_steps'), 500);
    assert.equal(args.int('max_steps'), -1);
    assert.equal(args.int('per_device_train_batch_size'), 8);
    assert.equal(args.str('ps_version'), 'v2');
    assert.equal(args.get('report_to'), null);
    assert.equal(args.list('report_to'), undefined);
    assert.deepEqual(args.get('lr_scheduler_kwargs'), {});
    assert.equal(args.given('learning_rate'), false);
    assert.equal(args.given('max_steps'), true);
  });

  test('the Stage 1 command of the plan parses (pipeline/contracts/stage1.ts)', () => {
    const args = parse([
      '--model_name_or_path', 'models/InternVL3-2B', '--conv_style', 'internvl2_5', '--output_dir', 'work_dirs/stage1_output',
      '--meta_path', 'data/meta.json', '--force_image_size', '448', '--max_dynamic_patch', '1', '--down_sample_ratio', '0.5',
      '--bf16', 'True', '--num_train_epochs', '1', '--per_device_train_batch_size', '1', '--gradient_accumulation_steps', '1',
      '--learning_rate', '4e-5', '--weight_decay', '0.05', '--warmup_ratio', '0.0', '--logging_steps', '1', '--max_seq_length', '2048',
      '--do_train', 'True', '--grad_checkpoint', 'False', '--group_by_length', 'False', '--dynamic_image_size', 'False',
      '--use_thumbnail', 'False', '--ps_version', 'v2', '--save_steps', '4', '--report_to', 'none', 'tensorboard',
    ]);
    assert.equal(args.float('learning_rate'), 4e-5);
    assert.equal(args.int('max_dynamic_patch'), 1);
    assert.deepEqual(args.list('report_to'), ['none', 'tensorboard']);
  });

  test('a single .json argument is parse_json_file: its keys, unknown keys refused (hf_argparser.py:376)', () => {
    fs.writeFileSync(path.join(repoDir, 'args.json'), JSON.stringify({ output_dir: '/o', max_steps: 3, bf16: true }));
    const args = parse(['args.json']);
    assert.equal(args.required('output_dir'), '/o');
    assert.equal(args.int('max_steps'), 3);
    assert.equal(args.bool('bf16'), true);
    fs.writeFileSync(path.join(repoDir, 'bad.json'), JSON.stringify({ output_dir: '/o', foo: 1, bar: 2 }));
    assert.throws(
      () => parse(['bad.json']),
      (error: unknown) =>
        error instanceof PythonError &&
        error.type === 'ValueError' &&
        error.message === "Some keys are not used by the HfArgumentParser: ['bar', 'foo']" &&
        error.frames.at(-1)?.line === 376,
    );
    fs.writeFileSync(path.join(repoDir, 'none.json'), JSON.stringify({ max_steps: 1 }));
    assert.throws(
      () => parse(['none.json']),
      (error: unknown) => error instanceof PythonError && error.type === 'TypeError' && error.message === "TrainingArguments.__init__() missing 1 required positional argument: 'output_dir'",
    );
  });
});
