/** The complete launch spec of a stage: image, argv, env, mounts, docker flags. Pure. */
import { join as shellJoin } from 'shlex';
import { CONTRACTS } from './contracts/index.ts';
import { REPO_MOUNT } from './contracts/args.ts';
import { GPU_DOCKER_FLAGS } from './contracts/torchrun.ts';
import { markerLocation, WRAPPER_ENV, type MarkerLayout, type MarkerLocation } from './markers.ts';
import { containerName } from './naming.ts';
import type { PipelineConfig } from './input.ts';
import type { StageName } from './stages.ts';
import { gpusPerMachine } from './trainers.ts';

export type MountSource = { kind: 'host'; path: string } | { kind: 'artifact'; uri: string };

export interface Mount {
  source: MountSource;
  target: string;
  readOnly: boolean;
}

export interface LaunchSpec {
  stage: StageName;
  contractVersion: number;
  image: string;
  containerName: string;
  workdir: string;
  /** Flags common to every stage (TPU guide: privileged for /dev/vfio, host network) plus the stage's own. */
  dockerFlags: string[];
  mounts: Mount[];
  env: Record<string, string>;
  /** Argv after the image: the stage wrapper (STAGE_WRAPPER) followed by the stage's own command. */
  command: string[];
  /** Which arguments of the trainer the orchestrator added (not part of the TPU guide's command). */
  addedArgs: string[];
  output: { uri: string; containerPath: string };
  /**
   * The completion markers' folder beside the output (pipeline/markers.ts), mounted for the
   * wrapper. Absent in launch specs of runs started before the markers moved out of the data tree
   * (their wrapper writes them inside the output).
   */
  markers?: { uri: string; containerPath: string };
  /**
   * torchrun across several machines: the executor gives each worker its node rank and the
   * master's address (worker 0) as torchrun's PET_NODE_RANK / PET_MASTER_ADDR environment.
   */
  rendezvous?: { nodes: number; masterPort: number };
}

/** Where the wrapper writes the markers in the container: outside the repo mount and every output. */
export const MARKERS_MOUNT = '/var/lib/recogdrive/markers';

/** Where a launch's markers are in the artifact store. */
export function launchMarkers(launch: Pick<LaunchSpec, 'markers' | 'output'>): MarkerLocation {
  return launch.markers === undefined ? { layout: 'inside', uri: launch.output.uri } : { layout: 'beside', uri: launch.markers.uri };
}

export interface LaunchOptions {
  /** `beside` (default) for every new run; `inside` replays runs started before the markers moved out. */
  markers?: MarkerLayout;
}

/**
 * Every stage runs under the stage wrapper (docker/stage-wrapper/), which leaves the completion
 * protocol's markers (pipeline/markers.ts) next to the outputs and exits with the command's code.
 */
export const STAGE_WRAPPER = ['recogdrive-stage', '--'] as const;

/** The stage's own command of a launch spec: its argv without the wrapper prefix. */
export function stageCommand(spec: Pick<LaunchSpec, 'command'>): string[] {
  const wrapped = STAGE_WRAPPER.every((word, i) => spec.command[i] === word);
  return wrapped ? spec.command.slice(STAGE_WRAPPER.length) : [...spec.command];
}

/**
 * torchrun's environment for one worker of a multi-machine launch: torchrun reads its options from
 * PET_<OPTION> (torch.distributed.run's env action), so one launch spec serves every worker.
 */
export function rendezvousEnv(rendezvous: { nodes: number; masterPort: number }, worker: number, masterAddress: string): Record<string, string> {
  return {
    PET_NNODES: String(rendezvous.nodes),
    PET_NODE_RANK: String(worker),
    PET_MASTER_ADDR: masterAddress,
    PET_MASTER_PORT: String(rendezvous.masterPort),
  };
}

/** The guide runs with --rm; we keep exited containers so a restarted watcher can still read the exit code. */
export const COMMON_DOCKER_FLAGS = ['--privileged', '--net=host'] as const;

