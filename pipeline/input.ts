/**
 * The pipeline input: ONE JSON object (the Web UI's start form and `temporal workflow start
 * --input` both pass exactly one). Every field is validated here; unknown keys are errors.
 * Defaults reproduce the settings of the TPU guide (../shared/spec/recogdrive-tpu-guide.md).
 */
import { z } from 'zod';
import { dependenciesOf, STAGES, type StageName } from './stages.ts';
import { MAX_OVERRIDE_LENGTH, SAFE_OVERRIDE_TEXT } from './overrides.ts';
import { parseDuration } from './duration.ts';
import { overrideKeysAllowed, overrideKeysKnown, RETIRED_FIXES, UPSTREAM_FIXES } from './upstream.ts';
import { upstreamRefusals } from './upstream-checks.ts';
import { inputLimitRefusals } from './input-limits.ts';
import { prototypeKeyPaths } from './safe-keys.ts';
import { withDefaultLocalGpus } from './trainers.ts';
import { RunId } from './naming.ts';
import { defaultBootImage, gpuMachineTypeProblem, gpuRequestProblem, N1_GPU_TYPES } from './gpu-machines.ts';

// ---- scalar formats --------------------------------------------------------------------

const Experiment = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,38}[a-z0-9]$/, 'use 2-40 lowercase letters, digits or dashes, starting with a letter');

const SAFE_PATH_CHARS = /^[A-Za-z0-9._/@+=-]+$/;
const hasDotDot = (p: string): boolean => p.split('/').includes('..');

/** A path as the container sees it: absolute, or relative to the container workdir (/recogdrive). */
const ContainerPath = z
  .string()
  .min(1)
  .regex(SAFE_PATH_CHARS, 'only letters, digits and . _ / @ + = - are allowed in paths')
  .refine((p) => !hasDotDot(p), 'must not contain a ".." segment');

/** A path on the worker host (the source of a bind mount). */
const HostPath = ContainerPath.refine((p) => p.startsWith('/'), 'must be an absolute path');

const ImageRef = z
  .string()
  .max(255)
  .regex(
    /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/,
    'not a valid image reference (registry/path:tag or @sha256:digest)',
  );

/** Where stage outputs live: a Cloud Storage prefix or a local directory. No trailing slash. */
export const ArtifactUri = z
  .string()
  .regex(
    /^(gs:\/\/[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](\/[A-Za-z0-9._=+@-]+)*|file:\/\/(\/[A-Za-z0-9._=+@-]+)+)\/?$/,
    'must be gs://bucket[/prefix] or file:///absolute/path',
  )
  .refine((u) => !hasDotDot(u.replace(/^[a-z]+:\/\//, '')), 'must not contain a ".." segment')
  .transform((u) => u.replace(/\/+$/, ''));

const Zone = z.string().regex(/^[a-z]+-[a-z]+[0-9]+-[a-z]$/, 'not a zone name like us-east5-b');
const ProjectId = z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, 'not a Google Cloud project id');

/** Milliseconds, or a string such as "90s", "2 minutes", "7 days". Parsed to milliseconds. */
const Duration = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not a duration (e.g. 90s, 30 minutes, 7 days, or milliseconds)' });
    return z.NEVER;
  }
  return ms;
});

const Split = z.enum(['navtrain', 'navtest', 'navmini']);
const PositiveInt = z.number().int().positive();
const LearningRate = z.number().positive().max(1);

// ---- compute ---------------------------------------------------------------------------

export const V6E_ACCELERATORS = ['v6e-1', 'v6e-4', 'v6e-8', 'v6e-16', 'v6e-32', 'v6e-64', 'v6e-128', 'v6e-256'] as const;

/** Behaviour of the embedded stage simulator (local backend only): duration and injected faults. */
const Simulation = z.strictObject({
  durationMs: z.number().int().min(0).max(3_600_000).default(1500),
  /** CUDA GPUs this machine plays for the stage (torchrun and NCCL see them). Default: 1 for a stage whose trainer is "gpu", else none. */
  gpus: z.number().int().min(1).max(16).optional(),
  fault: z
    .strictObject({
      kind: z.enum(['crash', 'hang', 'oom', 'partial']),
      /** Fraction of the stage's work done before the fault, 0..1. */
      at: z.number().min(0).max(1).default(0.5),
      /** Attempts the fault applies to (1-based); all attempts when omitted. */
      attempts: z.array(PositiveInt).optional(),
    })
    .optional(),
});

