/**
 * The DiT planner's parameters (ReCogDriveDiffusionPlanner, the agent's `action_head`), a handful
 * of each part. torchax saves them as the agent's own names (`action_head.*`); Lightning's
 * checkpoints prefix the module attribute (`agent.action_head.*`, AgentLightningModule.agent); the
 * GRPO reference policy is loaded into the planner itself, so its keys lose `agent.action_head.`.
 */
import { plausibleShape } from './scripts/orbax-to-torch.ts';

export const PLANNER_PARAMS: readonly string[] = [
  'action_head.feature_encoder.weight',
  'action_head.feature_encoder.bias',
  'action_head.dit.x_embedder.weight',
  'action_head.dit.t_embedder.mlp.0.weight',
  'action_head.dit.blocks.0.attn.qkv.weight',
  'action_head.dit.blocks.0.mlp.fc1.weight',
  'action_head.dit.final_layer.linear.weight',
  'action_head.status_encoder.weight',
];

/** Keys of a Lightning checkpoint's state_dict (the VLM's `agent.model.*` are dropped by on_save_checkpoint). */
export const LIGHTNING_PLANNER_KEYS: readonly string[] = PLANNER_PARAMS.map((name) => `agent.${name}`);

/** The planner's own state_dict keys (what `self.state_dict()` of ReCogDriveDiffusionPlanner holds). */
export const PLANNER_MODULE_KEYS: readonly string[] = PLANNER_PARAMS.map((name) => name.slice('action_head.'.length));

/** A shape per parameter, the same wherever it is saved (the converter's DiT-small shapes), so loaders can compare shapes. */
export function parameterShape(name: string): number[] {
  return plausibleShape(name);
}
