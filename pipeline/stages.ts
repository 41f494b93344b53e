/**
 * The ReCogDrive pipeline DAG: stage names and their dependencies.
 *
 *   stage1 ─> featureCache ─> stage2 ─┐
 *                  └──────────────────┼─> stage3 ─> eval
 *   metricCache ──────────────────────┘
 */
export const STAGES = ['stage1', 'featureCache', 'stage2', 'metricCache', 'stage3', 'eval'] as const;
export type StageName = (typeof STAGES)[number];

/** Direct upstream stages whose artifacts a stage reads. */
export const STAGE_DEPENDENCIES: Readonly<Record<StageName, readonly StageName[]>> = {
  stage1: [],
  featureCache: ['stage1'],
  stage2: ['featureCache'],
  metricCache: [],
  stage3: ['featureCache', 'metricCache', 'stage2'],
  eval: ['stage3'],
};

/** Short, DNS-safe stage labels for VM, container and directory names. */
export const STAGE_SLUGS: Readonly<Record<StageName, string>> = {
  stage1: 'stage1',
  featureCache: 'feature-cache',
  stage2: 'stage2',
  metricCache: 'metric-cache',
  stage3: 'stage3',
  eval: 'eval',
};

export function isStageName(value: string): value is StageName {
  return (STAGES as readonly string[]).includes(value);
}