const LocalCompute = z.strictObject({
  backend: z.literal('local'),
  simulate: Simulation.prefault({}),
});

/**
 * Cloud compute trouble: zone failover on capacity failures, new VMs after preemption or
 * maintenance (pipeline/zone-failover.ts). None of it uses the stage's maxAttempts.
 */
const Failover = z.strictObject({
  /** Tries in one zone per round for opaque internal errors before it counts as a stockout. */
  maxAttemptsPerZone: z.number().int().min(1).max(10).default(2),
  /** Passes over the zone list on capacity failures before the stage fails. */
  maxCapacityRounds: z.number().int().min(1).max(100).default(6),
  /** Wait before the first repeated round; doubles per round up to backoffMax. */
  backoff: Duration.prefault('1 minute'),
  backoffMax: Duration.prefault('30 minutes'),
  /** After this many preemptions a spot stage continues on on-demand; unset: stays on spot. */
  spotFallbackAfterPreemptions: z.number().int().min(1).max(100).optional(),
  /** Preemptions + maintenance losses after which the stage fails. */
  maxNodeLosses: z.number().int().min(0).max(1000).default(20),
  /** How often a running stage's VM is checked for preemption or maintenance. */
  healthCheckInterval: Duration.prefault('30s'),
});

const TpuCompute = z.strictObject({
  backend: z.literal('tpu-api'),
  accelerator: z.enum(V6E_ACCELERATORS),
  zones: z.array(Zone).min(1, 'give at least one zone, in order of preference'),
  spot: z.boolean().default(false),
  /** direct: CreateNode; queued: a queued resource (waits in line for capacity; the documented way to get spot TPUs). */
  provisioning: z.enum(['direct', 'queued']).default('direct'),
  runtimeVersion: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]*$/)
    .default('v2-alpha-tpuv6e'),
  failover: Failover.prefault({}),
});

/** GPUs attached to an N1 VM (pipeline/gpu-machines.ts: which types, counts and vCPU limits). */
const AttachedGpus = z.strictObject({
  type: z.enum(N1_GPU_TYPES, { error: `one of ${N1_GPU_TYPES.join(', ')} (the GPUs that attach to N1 machine types)` }),
  count: z.number().int().min(1).max(8),
});

const ComputeEngine = z
  .strictObject({
    backend: z.literal('compute-engine'),
    /**
     * n2-standard-32 for a CPU VM (metric cache), ct6e-standard-4t etc. for a TPU VM,
     * a2-highgpu-8g / a3-highgpu-8g / g2-standard-48 etc. for a GPU VM (its GPUs come with the type).
     */
    machineType: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)+$/, 'not a machine type like n2-standard-32'),
    zones: z.array(Zone).min(1, 'give at least one zone, in order of preference'),
    spot: z.boolean().default(false),
    /** N1 machine types only: GPUs to attach (e.g. { "type": "nvidia-tesla-t4", "count": 4 } on n1-standard-32). */
    gpus: AttachedGpus.optional(),
    /**
     * Boot image (needs docker; a GPU VM needs the NVIDIA driver and Docker's GPU support): a
     * family or image URL. Default: cos-stable, or for a GPU VM a Deep Learning VM image
     * (pipeline/gpu-machines.ts GPU_BOOT_IMAGE).
     */
    bootImage: z
      .string()
      .regex(/^projects\/[a-z][a-z0-9-]{4,28}[a-z0-9]\/global\/images\/(family\/)?[a-z][a-z0-9-]{0,62}$/, 'not an image like projects/cos-cloud/global/images/family/cos-stable')
      .optional(),
    bootDiskGb: z.number().int().min(10).max(65536).default(200),
    failover: Failover.prefault({}),
  })
  .superRefine((compute, ctx) => {
    const typeProblem = gpuMachineTypeProblem(compute.machineType);
    if (typeProblem !== undefined) ctx.addIssue({ code: 'custom', path: ['machineType'], message: typeProblem });
    const gpuProblem = gpuRequestProblem(compute.machineType, compute.gpus);
    if (gpuProblem !== undefined) ctx.addIssue({ code: 'custom', path: gpuProblem.field.split('.'), message: gpuProblem.message });
  })
  .transform((compute) => ({ ...compute, bootImage: compute.bootImage ?? defaultBootImage(compute.machineType, compute.gpus) }));

