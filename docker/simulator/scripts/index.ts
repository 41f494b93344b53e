/** The stage scripts the simulator plays, by the basename `python <path>` is given. */
import type { ScriptMain } from './context.ts';
import { featureCache } from './feature-cache.ts';
import { gpuGrpoTraining, gpuImitationTraining } from './gpu-training.ts';
import { metricCache } from './metric-cache.ts';
import { orbaxToTorch } from './orbax-to-torch.ts';
import { pdmScore } from './pdm-score.ts';
import { plannerTraining } from './planner-training.ts';
import { vlmFinetune } from './vlm-finetune.ts';

export const SCRIPTS: Readonly<Record<string, ScriptMain>> = {
  'internvl_chat_finetune_torchax.py': vlmFinetune,
  'run_caching_recogdrive_torchax.py': featureCache,
  'run_training_recogdrive_torchax.py': plannerTraining,
  'run_training_recogdrive.py': gpuImitationTraining,
  'run_training_recogdrive_rl.py': gpuGrpoTraining,
  'run_metric_caching.py': metricCache,
  'run_pdm_score_recogdrive.py': pdmScore,
  // docker/bridge/orbax_to_torch.py: the torchax checkpoint as the torch file the GPU scripts load.
  'orbax_to_torch.py': orbaxToTorch,
};
