/** Queries and signals of the pipeline and stage workflows. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { RunStatus, StageStatus, StageUpdate } from '../pipeline/status.ts';

/** Per-stage state, attempt, progress and artifact URIs of a run. */
export const runStatusQuery = defineQuery<RunStatus>('status');

/** State of one stage workflow. */
export const stageStatusQuery = defineQuery<StageStatus>('stageStatus');

/** A stage (or its watcher) reporting phase, compute and progress to its run. */
export const stageUpdateSignal = defineSignal<[StageUpdate]>('stageUpdate');