const StaticHost = z.strictObject({
  address: z.string().regex(/^[A-Za-z0-9.:-]+$/, 'not a host name or IP address'),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'not a user name'),
  /** CUDA GPUs of the host (with the NVIDIA container toolkit), for a `gpu` trainer. None when absent. */
  gpus: z.number().int().min(1).max(16).optional(),
});

const StaticCompute = z.strictObject({
  backend: z.literal('static'),
  hosts: z.array(StaticHost).min(1),
});

export const ComputeSpec = z.discriminatedUnion('backend', [LocalCompute, TpuCompute, ComputeEngine, StaticCompute]);
export type ComputeSpec = z.output<typeof ComputeSpec>;
export type ComputeBackend = ComputeSpec['backend'];
/** Backends that create machines in Google Cloud (need gcp.project, zone failover, health checks). */
export const CLOUD_BACKENDS = ['tpu-api', 'compute-engine'] as const satisfies readonly ComputeBackend[];
export type CloudBackend = (typeof CLOUD_BACKENDS)[number];
export function isCloudBackend(backend: ComputeBackend): backend is CloudBackend {
  return (CLOUD_BACKENDS as readonly ComputeBackend[]).includes(backend);
}

// ---- per-stage settings ----------------------------------------------------------------

/**
 * Overrides: a per-stage allow-list of keys that exist upstream and change what runs
 * (pipeline/upstream.ts). Keys upstream refuses or ignores pass this schema and are refused with
 * their reason by the upstream checks, so the user learns why.
 */
function overridesFor(stage: StageName) {
  const known = overrideKeysKnown(stage);
  const allowed = overrideKeysAllowed(stage);
  return z
    .record(
      z.string().refine((k) => known.includes(k), {
        message: `not an allowed override for ${stage} (${allowed.length === 0 ? 'it takes none' : `allowed: ${allowed.join(', ')}`})`,
      }),
      z.union([
        z
          .string()
          .max(MAX_OVERRIDE_LENGTH, `override values are at most ${MAX_OVERRIDE_LENGTH} characters`)
          .regex(SAFE_OVERRIDE_TEXT, 'override values may not contain quotes, backslashes, control characters or "${"'),
        z.number().finite(),
        z.boolean(),
      ]),
    )
    .default({});
}

/** What every stage has: where it runs, how often an infrastructure failure may be retried, limits. */
/** Environment names the contracts or the executor set; a stage's extra env may not replace them. */
export const RESERVED_ENV = [
  'PYTHONPATH',
  'NAVSIM_EXP_ROOT',
  'OPENSCENE_DATA_ROOT',
  'NUPLAN_MAPS_ROOT',
  'NUPLAN_MAP_VERSION',
  'HYDRA_FULL_ERROR',
  'RECOGDRIVE_WORKER',
  'PATH',
  'HOME',
] as const;

/**
 * Names starting with this are the orchestrator's and the stage wrapper's (RECOGDRIVE_STAGE,
 * RECOGDRIVE_ATTEMPT, RECOGDRIVE_OUTPUT_CHECK, ...: pipeline/markers.ts). The one exception is the
 * stage simulator's own controls (RECOGDRIVE_SIM_*, docker/simulator/README.md), which test runs set per stage.
 */
export const RESERVED_ENV_PREFIX = 'RECOGDRIVE_';
const SIMULATOR_ENV_PREFIX = 'RECOGDRIVE_SIM_';

/** Extra container environment (XLA_FLAGS, TPU_STDERR_LOG_LEVEL, ...): each value is one `-e NAME=value` argument. */
const ExtraEnv = z
  .record(
    z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]{0,63}$/, 'environment names are upper case letters, digits and _')
      .refine((name) => !(RESERVED_ENV as readonly string[]).includes(name), 'set by the stage contract; cannot be overridden')
      .refine(
        (name) =>
          (RESERVED_ENV as readonly string[]).includes(name) || !name.startsWith(RESERVED_ENV_PREFIX) || name.startsWith(SIMULATOR_ENV_PREFIX),
        `names starting with ${RESERVED_ENV_PREFIX} are reserved for the orchestrator and the stage wrapper (only the simulator's ${SIMULATOR_ENV_PREFIX}* controls may be set)`,
      ),
    // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
    z.string().regex(/^[^\u0000-\u001f\u007f]{0,4096}$/, 'no control characters, at most 4096 characters'),
  )
  .default({});

