/**
 * Which environment names a stage's `env` may set. Stage env goes into containers only (`docker
 * run -e`); the local backend's host processes get none of it but the simulator's controls
 * (activities/execution/local-process.ts). Still, a name that makes a loader, shell or language
 * runtime load or run code of its choosing is refused everywhere: it would turn a setting into
 * code execution (NODE_OPTIONS=--require, LD_PRELOAD, PYTHONSTARTUP, BASH_ENV ...).
 *
 * Allowed on purpose, as a stage may need them: XLA_FLAGS, LIBTPU_INIT_ARGS, TPU_*, JAX_*,
 * NCCL_* (but its plugin loaders), CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS, HF_*, TMPDIR, and the
 * proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY: a container's own outbound traffic;
 * lower-case names fail the name pattern). The image is the trust boundary of a container
 * anyway: whoever picks the image picks the code.
 */
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,63}$/;

/** The simulator's controls a stage's env may set (docker/simulator/README.md); the rest of RECOGDRIVE_SIM_* is plumbing. */
export const SIMULATOR_CONTROLS: readonly string[] = [
  'RECOGDRIVE_SIM_DURATION_MS',
  'RECOGDRIVE_SIM_FAULT',
  'RECOGDRIVE_SIM_FAULT_AT',
  'RECOGDRIVE_SIM_FAULT_WORKER',
];

const LOADER = 'makes the dynamic loader load code of its choosing';
const SHELL = 'makes a shell run code of its choosing';
const NODE = 'makes Node.js load or run code of its choosing';
const PYTHON = 'makes Python load or run code of its choosing';
const LIBC = 'changes how libc loads modules, allocates or resolves names';

/** Refused by prefix, with the reason. */
const DENIED_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['LD_', LOADER],
  ['DYLD_', LOADER],
  ['NODE_', NODE],
  ['NPM_CONFIG_', NODE],
  ['MALLOC_', LIBC],
  ['RESOLV_', LIBC],
  ['BASH_FUNC_', SHELL],
  ['GIT_', 'makes git run programs of its choosing (GIT_SSH_COMMAND, GIT_EXEC_PATH, ...)'],
];

/** Refused by name, with the reason. */
const DENIED_NAMES: ReadonlyMap<string, string> = new Map([
  ...['BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'IFS', 'PROMPT_COMMAND', 'CDPATH', 'GLOBIGNORE'].map((n) => [n, SHELL] as const),
  ...['GCONV_PATH', 'GLIBC_TUNABLES', 'LOCPATH', 'NLSPATH', 'HOSTALIASES'].map((n) => [n, LIBC] as const),
  ...['PERL5OPT', 'PERL5LIB', 'PERLLIB'].map((n) => [n, 'makes Perl load or run code of its choosing'] as const),
  ...['RUBYOPT', 'RUBYLIB'].map((n) => [n, 'makes Ruby load or run code of its choosing'] as const),
  ...['JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS'].map((n) => [n, 'makes the JVM load agents or options of its choosing'] as const),
  ...['OPENSSL_CONF', 'OPENSSL_ENGINES', 'OPENSSL_MODULES'].map((n) => [n, 'makes OpenSSL load modules of its choosing'] as const),
  ...['PAGER', 'EDITOR', 'VISUAL', 'BROWSER', 'LESSOPEN', 'LESSCLOSE', 'SSH_ASKPASS', 'SUDO_ASKPASS'].map((n) => [n, 'names a program that tools run'] as const),
  ...['CUDA_INJECTION64_PATH', 'CUDA_INJECTION32_PATH', 'NCCL_NET_PLUGIN', 'NCCL_TUNER_PLUGIN', 'NCCL_PROFILER_PLUGIN'].map(
    (n) => [n, 'makes CUDA or NCCL load a library of its choosing'] as const,
  ),
]);

/** PYTHON* names that only tune the interpreter; every other PYTHON* name is refused (startup files, paths, warnings imports, breakpoint hooks). */
const PYTHON_TUNING: readonly string[] = [
  'PYTHONUNBUFFERED',
  'PYTHONDONTWRITEBYTECODE',
  'PYTHONHASHSEED',
  'PYTHONFAULTHANDLER',
  'PYTHONIOENCODING',
  'PYTHONUTF8',
  'PYTHONOPTIMIZE',
  'PYTHONDEVMODE',
  'PYTHONTRACEMALLOC',
  'PYTHONMALLOC',
  'PYTHONVERBOSE',
  'PYTHONNOUSERSITE',
];

/**
 * Why a stage's env may not set `name` (loader and runtime variables, malformed names), or
 * undefined when it may. Names the contract or the stage wrapper set are the input schema's
 * business (pipeline/input.ts RESERVED_ENV, RECOGDRIVE_*); the simulator's plumbing is refused here.
 */
export function envNameProblem(name: string): string | undefined {
  if (!ENV_NAME_PATTERN.test(name)) return 'environment names are 1-64 upper case letters, digits and _, not starting with a digit';
  if (name.startsWith('RECOGDRIVE_SIM_') && !SIMULATOR_CONTROLS.includes(name)) {
    return `the orchestrator sets ${name}; of the simulator's variables only ${SIMULATOR_CONTROLS.join(', ')} may be set`;
  }
  const denied = DENIED_NAMES.get(name) ?? DENIED_PREFIXES.find(([prefix]) => name.startsWith(prefix))?.[1];
  if (denied !== undefined) return `${name} ${denied}: not settable`;
  if (name.startsWith('PYTHON') && !PYTHON_TUNING.includes(name)) {
    return `${name} ${PYTHON}: not settable (allowed PYTHON* names: ${PYTHON_TUNING.join(', ')})`;
  }
  return undefined;
}