export function buildLaunchSpec(
  config: PipelineConfig,
  runId: string,
  stage: StageName,
  artifactUris: Readonly<Partial<Record<StageName, string>>>,
  options: LaunchOptions = {},
): LaunchSpec {
  const contract = CONTRACTS[stage];
  const rendered = contract.render(config);
  const outputUri = artifactUris[stage];
  if (outputUri === undefined) throw new Error(`no artifact URI for ${stage}`);
  const markers = (options.markers ?? 'beside') === 'beside' ? { uri: markerLocation(outputUri, 'beside').uri, containerPath: MARKERS_MOUNT } : undefined;

  const inputMounts: Mount[] = rendered.inputs.map((input) => {
    const uri = artifactUris[input.stage];
    if (uri === undefined) throw new Error(`${stage} reads ${input.stage}, which has no artifact URI`);
    return { source: { kind: 'artifact', uri }, target: input.containerPath, readOnly: true };
  });

  const script = [...(rendered.launcher ?? ['python']), rendered.script ?? contract.script, ...rendered.args, ...rendered.addedArgs];
  const command =
    contract.runtimeFixes.length === 0
      ? script
      : ['/bin/bash', '-c', [...contract.runtimeFixes.map((fix) => shellJoin(fix)), shellJoin(script)].join(' && ')];

  return {
    stage,
    contractVersion: contract.version,
    image: config.images[contract.image],
    containerName: containerName(runId, stage),
    workdir: REPO_MOUNT,
    // A container on a GPU machine gets its GPUs (NVIDIA container toolkit), whatever it runs.
    dockerFlags: [...COMMON_DOCKER_FLAGS, ...(gpusPerMachine(config[stage].compute) > 0 ? GPU_DOCKER_FLAGS : []), ...rendered.extraDockerFlags],
    mounts: [
      { source: { kind: 'host', path: config.paths.hostRepoDir }, target: REPO_MOUNT, readOnly: false },
      ...inputMounts,
      { source: { kind: 'artifact', uri: outputUri }, target: contract.outputPath(config), readOnly: false },
      ...(markers === undefined ? [] : [{ source: { kind: 'artifact', uri: markers.uri } as const, target: markers.containerPath, readOnly: false }]),
    ],
    // The user's extra env comes after the contract's, which it may not replace (see RESERVED_ENV);
    // the wrapper's (RECOGDRIVE_*, which the user may not set) come last. The executor adds the
    // attempt and the worker index.
    env: {
      ...rendered.env,
      ...config[stage].env,
      [WRAPPER_ENV.stage]: stage,
      [WRAPPER_ENV.outputDir]: contract.outputPath(config),
      ...(markers === undefined ? {} : { [WRAPPER_ENV.markerDir]: markers.containerPath }),
      [WRAPPER_ENV.outputCheck]: JSON.stringify(contract.verification(config).outputs),
    },
    command: [...STAGE_WRAPPER, ...command],
    addedArgs: rendered.addedArgs,
    output: { uri: outputUri, containerPath: contract.outputPath(config) },
    ...(markers === undefined ? {} : { markers }),
    ...(rendered.rendezvous === undefined ? {} : { rendezvous: rendered.rendezvous }),
  };
}

/**
 * `docker run` argv (without the leading "docker") for a launch spec. `hostPathOf` says where an
 * artifact URI is visible on the worker host (a gcsfuse mount, or the directory of a file:// URI).
 */
export function dockerRunArgs(
  spec: LaunchSpec,
  hostPathOf: (source: MountSource) => string,
  options: { detach?: boolean; labels?: Record<string, string>; env?: Record<string, string> } = {},
): string[] {
  const detach = options.detach ?? true;
  return [
    'run',
    ...(detach ? ['-d', '--name', spec.containerName] : ['--rm']),
    ...Object.entries(options.labels ?? {}).flatMap(([key, value]) => ['--label', `${key}=${value}`]),
    ...spec.dockerFlags,
    '--workdir',
    spec.workdir,
    ...spec.mounts.flatMap((m) => ['-v', `${hostPathOf(m.source)}:${m.target}${m.readOnly ? ':ro' : ''}`]),
    ...Object.entries({ ...spec.env, ...options.env }).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
    spec.image,
    ...spec.command,
  ];
}

/** Where a VM mounts gs://<bucket> (its bring-up, with gcsfuse): <root>/<bucket>. */
export const ARTIFACT_MOUNT_ROOT = '/mnt/artifacts';

/** Where a mount source appears on a host that sees artifact URIs under `artifactMountRoot`. */
export function defaultHostPath(source: MountSource, artifactMountRoot = ARTIFACT_MOUNT_ROOT): string {
  if (source.kind === 'host') return source.path;
  if (source.uri.startsWith('file://')) return source.uri.slice('file://'.length);
  // gs://bucket/prefix is mounted with gcsfuse at <root>/bucket on the worker host.
  return `${artifactMountRoot}/${source.uri.slice('gs://'.length)}`;
}

/** A human-readable one-line `docker run` command (shell-quoted). */
export function dockerRunCommandLine(spec: LaunchSpec): string {
  return shellJoin(['docker', ...dockerRunArgs(spec, (s) => defaultHostPath(s))]);
}