function common(stage: StageName) {
  return {
    compute: ComputeSpec.prefault({ backend: 'local' }),
    overrides: overridesFor(stage),
    env: ExtraEnv,
    /** Attempts on fresh compute after an infrastructure failure (preemption, lost host, hang). */
    maxAttempts: z.number().int().min(1).max(20).default(3),
    /** Wall-clock budget of one attempt. */
    timeout: Duration.prefault('7 days'),
    /** No progress line for this long means the stage hangs. */
    hangTimeout: Duration.prefault('1 hour'),
  };
}

const Stage1 = z.strictObject({
  ...common('stage1'),
  convStyle: z.string().regex(/^[a-z0-9_.]+$/).default('internvl2_5'),
  forceImageSize: PositiveInt.default(448),
  maxDynamicPatch: PositiveInt.default(1),
  downSampleRatio: z.number().positive().max(1).default(0.5),
  bf16: z.boolean().default(true),
  epochs: PositiveInt.default(1),
  perDeviceBatchSize: PositiveInt.default(1),
  gradientAccumulationSteps: PositiveInt.default(1),
  learningRate: LearningRate.default(4e-5),
  weightDecay: z.number().min(0).max(1).default(0.05),
  warmupRatio: z.number().min(0).max(1).default(0),
  loggingSteps: PositiveInt.default(1),
  maxSeqLength: PositiveInt.default(2048),
  gradCheckpoint: z.boolean().default(false),
  groupByLength: z.boolean().default(false),
  dynamicImageSize: z.boolean().default(false),
  useThumbnail: z.boolean().default(false),
  psVersion: z.enum(['v1', 'v2']).default('v2'),
});

const FeatureCache = z.strictObject({
  ...common('featureCache'),
  split: Split.default('navtrain'),
  /** VLM the cache is computed with (HF directory). The TPU guide uses the base model. */
  vlmPath: ContainerPath.optional(),
  vlmType: z.enum(['internvl', 'qwen']).default('internvl'),
  batchSize: PositiveInt.default(4),
  numWorkers: z.number().int().min(0).default(0),
  experimentName: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('caching_job'),
  /** Token folders the cache must hold; default per split (see pipeline/contracts/feature-cache.ts). */
  expectedTokens: PositiveInt.optional(),
});

const DitSettings = {
  learningRate: LearningRate.default(1e-4),
  ditType: z.enum(['small', 'large']).default('small'),
  vlmSize: z.enum(['small', 'large']).default('small'),
  vlmType: z.enum(['internvl', 'qwen']).default('internvl'),
  samplingMethod: z.enum(['ddim', 'ddpm']).default('ddim'),
  camType: z.enum(['single', 'multi']).default('single'),
  cacheHiddenState: z.boolean().default(true),
  split: Split.default('navtrain'),
};

/** Stage 2 and 3 train on the cache; the TPU guide keeps the DataLoader single-process (workers deadlocked). */
const TrainingLoader = { numWorkers: z.number().int().min(0).default(0) };

/**
 * How a training stage runs (pipeline/trainers.ts): `torchax` is the TPU port's trainer on a TPU
 * VM, `gpu` the upstream GPU script under torchrun on GPU VMs (NCCL, PyTorch Lightning).
 */
const Trainer = z.enum(['torchax', 'gpu']);

const Stage2 = z.strictObject({
  ...common('stage2'),
  ...DitSettings,
  trainer: Trainer.default('torchax'),
  ...TrainingLoader,
  epochs: PositiveInt.default(2),
  batchSize: PositiveInt.optional(),
  experimentName: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('stage2_training'),
});

const MetricCache = z.strictObject({
  ...common('metricCache'),
  split: Split.default('navtrain'),
  worker: z.enum(['ray_distributed_no_torch', 'single_machine_thread_pool']).default('ray_distributed_no_torch'),
  maxWorkers: PositiveInt.optional(),
  expectedTokens: PositiveInt.optional(),
});

