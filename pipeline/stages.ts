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

/** Every stage that (transitively) depends on `stage`, in DAG order. */
export function descendantsOf(stage: StageName): StageName[] {
  return STAGES.filter((candidate) => candidate !== stage && ancestorsOf(candidate).includes(stage));
}

/** Every stage `stage` (transitively) depends on, in DAG order. */
export function ancestorsOf(stage: StageName): StageName[] {
  const seen = new Set<StageName>();
  const visit = (s: StageName): void => {
    for (const dep of STAGE_DEPENDENCIES[s]) {
      if (!seen.has(dep)) {
        seen.add(dep);
        visit(dep);
      }
    }
  };
  visit(stage);
  return STAGES.filter((s) => seen.has(s));
}
