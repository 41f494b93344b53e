/**
 * The input checked against the upstream code (pipeline/upstream.ts): every field that would
 * crash a stage after its VM is paid for, or that upstream silently ignores, is refused here,
 * naming the field and the upstream reason. Pure; run by parsePipelineInput.
 */
import type { PipelineConfig } from './input.ts';
import type { StageName } from './stages.ts';
import { computeProblem, trainerOf } from './trainers.ts';
import { defectsOf, overrideRules, UPSTREAM_CODE, UPSTREAM_DEFECTS, type UpstreamRefusal } from './upstream.ts';

/** The maps version navsim hard-codes (navsim/planning/metric_caching/caching.py:54); NUPLAN_MAP_VERSION is read by nothing. */
export const NUPLAN_MAP_VERSION = 'nuplan-maps-v1.0';

const PLANNER_STAGES = ['stage2', 'stage3', 'eval'] as const;

export function upstreamRefusals(config: PipelineConfig): UpstreamRefusal[] {
  const refusals: UpstreamRefusal[] = [];
  const refuse = (path: string, message: string) => refusals.push({ path, message });
  const selected = new Set<StageName>(config.stages);
  const fixes = new Set(config.upstreamFixes);

  for (const stage of config.stages) {
    const trainer = trainerOf(config, stage);
    for (const defect of defectsOf(stage, trainer)) {
      if (fixes.has(defect)) continue;
      const { fact, fix, instead } = UPSTREAM_DEFECTS[defect];
      refuse(
        ['stage3', 'eval'].includes(stage) ? `${stage}.trainer` : 'stages',
        `${stage} cannot run on the upstream code (${UPSTREAM_CODE}): ${fact}.${instead === undefined ? '' : ` What works: ${instead}.`} If your checkout fixes this (${fix}), declare it with "upstreamFixes": ["${defect}"]`,
      );
    }
    const { allowed, refused } = overrideRules(stage, trainer);
    for (const key of Object.keys(config[stage].overrides)) {
      const reason = refused[key];
      if (reason !== undefined) refuse(`${stage}.overrides.${key}`, `refused: ${reason}`);
      else if (!allowed.includes(key)) refuse(`${stage}.overrides.${key}`, `not an allowed override for ${stage} with trainer "${trainer}" (allowed: ${allowed.join(', ') || 'none'})`);
    }
    const problem = computeProblem(stage, trainer, config[stage].compute);
    if (problem !== undefined) refuse(`${stage}.compute`, problem);
  }

  if (selected.has('metricCache') && config.metricCache.worker !== 'ray_distributed_no_torch' && 'worker.threads_per_node' in config.metricCache.overrides) {
    refuse(
      'metricCache.overrides.worker.threads_per_node',
      `refused: only the Ray worker configs have threads_per_node (config/common/worker/ray_distributed*.yaml); with worker ${config.metricCache.worker} set metricCache.maxWorkers`,
    );
  }

  // Typed knobs that change nothing upstream: only their upstream value is accepted.
  for (const stage of PLANNER_STAGES) {
    if (!selected.has(stage)) continue;
    const s = config[stage];
    if (s.camType !== 'single') {
      refuse(`${stage}.camType`, 'agent.cam_type is accepted but read by nothing upstream (ReCogDriveAgent stores it nowhere; the cameras come from its SensorConfig): leave it at "single"');
    }
    if (s.vlmType !== 'internvl' && s.cacheHiddenState) {
      refuse(`${stage}.vlmType`, 'with cached hidden states the agent never reads agent.vlm_type (it only picks the backbone in no-cache mode, recogdrive_agent.py:60-70), and the feature cache is made with InternVL: leave it at "internvl"');
    }
    if (!s.cacheHiddenState && trainerOf(config, stage) !== 'gpu') {
      refuse(`${stage}.cacheHiddenState`, 'agent.cache_hidden_state=False builds the VLM backbone on cuda:<LOCAL_RANK> (recogdrive_agent.py:60-70): there is no CUDA on a TPU VM; train on the feature cache (true), or use trainer "gpu"');
    }
  }
  if (selected.has('featureCache')) {
    if (config.featureCache.vlmType !== 'internvl') {
      refuse('featureCache.vlmType', 'the caching script always loads InternVLChatModel (run_caching_recogdrive_torchax.py:162) whatever agent.vlm_type says: leave it at "internvl"');
    }
    if (config.featureCache.numWorkers !== 0) {
      refuse('featureCache.numWorkers', 'the caching script forces num_workers=0 for TPU compatibility (run_caching_recogdrive_torchax.py:289-295), so this setting would change nothing: leave it at 0');
    }
  }
  if (selected.has('stage1') && config.stage1.downSampleRatio !== 0.5) {
    refuse('stage1.downSampleRatio', "internvl_chat_finetune_torchax.py never reads --down_sample_ratio (the model's config.json decides it), so this setting would change nothing: leave it at 0.5");
  }
  if (config.paths.mapVersion !== NUPLAN_MAP_VERSION) {
    refuse(
      'paths.mapVersion',
      `NUPLAN_MAP_VERSION is read by nothing upstream: navsim hard-codes map_version="${NUPLAN_MAP_VERSION}" (navsim/planning/metric_caching/caching.py:54); name your maps folder ${NUPLAN_MAP_VERSION}`,
    );
  }
  return refusals;
}