const Stage3 = z.strictObject({
  ...common('stage3'),
  ...DitSettings,
  /** GRPO runs only in the upstream GPU script: the torchax trainer cannot (pipeline/upstream.ts). */
  trainer: Trainer.default('gpu'),
  ...TrainingLoader,
  epochs: PositiveInt.default(10),
  batchSize: PositiveInt.default(8),
  experimentName: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('stage3_grpo'),
});

/** A checkpoint export (stage2Export, stage3Export): a CPU job; nothing to tune. */
const Export = (stage: 'stage2Export' | 'stage3Export') => z.strictObject({ ...common(stage) });

const Eval = z.strictObject({
  ...common('eval'),
  ...DitSettings,
  /** The evaluation is an NCCL torchrun job (`gpu`); `torchax` is one python process on the TPU VM, which needs a fixed checkout. */
  trainer: Trainer.default('gpu'),
  split: Split.default('navtest'),
  experimentName: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('recogdrive_agent_eval'),
  /** Hidden-state cache of the evaluation split (not the training cache). */
  featureCachePath: ContainerPath.default('/recogdrive/data/navtest_cache'),
  /** Metric cache of the evaluation split. */
  metricCachePath: ContainerPath.default('/recogdrive/data/navtest_metric_cache'),
  expectedTokens: PositiveInt.optional(),
  maxFailedTokens: z.number().int().min(0).default(0),
});

// ---- the whole input -------------------------------------------------------------------

const Paths = z.strictObject({
  /** Host directory mounted at /recogdrive in every stage container (the repo + data checkout). */
  hostRepoDir: HostPath,
  model: ContainerPath.default('models/InternVL3-2B'),
  metaPath: ContainerPath.default('data/meta.json'),
  navsimExpRoot: ContainerPath.default('/recogdrive/tests/work_dirs'),
  openSceneDataRoot: ContainerPath.default('/recogdrive/tests/dummy_data'),
  mapsRoot: ContainerPath.default('/recogdrive/tests/dummy_maps'),
  mapVersion: z.string().regex(/^[A-Za-z0-9._-]+$/).default('nuplan-maps-v1.0'),
});

/** A Cloud Storage object or prefix: gs://bucket/path (no trailing slash). */
const GsUri = z
  .string()
  .max(1024)
  .regex(/^gs:\/\/[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](\/[A-Za-z0-9._=+@-]+)+\/?$/, 'must be gs://bucket/path')
  .refine((u) => !hasDotDot(u.slice('gs://'.length)), 'must not contain a ".." segment')
  .transform((u) => u.replace(/\/+$/, ''));

/** A git URL a VM can clone without a prompt (https, ssh or git protocol); credentials never in it. */
const GitUrl = z
  .string()
  .max(1024)
  .regex(/^(https:\/\/|ssh:\/\/|git:\/\/|file:\/\/\/)[A-Za-z0-9._~:/@+=-]+$/, 'must be an https://, ssh://, git:// or file:/// URL of a repository')
  .refine((u) => !/^https:\/\/[^/]*@/.test(u), 'must not carry credentials (give the VM access instead)');

/**
 * Where the code, models and datasets come from when a stage runs on a machine that starts bare
 * (tpu-api, compute-engine): its bring-up puts them at paths.hostRepoDir on the VM. What is read
 * is part of each stage's fingerprint (the archive's md5 and generation, the commit, the URIs).
 */
