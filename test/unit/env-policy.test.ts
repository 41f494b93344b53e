/**
 * A stage's env: loader and runtime variables are refused at validation on every backend, and
 * the local backend's host processes never get a user's env (only the contract's variables, the
 * stage wrapper's and the simulator's controls) — proved with a real launch through the local
 * executor, whose stage wrapper is a Node process that NODE_OPTIONS would have hijacked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { filePathOf } from '../../activities/artifacts/file-store.ts';
import { hostProcessEnv, killContainerProcesses, LocalProcessExecutor } from '../../activities/execution/local-process.ts';
import type { ComputeLease, LaunchRequest } from '../../activities/types.ts';
import { envNameProblem } from '../../pipeline/env-policy.ts';
import { ComputeSpec, InvalidPipelineInput, parsePipelineInput } from '../../pipeline/input.ts';
import { MARKERS_MOUNT, STAGE_WRAPPER, type LaunchSpec } from '../../pipeline/launch.ts';
import { UPSTREAM_FIXES } from '../../pipeline/upstream.ts';
import { PROJECT_ROOT } from '../../workers/project-root.ts';

const minimal = { experiment: 'exp-1', artifactRoot: 'file:///tmp/artifacts', paths: { hostRepoDir: '/data/recogdrive' }, upstreamFixes: [...UPSTREAM_FIXES] };

const DENIED: Array<[string, RegExp]> = [
  ['NODE_OPTIONS', /Node\.js/],
  ['NODE_PATH', /Node\.js/],
  ['LD_PRELOAD', /dynamic loader/],
  ['LD_LIBRARY_PATH', /dynamic loader/],
  ['LD_AUDIT', /dynamic loader/],
  ['DYLD_INSERT_LIBRARIES', /dynamic loader/],
  ['PYTHONSTARTUP', /Python/],
  ['PYTHONHOME', /Python/],
  ['PYTHONINSPECT', /Python/],
  ['PYTHONUSERBASE', /Python/],
  ['PYTHONWARNINGS', /Python/],
  ['PYTHONBREAKPOINT', /Python/],
  ['BASH_ENV', /shell/],
  ['ENV', /shell/],
  ['SHELLOPTS', /shell/],
  ['BASHOPTS', /shell/],
  ['PS4', /shell/],
  ['IFS', /shell/],
  ['PERL5OPT', /Perl/],
  ['PERL5LIB', /Perl/],
  ['RUBYOPT', /Ruby/],
  ['JAVA_TOOL_OPTIONS', /JVM/],
  ['_JAVA_OPTIONS', /JVM/],
  ['GCONV_PATH', /libc/],
  ['MALLOC_ARENA_MAX', /libc/],
  ['GLIBC_TUNABLES', /libc/],
  ['LOCPATH', /libc/],
  ['HOSTALIASES', /libc/],
  ['RESOLV_HOST_CONF', /libc/],
  ['OPENSSL_CONF', /OpenSSL/],
  ['GIT_SSH_COMMAND', /git/],
  ['CUDA_INJECTION64_PATH', /CUDA or NCCL/],
  ['NCCL_NET_PLUGIN', /CUDA or NCCL/],
  ['RECOGDRIVE_SIM_MAIN', /orchestrator sets/],
  ['RECOGDRIVE_SIM_NODE', /orchestrator sets/],
  ['RECOGDRIVE_SIM_MOUNTS', /orchestrator sets/],
  ['lower_case', /upper case/],
  ['1ABC', /upper case/],
];

for (const [name, why] of DENIED) {
  test(`a stage's env may not set ${name}, and the refusal says why`, () => {
    assert.match(envNameProblem(name) ?? '', why);
    try {
      parsePipelineInput({ ...minimal, stage2: { env: { [name]: 'x' } } });
      assert.fail(`${name} was accepted`);
    } catch (error) {
      assert.ok(error instanceof InvalidPipelineInput);
      assert.ok(error.issues.some((issue) => issue.startsWith(`stage2.env.${name}: `)), JSON.stringify(error.issues));
    }
  });
}

test('what container stages legitimately need is accepted: XLA, TPU, JAX, NCCL tuning, CUDA devices, proxies, the simulator controls', () => {
  const env = {
    XLA_FLAGS: '--xla_dump_to=/tmp/x',
    LIBTPU_INIT_ARGS: '--xla_tpu_enable_latency_hiding_scheduler=true',
    TPU_STDERR_LOG_LEVEL: '0',
    TPU_MIN_LOG_LEVEL: '0',
    JAX_PLATFORMS: 'tpu',
    NCCL_DEBUG: 'INFO',
    NCCL_SOCKET_IFNAME: 'eth0',
    CUDA_VISIBLE_DEVICES: '0,1',
    OMP_NUM_THREADS: '8',
    HF_HUB_OFFLINE: '1',
    PYTHONUNBUFFERED: '1',
    HTTPS_PROXY: 'http://proxy:3128',
    TMPDIR: '/recogdrive/tmp',
    RECOGDRIVE_SIM_DURATION_MS: '300',
    RECOGDRIVE_SIM_FAULT: 'crash',
    RECOGDRIVE_SIM_FAULT_AT: '0.5',
    RECOGDRIVE_SIM_FAULT_WORKER: '1',
  };
  for (const name of Object.keys(env)) assert.equal(envNameProblem(name), undefined, name);
  assert.deepEqual(parsePipelineInput({ ...minimal, stage2: { env } }).stage2.env, env);
});

test('the local backend gives a host process the contract, wrapper and simulator-control variables of a launch, nothing else', () => {
  const launchEnv = {
    PYTHONPATH: '/recogdrive',
    NAVSIM_EXP_ROOT: '/recogdrive/w',
    HYDRA_FULL_ERROR: '1',
    RECOGDRIVE_STAGE: 'stage2',
    RECOGDRIVE_OUTPUT_DIR: '/out',
    RECOGDRIVE_SIM_DURATION_MS: '300',
    RECOGDRIVE_SIM_FAULT_AT: '0.3',
    RECOGDRIVE_SIM_MAIN: '/tmp/evil.ts',
    NODE_OPTIONS: '--require /tmp/evil.js',
    LD_PRELOAD: '/tmp/evil.so',
    XLA_FLAGS: '--x',
  };
  assert.deepEqual(Object.keys(hostProcessEnv(launchEnv)).sort(), [
    'HYDRA_FULL_ERROR',
    'NAVSIM_EXP_ROOT',
    'PYTHONPATH',
    'RECOGDRIVE_OUTPUT_DIR',
    'RECOGDRIVE_SIM_DURATION_MS',
    'RECOGDRIVE_SIM_FAULT_AT',
    'RECOGDRIVE_STAGE',
  ]);
});

test('NODE_OPTIONS and LD_PRELOAD in a launch never reach the local stage process (its wrapper is Node)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'rd-env-policy-'));
  const outputPath = '/recogdrive/data/out';
  const outputUri = `file://${join(root, 'artifacts', 'out')}`;
  const markersUri = `file://${join(root, 'artifacts', 'markers')}`;
  const pwned = join(root, 'pwned');
  const evil = join(root, 'evil.cjs');
  await writeFile(evil, `require('node:fs').writeFileSync(${JSON.stringify(pwned)}, 'ran');\n`);
  const launch: LaunchSpec = {
    stage: 'metricCache',
    contractVersion: 1,
    image: 'local',
    containerName: 'rd-env-policy-metric-cache',
    workdir: outputPath,
    dockerFlags: [],
    mounts: [
      { source: { kind: 'artifact', uri: outputUri }, target: outputPath, readOnly: false },
      { source: { kind: 'artifact', uri: markersUri }, target: MARKERS_MOUNT, readOnly: false },
    ],
    env: {
      RECOGDRIVE_STAGE: 'metricCache',
      RECOGDRIVE_OUTPUT_DIR: outputPath,
      RECOGDRIVE_MARKER_DIR: MARKERS_MOUNT,
      RECOGDRIVE_OUTPUT_CHECK: JSON.stringify({ kind: 'metric-cache' }),
      RECOGDRIVE_SIM_FAULT_AT: '0.3',
      // As an input accepted before the env policy (a replayed run) could still carry them.
      NODE_OPTIONS: `--require ${evil}`,
      LD_PRELOAD: join(root, 'missing.so'),
      XLA_FLAGS: '--x',
    },
    command: [...STAGE_WRAPPER, 'sh', '-c', 'env > env.txt'],
    addedArgs: [],
    output: { uri: outputUri, containerPath: outputPath },
    markers: { uri: markersUri, containerPath: MARKERS_MOUNT },
  };
  const executor = new LocalProcessExecutor({
    simulatorMain: join(PROJECT_ROOT, 'docker', 'simulator', 'main.ts'),
    shimsDir: join(PROJECT_ROOT, 'docker', 'simulator', 'shims'),
    wrapperBinDir: join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'bin'),
    nodePath: process.execPath,
    hostPathOf: filePathOf,
  });
  const lease: ComputeLease = { name: 'rd-env-policy-1', backend: 'local', workers: [{ kind: 'local', dir: join(root, 'compute') }] };
  const request: LaunchRequest = { lease, launch, attempt: 1, compute: ComputeSpec.parse({ backend: 'local' }) };
  const container = join(root, 'compute', 'containers', launch.containerName);
  try {
    await executor.launch(request);
    for (let waited = 0; !existsSync(join(container, 'exit')) && waited < 20_000; waited += 50) await sleep(50);
    const env = await readFile(join(filePathOf(outputUri), 'env.txt'), 'utf8');
    const names = env.split('\n').map((line) => line.split('=')[0]);
    assert.ok(!names.includes('NODE_OPTIONS') && !names.includes('LD_PRELOAD') && !names.includes('XLA_FLAGS'), env);
    assert.ok(names.includes('RECOGDRIVE_SIM_FAULT_AT'), 'the simulator controls still get through');
    assert.equal(existsSync(pwned), false, 'the --require script never ran');
  } finally {
    await killContainerProcesses(container);
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
});
