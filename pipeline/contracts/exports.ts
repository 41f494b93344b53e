/**
 * stage2Export and stage3Export: a trainer's checkpoint as the one file the GPU scripts load.
 * Upstream's agent loads checkpoints with `torch.load(path)["state_dict"]` and `agent.`-prefixed
 * keys (recogdrive_diffusion_planner.py:279-294, recogdrive_agent.py:90-99), a FILE; the torchax
 * trainer writes orbax DIRECTORIES with `action_head.*` keys (row 1 of the upstream audit), and
 * Lightning writes epoch=E-step=S.ckpt files whose names are not known in advance. The export runs
 * the orchestrator's converter (docker/bridge/orbax_to_torch.py, shipped in the stage images) in
 * the :unified image, a CPU job, and leaves `policy.pt` + `policy.json` (every tensor with its shape
 * and dtype): a fixed path downstream stages mount, verified and fingerprinted like any output.
 */
import type { PipelineConfig } from '../input.ts';
import { EXPORTS, type ExportStage } from '../stages.ts';
import { trainerOf } from '../trainers.ts';
import { lastEpochCheckpoint, REPO_MOUNT } from './args.ts';
import type { StageContract } from './types.ts';

/** Where each trainer writes, in its container (and where its export mounts it). */
export const TRAINER_OUTPUTS = { stage2: `${REPO_MOUNT}/work_dirs/stage2_output`, stage3: `${REPO_MOUNT}/work_dirs/stage3_output` } as const;
export const STAGE2_EXPORT_MOUNT = `${REPO_MOUNT}/work_dirs/stage2_export`;
export const STAGE3_EXPORT_MOUNT = `${REPO_MOUNT}/work_dirs/stage3_export`;
const EXPORT_OUTPUTS: Readonly<Record<ExportStage, string>> = { stage2Export: STAGE2_EXPORT_MOUNT, stage3Export: STAGE3_EXPORT_MOUNT };

export const EXPORTED_FILE = 'policy.pt';
export const EXPORTED_MANIFEST = 'policy.json';
/** The prefix the agent's loaders strip (recogdrive_agent.py:94). */
export const AGENT_PREFIX = 'agent.';
/** The converter, as docker/stage-images/Dockerfile installs it. */
export const BRIDGE_SCRIPT = '/opt/recogdrive/bridge/orbax_to_torch.py';

/** The exported checkpoint file inside an export's output mounted at `mount`. */
export function exportedCheckpoint(mount: string): string {
  return `${mount}/${EXPORTED_FILE}`;
}

/** What the converter reads of a trainer's output: the last epoch's orbax checkpoint (torchax), or the whole Lightning output. */
function sourceCheckpoint(config: PipelineConfig, stage: ExportStage): string {
  const trainer = EXPORTS[stage];
  const mount = TRAINER_OUTPUTS[trainer];
  return trainerOf(config, trainer) === 'gpu' ? mount : lastEpochCheckpoint(mount, config[trainer].epochs);
}

function exportContract(stage: ExportStage): StageContract {
  const trainer = EXPORTS[stage];
  const output = EXPORT_OUTPUTS[stage];
  return {
    stage,
    title: `${trainer === 'stage2' ? 'Stage 2' : 'Stage 3'} checkpoint export (torch state dict)`,
    version: 1,
    image: 'unified',
    script: BRIDGE_SCRIPT,
    runtimeFixes: [],
    outputPath: () => output,
    render: (config) => ({
      args: [
        // lightning: the newest version_<V>'s newest epoch=<E>-step=<S>.ckpt, keys kept (already agent.*).
        ...(trainerOf(config, trainer) === 'gpu' ? ['--format', 'lightning'] : []),
        '--checkpoint', sourceCheckpoint(config, stage),
        '--output', `${output}/${EXPORTED_FILE}`,
        '--manifest', `${output}/${EXPORTED_MANIFEST}`,
        '--prefix', AGENT_PREFIX,
      ],
      addedArgs: [],
      env: {},
      inputs: [{ stage: trainer, containerPath: TRAINER_OUTPUTS[trainer] }],
      extraDockerFlags: [],
    }),
    verification: () => ({
      outputs: { kind: 'torch-state-dict', file: EXPORTED_FILE, manifest: EXPORTED_MANIFEST, prefix: AGENT_PREFIX },
      logMustContain: [],
      logMustNotContain: [],
    }),
    retry: 'A new attempt converts the checkpoint again (a CPU job of seconds to minutes) and replaces policy.pt.',
    notes: (config) => [
      trainerOf(config, trainer) === 'gpu'
        ? `Takes the newest checkpoint Lightning kept (lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt, a name hydra cannot take as a value), keeps only its state_dict and checks its keys are "${AGENT_PREFIX}*".`
        : `Converts the orbax checkpoint ${sourceCheckpoint(config, stage)} ("action_head.*" keys) to a torch state dict with "${AGENT_PREFIX}" keys.`,
    ],
  };
}

export const stage2Export = exportContract('stage2Export');
export const stage3Export = exportContract('stage3Export');