const Sources = z.strictObject({
  /** The ReCogDrive checkout: a gs:// tar archive (.tar.gz/.tgz/.tar), or a git URL at a pinned commit. */
  code: z
    .union([
      z.strictObject({ archive: GsUri.refine((u) => /\.(tar\.gz|tgz|tar)$/.test(u), 'must end in .tar.gz, .tgz or .tar') }),
      z.strictObject({ git: GitUrl, commit: z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-character commit id') }),
    ])
    .optional(),
  /** Models and datasets: a gs:// prefix made available at `path` (relative to the checkout) by copying it to local disk or mounting it read-only with gcsfuse. */
  data: z
    .array(
      z.strictObject({
        uri: GsUri,
        path: ContainerPath.refine((p) => !p.startsWith('/'), 'must be relative to the checkout (e.g. models/InternVL3-2B)').refine((p) => !p.split('/').includes('.'), 'must not contain a "." segment'),
        mode: z.enum(['copy', 'mount']).default('copy'),
      }),
    )
    .max(32)
    .refine((list) => new Set(list.map((d) => d.path)).size === list.length, 'lists a path twice')
    .refine((list) => list.every((a) => list.every((b) => a === b || !`${b.path}/`.startsWith(`${a.path}/`))), 'one path lies inside another')
    .default([]),
});

const Images = z.strictObject({
  stage1: ImageRef.default('us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu:stage1'),
  unified: ImageRef.default('us-east5-docker.pkg.dev/grhuang-02/xiaomi-tpu/recogdrive-tpu:unified'),
});

const Orchestration = z.strictObject({
  /** A worker that stops heartbeating for this long is presumed dead; its activity is retried elsewhere. */
  heartbeatTimeout: Duration.prefault('2 minutes'),
  /**
   * How often a running stage reports progress to the run's `status` query. Each report is a
   * signal in the run's history (~4 events): every 5 minutes keeps a 4-day run near 5k events.
   * Live progress is also in the watcher's heartbeat details at every poll.
   */
  progressInterval: Duration.prefault('5 minutes'),
  /** How often a running stage is checked when no event arrives. */
  pollInterval: Duration.prefault('30 seconds'),
});

/** Reuse of verified outputs (content-addressed by fingerprint) and partial reruns. */
const Reuse = z.strictObject({
  /** verified: a stage whose fingerprint matches a verified output reuses it; never: every selected stage runs. */
  policy: z.enum(['verified', 'never']).default('verified'),
  /** This stage and every stage downstream of it run even when a verified output matches. */
  fromStage: z.enum(STAGES).optional(),
  /** These stages run even when a verified output matches (stages downstream may still reuse theirs). */
  force: z
    .array(z.enum(STAGES))
    .refine((list) => new Set(list).size === list.length, 'lists a stage twice')
    .default([]),
  /** The run this one reruns: the plan says, for each stage that runs, what changed since it. */
  rerunOf: RunId.optional(),
});

const StagesToRun = z
  .array(z.enum(STAGES))
  .min(1)
  .refine((list) => new Set(list).size === list.length, 'lists a stage twice')
  .default([...STAGES]);

export const PipelineInput = z
  .strictObject({
    experiment: Experiment,
    stages: StagesToRun,
    artifactRoot: ArtifactUri,
    /** Outputs of stages that are not run, by URI (e.g. a feature cache made by an earlier run). */
    providedArtifacts: z.partialRecord(z.enum(STAGES), ArtifactUri).default({}),
    gcp: z.strictObject({ project: ProjectId }).optional(),
    paths: Paths,
    /** What a bare cloud VM fetches in its bring-up; absent: hostRepoDir must already exist on the machine. */
    sources: Sources.optional(),
    images: Images.prefault({}),
    stage1: Stage1.prefault({}),
    featureCache: FeatureCache.prefault({}),
    stage2: Stage2.prefault({}),
    stage2Export: Export('stage2Export').prefault({}),
    metricCache: MetricCache.prefault({}),
    stage3: Stage3.prefault({}),
    stage3Export: Export('stage3Export').prefault({}),
    eval: Eval.prefault({}),
    orchestration: Orchestration.prefault({}),
    reuse: Reuse.prefault({}),
    /**
     * Known upstream defects your ReCogDrive checkout fixes (pipeline/upstream.ts). A stage that
     * hits one is refused before anything is created unless it is listed here.
     */
    upstreamFixes: z
      .array(z.enum([...UPSTREAM_FIXES, ...RETIRED_FIXES]))
      .refine((list) => new Set(list).size === list.length, 'lists a fix twice')
      .default([]),
  })
  .superRefine((input, ctx) => {
    const selected = new Set<StageName>(input.stages);
    for (const [index, stage] of [...input.reuse.force.entries(), ...(input.reuse.fromStage ? [[-1, input.reuse.fromStage] as const] : [])]) {
      if (!selected.has(stage)) {
        ctx.addIssue({
          code: 'custom',
          path: index < 0 ? ['reuse', 'fromStage'] : ['reuse', 'force', index],
          message: `${stage} is not in stages, so it cannot be rerun`,
        });
      }
    }
    for (const stage of input.stages) {
      if (input.providedArtifacts[stage] !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['providedArtifacts', stage],
          message: `${stage} is both run and provided; drop one`,
        });
      }
      const backend = input[stage].compute.backend;
      if (isCloudBackend(backend) && input.gcp === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['gcp', 'project'],
          message: `${stage} runs on ${backend}, which needs gcp.project`,
        });
      }
    }
  });

