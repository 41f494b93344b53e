/**
 * The ReCogDrive pipeline DAG: stage names and their dependencies.
 *
 *   stage1 ─> featureCache ─> stage2 ─> stage2Export ─┐
 *                  └──────────────────────────────────┼─> stage3 ─> stage3Export ─> eval
 *   metricCache ──────────────────────────────────────┘
 *
 * The exports turn a trainer's checkpoint (a torchax orbax directory, or Lightning's .ckpt files)
 * into the one file the GPU scripts load (`torch.load(path)["state_dict"]`, keys `agent.*`):
 * Stage 3's reference policy, and the final DiT checkpoint the evaluation scores.
 */
export const STAGES = ['stage1', 'featureCache', 'stage2', 'stage2Export', 'metricCache', 'stage3', 'stage3Export', 'eval'] as const;
export type StageName = (typeof STAGES)[number];

/** Direct upstream stages whose artifacts a stage reads. */
export const STAGE_DEPENDENCIES: Readonly<Record<StageName, readonly StageName[]>> = {
  stage1: [],
  featureCache: ['stage1'],
  stage2: ['featureCache'],
  stage2Export: ['stage2'],
  metricCache: [],
  stage3: ['featureCache', 'metricCache', 'stage2Export'],
  stage3Export: ['stage3'],
  eval: ['stage3Export'],
};

/**
 * The DAG of runs started before the checkpoint exports existed (they replay with it): Stage 3
 * read Stage 2's output and the evaluation Stage 3's directly.
 */
export const LEGACY_STAGE_DEPENDENCIES: Readonly<Record<StageName, readonly StageName[]>> = {
  ...STAGE_DEPENDENCIES,
  stage2Export: [],
  stage3: ['featureCache', 'metricCache', 'stage2'],
  stage3Export: [],
  eval: ['stage3'],
};

/** A stage's dependencies in a run's DAG (`legacyDag`: a run started before the exports). */
export function dependenciesOf(config: { legacyDag?: boolean }, stage: StageName): readonly StageName[] {
  return (config.legacyDag === true ? LEGACY_STAGE_DEPENDENCIES : STAGE_DEPENDENCIES)[stage];
}

/** Short, DNS-safe stage labels for VM, container and directory names. */
export const STAGE_SLUGS: Readonly<Record<StageName, string>> = {
  stage1: 'stage1',
  featureCache: 'feature-cache',
  stage2: 'stage2',
  stage2Export: 'stage2-export',
  metricCache: 'metric-cache',
  stage3: 'stage3',
  stage3Export: 'stage3-export',
  eval: 'eval',
};

/** The stages that export a trainer's checkpoint, and the trainer each one exports. */
export const EXPORTS = { stage2Export: 'stage2', stage3Export: 'stage3' } as const satisfies Partial<Record<StageName, StageName>>;
export type ExportStage = keyof typeof EXPORTS;

export function isStageName(value: string): value is StageName {
  return (STAGES as readonly string[]).includes(value);
}