export type PipelineInputRaw = z.input<typeof PipelineInput>;
/**
 * A validated input. `legacyDag` is never in an input: the workflow sets it for runs started
 * before the checkpoint exports existed (legacyConfig), which replay with the old DAG.
 */
export type PipelineConfig = z.output<typeof PipelineInput> & { legacyDag?: true };
export type Stage1Config = PipelineConfig['stage1'];
export type SimulationConfig = z.output<typeof Simulation>;
export type SourcesConfig = z.output<typeof Sources>;

export class InvalidPipelineInput extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid pipeline input:\n  - ${issues.join('\n  - ')}`);
    this.name = 'InvalidPipelineInput';
    this.issues = issues;
  }
}

export interface ParseOptions {
  /**
   * Check the input against the upstream code (pipeline/upstream-checks.ts); default true. Only
   * the workflow turns it off, to replay runs started before these checks existed.
   */
  upstreamChecks?: boolean;
  /** The DAG of runs started before the checkpoint exports existed (set by the workflow to replay them). */
  legacyDag?: boolean;
  /**
   * Refuse prototype keys, out-of-bounds numbers and durations, loader/runtime env names and
   * option-like override values (pipeline/input-limits.ts); default true. Only the workflow turns
   * it off, to replay runs started before these limits existed.
   */
  limits?: boolean;
}

/**
 * A run started before the checkpoint exports and trainer flavours existed, as it ran: the TPU
 * port everywhere and Stage 3 / evaluation reading their input stages directly.
 */
export function legacyConfig(config: PipelineConfig): PipelineConfig {
  return {
    ...config,
    stages: config.stages.filter((stage) => stage !== 'stage2Export' && stage !== 'stage3Export'),
    stage2: { ...config.stage2, trainer: 'torchax' },
    stage3: { ...config.stage3, trainer: 'torchax' },
    eval: { ...config.eval, trainer: 'torchax' },
    legacyDag: true,
  };
}

/** Every output a selected stage reads must come from a selected stage or be provided. */
function missingInputs(config: PipelineConfig): Array<{ path: string; message: string }> {
  const selected = new Set<StageName>(config.stages);
  return config.stages.flatMap((stage) =>
    dependenciesOf(config, stage)
      .filter((dep) => !selected.has(dep) && config.providedArtifacts[dep] === undefined)
      .map((dep) => ({ path: `providedArtifacts.${dep}`, message: `${stage} reads the output of ${dep}: add "${dep}" to stages or give providedArtifacts.${dep}` })),
  );
}

/** Parses a raw input; throws InvalidPipelineInput listing every failing field by path. */
export function parsePipelineInput(raw: unknown, options: ParseOptions = {}): PipelineConfig {
  const limits = options.limits !== false;
  // zod drops a record key named __proto__ without a word: refuse such keys before it sees them.
  const prototypeKeys = limits ? prototypeKeyPaths(raw) : [];
  if (prototypeKeys.length > 0) throw new InvalidPipelineInput(prototypeKeys.map((path) => `${path}: keys named __proto__, constructor or prototype are not allowed`));
  const result = PipelineInput.safeParse(raw);
  if (result.success) {
    const config = options.legacyDag === true ? legacyConfig(result.data) : withDefaultLocalGpus(result.data);
    const issues = [
      ...missingInputs(config),
      ...(limits ? inputLimitRefusals(config) : []),
      ...(options.upstreamChecks === false ? [] : upstreamRefusals(config)),
    ];
    if (issues.length === 0) return config;
    throw new InvalidPipelineInput(issues.map((r) => `${r.path}: ${r.message}`));
  }
  throw new InvalidPipelineInput(
    result.error.issues.map((issue) => {
      const path = issue.path.map(String).join('.');
      // A record key's own checks (reserved env names, the override allow-list) say more than "Invalid key in record".
      const message = issue.code === 'invalid_key' && issue.issues.length > 0 ? issue.issues.map((i) => i.message).join('; ') : issue.message;
      return `${path === '' ? '(input)' : path}: ${message}`;
    }),
  );
}
