/**
 * A run of the ReCogDrive pipeline: validates its one input object, plans it, and runs each
 * stage as a child workflow `<runId>/<stage>` as soon as the stages it reads have succeeded
 * (stage1 → featureCache → stage2; metricCache from the start; stage3 after all three; eval
 * last). The first failure cancels every other branch; cancelling the run cancels every stage,
 * and each stage releases its compute before the run ends.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  upsertSearchAttributes,
  setHandler,
  TerminatedFailure,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { RecogdriveActivities } from '../activities/index.ts';
import { FailureType, NON_RETRYABLE_ACTIVITY_ERRORS } from '../pipeline/failures.ts';
import { CONTRACTS } from '../pipeline/contracts/index.ts';
import { workerHostPaths, type WorkerHostPath } from '../pipeline/host-roots.ts';
import { InvalidPipelineInput, parsePipelineInput, type ComputeBackend, type ParseOptions, type PipelineConfig } from '../pipeline/input.ts';
import type { LaunchOptions } from '../pipeline/launch.ts';
import { consumerRecordsOf, runRecordOf } from '../pipeline/lineage.ts';
import { gpuHoursOf, tpuHoursOf, upsertUsage } from '../pipeline/cost.ts';
import { runIdProblem, stageLogsUri } from '../pipeline/naming.ts';
import { buildPlan, type Plan, type PlannedStage, type StageDecision } from '../pipeline/plan.ts';
import { mergeProgress } from '../pipeline/progress.ts';
import { stageRunInput, type StageResult } from '../pipeline/stage-run.ts';
import { STAGES, type StageName } from '../pipeline/stages.ts';
import type { RunStatus, RunSummary, StageState, StageStatus } from '../pipeline/status.ts';
import { runStatusQuery, stageUpdateSignal } from './messages.ts';
import { EXPERIMENT_ATTRIBUTE, RERUN_OF_ATTRIBUTE, STATUS_ATTRIBUTE } from './search-attributes.ts';
import { recogdriveStage } from './stage.ts';

const { preflight, resolveImages } = proxyActivities<RecogdriveActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
});
// Planning reads and writes lineage: a storage outage is waited out (about 4 minutes of back-off),
// never planned around; past it the run fails with the store's error. Only activity options change:
// replay matches activities by type and id.
const { lookupArtifacts, recordRun, verifyProvided } = proxyActivities<RecogdriveActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
});

/** Runs started before fingerprints and reuse existed replay without them. */
const ARTIFACT_REUSE_PATCH = 'artifact-reuse-v1';
/** Runs started before they had search attributes replay without setting them. */
const SEARCH_ATTRIBUTES_PATCH = 'search-attributes-v1';
/**
 * Runs started before the completion markers moved beside the outputs (out of the data tree that
 * upstream readers iterate) keep launching their stages with the markers inside the outputs.
 */
const MARKERS_BESIDE_OUTPUTS_PATCH = 'markers-beside-outputs-v1';
/** Runs started before the input was checked against the upstream code replay without those refusals. */
const UPSTREAM_CHECKS_PATCH = 'upstream-checks-v1';
/** Runs started before the input's bounds, env policy and prototype-key refusals (pipeline/input-limits.ts) replay without them. */
const INPUT_LIMITS_PATCH = 'input-limits-v1';
/**
 * Runs started before the trainer flavours and the checkpoint exports (stage2Export, stage3Export)
 * replay with the old DAG and the TPU port everywhere (pipeline/input.ts legacyConfig).
 */
const CHECKPOINT_EXPORTS_PATCH = 'checkpoint-exports-v1';
/** Runs that failed on a stage without a message of its own (cancelled, terminated) replay with the SDK's wording. */
const READABLE_STAGE_FAILURES_PATCH = 'readable-stage-failures-v1';
/** What a run's status says when the run was cancelled (the clients add by whom). */
const RUN_CANCELLED = 'run cancelled';
/** Runs started before a progress update without totals kept the known ones replay with updates replacing progress. */
const PROGRESS_KEEPS_TOTALS_PATCH = 'progress-keeps-totals-v1';
/** Runs started before the run id was checked here may have any workflow id; they replay unchecked. */
const RUN_ID_CHECK_PATCH = 'run-id-check-v1';

export async function recogdrivePipeline(rawInput: unknown): Promise<RunSummary> {
  const runId = workflowInfo().workflowId;
  // `temporal workflow start --workflow-id '../x'` bypasses every client: refuse before anything is created.
  // The patch is asked only for ids that fail the check, so runs with good ids record no marker.
  const runIdRefusal = runIdProblem(runId);
  if (runIdRefusal !== undefined && patched(RUN_ID_CHECK_PATCH)) refuseInvalidRunId(runIdRefusal);
  const config = validated(rawInput, {
    upstreamChecks: patched(UPSTREAM_CHECKS_PATCH),
    legacyDag: !patched(CHECKPOINT_EXPORTS_PATCH),
    limits: patched(INPUT_LIMITS_PATCH),
  });
  const launchOptions: LaunchOptions = { markers: patched(MARKERS_BESIDE_OUTPUTS_PATCH) ? 'beside' : 'inside' };
  // Until the lookup is done the status shows the plan without reuse (every selected stage pending).
  let plan = buildPlan(config, runId, {}, launchOptions);
  let status = initialStatus(plan, config);
  let byStage = new Map<StageName, StageStatus>(status.stages.map((s) => [s.stage, s]));

  setHandler(runStatusQuery, () => status);
  const keepsProgressTotals = patched(PROGRESS_KEEPS_TOTALS_PATCH);
  setHandler(stageUpdateSignal, (update) => {
    const stage = byStage.get(update.stage);
    if (stage === undefined || stage.state !== 'running') return;
    const sameAttempt = stage.attempt === update.attempt;
    stage.attempt = update.attempt;
    if (update.phase !== undefined) stage.phase = update.phase;
    if (update.computeName !== undefined) stage.computeName = update.computeName;
    if (update.progress !== undefined) stage.progress = keepsProgressTotals && sameAttempt ? mergeProgress(stage.progress, update.progress) : update.progress;
    if (update.computeEvent !== undefined) stage.computeEvent = update.computeEvent;
    if (update.usage !== undefined) stage.compute = upsertUsage(stage.compute ?? [], update.usage);
  });

  const searchable = patched(SEARCH_ATTRIBUTES_PATCH);
  if (searchable) {
    upsertSearchAttributes([
      { key: EXPERIMENT_ATTRIBUTE, value: config.experiment },
      { key: STATUS_ATTRIBUTE, value: 'running' },
      ...(config.reuse.rerunOf === undefined ? [] : [{ key: RERUN_OF_ATTRIBUTE, value: config.reuse.rerunOf }]),
    ]);
  }
  try {
    if (patched(ARTIFACT_REUSE_PATCH)) {
      plan = await planWithReuse(config, runId, launchOptions);
      status = initialStatus(plan, config);
      byStage = new Map<StageName, StageStatus>(status.stages.map((s) => [s.stage, s]));
    } else {
      await checkBackends(plan.stages.filter((s) => s.decision === 'RUN').map((s) => s.compute!.backend), config.artifactRoot, undefined, workerHostPaths(config));
    }
    const results = await runDag(config, plan, byStage);
    status.state = 'succeeded';
    status.endedAt = new Date().toISOString();
    if (searchable) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status.state }]);
    return summarize(plan, status, results);
  } catch (error) {
    status.state = isCancellation(error) ? 'cancelled' : 'failed';
    status.endedAt = new Date().toISOString();
    // Who asked is in the cancel request, which workflow code does not see: the clients add it (workers/cancel-request.ts).
    status.error = isCancellation(error) ? RUN_CANCELLED : error instanceof Error ? error.message : String(error);
    if (searchable) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status.state }]);
    throw error;
  }
}

/**
 * Checks the backends, resolves image digests, looks up verified outputs with the plan's
 * fingerprints, plans (RUN / REUSE with reasons) and records the plan and what it consumes.
 */
async function planWithReuse(config: PipelineConfig, runId: string, launchOptions: LaunchOptions): Promise<Plan> {
  const selected = config.stages.map((stage) => ({ stage, image: config.images[CONTRACTS[stage].image], compute: config[stage].compute }));
  await checkBackends(
    selected.map((s) => s.compute.backend),
    config.artifactRoot,
    config.gcp?.project,
    workerHostPaths(config),
  );
  const context = await asRunFailure(async () => {
    const imageDigests = await resolveImages({ images: selected });
    return lookupArtifacts({ config, imageDigests });
  });
  const plan = buildPlan(config, runId, context, launchOptions);
  await checkProvidedInputs(config, plan);
  const now = new Date().toISOString();
  await asRunFailure(() => recordRun({ artifactRoot: config.artifactRoot, run: runRecordOf(plan, now, workflowInfo().firstExecutionRunId), consumers: consumerRecordsOf(plan, now) }));
  return plan;
}

/**
 * Outputs given by URI are checked against their stage's contract before a stage reads them:
 * e.g. a Stage 2 output without the last epoch's checkpoint, which Stage 3 would load as its
 * reference policy (upstream only warns and trains from random weights).
 */
async function checkProvidedInputs(config: PipelineConfig, plan: Plan): Promise<void> {
  const read = new Set(plan.stages.filter((s) => s.decision === 'RUN').flatMap((s) => s.dependsOn));
  const artifacts = plan.stages
    .filter((s) => s.decision === 'PROVIDED' && read.has(s.stage))
    .map((s) => ({ stage: s.stage, uri: s.artifactUri!, verification: CONTRACTS[s.stage].verification(config) }));
  if (artifacts.length === 0) return;
  const bad = (await verifyProvided({ artifacts })).filter((r) => r.problems.length > 0);
  if (bad.length === 0) return;
  throw ApplicationFailure.create({
    type: FailureType.StageInputInvalid,
    message: bad.map((b) => `providedArtifacts.${b.stage} (${b.uri}) does not hold a complete ${b.stage} output: ${b.problems.join('; ')}`).join('\n'),
    nonRetryable: true,
    details: [bad],
  });
}

/** Fails the run, before anything is created, when a backend or the artifact root is unusable. */
async function checkBackends(backends: ComputeBackend[], artifactRoot: string, project: string | undefined, hostPaths: WorkerHostPath[]): Promise<void> {
  await asRunFailure(() => preflight({ backends: [...new Set(backends)], artifactRoot, ...(project === undefined ? {} : { project }), hostPaths }));
}

/** An activity's typed failure (bad input, backend unavailable) as the run's own failure, with its message. */
async function asRunFailure<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : undefined;
    if (!(cause instanceof ApplicationFailure)) throw error;
    throw ApplicationFailure.create({ type: cause.type ?? FailureType.BackendUnavailable, message: cause.message, nonRetryable: true });
  }
}

/** Fails the run (not retried) when its workflow id is not a run id: names, paths and labels derive from it. */
function refuseInvalidRunId(problem: string): never {
  throw ApplicationFailure.create({ type: FailureType.InvalidRunId, message: `invalid run id: ${problem}`, nonRetryable: true });
}

function validated(rawInput: unknown, options: ParseOptions): PipelineConfig {
  try {
    return parsePipelineInput(rawInput, options);
  } catch (error) {
    if (error instanceof InvalidPipelineInput) {
      throw ApplicationFailure.create({
        type: FailureType.InvalidPipelineInput,
        message: error.message,
        nonRetryable: true,
        details: [error.issues],
      });
    }
    throw error;
  }
}

/** Runs every RUN stage once its inputs exist; the first failure cancels the rest. */
async function runDag(
  config: PipelineConfig,
  plan: Plan,
  byStage: Map<StageName, StageStatus>,
): Promise<Map<StageName, StageResult>> {
  const planned = new Map<StageName, PlannedStage>(plan.stages.map((s) => [s.stage, s]));
  const results = new Map<StageName, StageResult>();
  const started = new Map<StageName, Promise<void>>();
  let firstFailure: { stage: StageName; error: unknown } | undefined;
  const branches = new CancellationScope();
  /** Why this run cancelled a stage: the run itself was cancelled, or another stage failed first. */
  const cancelledBecause = (): string => (firstFailure === undefined ? RUN_CANCELLED : `cancelled because stage ${firstFailure.stage} failed`);

  const runStage = (stage: StageName): Promise<void> => {
    const existing = started.get(stage);
    if (existing !== undefined) return existing;
    const promise = (async () => {
      const step = planned.get(stage)!;
      if (step.decision !== 'RUN') return;
      await Promise.all(step.dependsOn.map(runStage));
      const stageStatus = byStage.get(stage)!;
      stageStatus.state = 'running';
      stageStatus.startedAt = new Date().toISOString();
      try {
        const result = await executeChild(recogdriveStage, {
          workflowId: step.workflowId!,
          args: [stageRunInput(config, plan.runId, step)],
          // Cancel (never terminate) children when the run goes away, so their cleanup runs.
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        });
        results.set(stage, result);
        Object.assign(stageStatus, { state: 'succeeded', attempt: result.attempts, endedAt: new Date().toISOString(), ...(result.compute === undefined ? {} : { compute: result.compute }) });
        delete stageStatus.phase;
      } catch (error) {
        // A stage cancelled from outside (not by this run) is a failure of the run.
        const cancelledByRun = isCancellation(error) && branches.consideredCancelled;
        Object.assign(stageStatus, {
          state: cancelledByRun ? 'cancelled' : 'failed',
          endedAt: new Date().toISOString(),
          error: cancelledByRun ? cancelledBecause() : stageFailureText(error, step.workflowId!),
        });
        delete stageStatus.phase;
        if (firstFailure === undefined && !cancelledByRun) {
          firstFailure = { stage, error };
          branches.cancel();
        }
        throw error;
      }
    })();
    started.set(stage, promise);
    return promise;
  };

  await branches.run(() => Promise.allSettled(STAGES.map(runStage)));
  const notStarted = firstFailure !== undefined || branches.consideredCancelled ? `not started: ${cancelledBecause()}` : 'an upstream stage did not succeed';
  for (const s of byStage.values()) {
    if (s.state === 'pending' && s.decision === 'RUN') Object.assign(s, { state: 'cancelled', error: notStarted });
  }
  if (firstFailure !== undefined) {
    // The run's failure is in its history: runs that failed with the SDK's wording before keep it on replay.
    const failed = firstFailure;
    const readable = stageFailureText(failed.error, planned.get(failed.stage)!.workflowId!);
    const message = readable !== failureMessage(failed.error) && patched(READABLE_STAGE_FAILURES_PATCH) ? readable : failureMessage(failed.error);
    throw ApplicationFailure.create({
      type: FailureType.StageFailed,
      message: `stage ${firstFailure.stage} failed: ${message}`,
      nonRetryable: true,
      details: [{ stage: firstFailure.stage, type: failureType(firstFailure.error) }],
      cause: firstFailure.error instanceof Error ? firstFailure.error : undefined,
    });
  }
  if ([...planned.values()].some((s) => s.decision === 'RUN' && !results.has(s.stage))) {
    // Only a cancelled run leaves a stage without result or failure; each has released its compute by now.
    throw new CancelledFailure('run cancelled');
  }
  return results;
}

/** The type the failed stage gave its failure (e.g. StageCodeError): the first application failure of the chain. */
function failureType(error: unknown): string | undefined {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof ApplicationFailure && current.type) return current.type;
  }
  return undefined;
}

/**
 * What a stage's failure says to a user: the message it gave, else what happened to its workflow
 * (cancelled, terminated, timed out), never the SDK's "Child Workflow execution failed".
 */
function stageFailureText(error: unknown, workflowId: string): string {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof ApplicationFailure) return current.message;
  }
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof CancelledFailure) return `cancelled from outside the run: its workflow ${workflowId} got a cancel request of its own (not from this run)`;
    if (current instanceof TerminatedFailure) return `its workflow ${workflowId} was terminated`;
    if (current instanceof TimeoutFailure) return `its workflow ${workflowId} timed out (${current.timeoutType})`;
  }
  return failureMessage(error);
}

/** The message the failed stage gave (first application failure of the chain), else the error's own. */
function failureMessage(error: unknown): string {
  for (let current: unknown = error; current instanceof Error; current = current.cause) {
    if (current instanceof ApplicationFailure) return current.message;
  }
  return error instanceof Error ? error.message : String(error);
}

const INITIAL_STATE: Record<StageDecision, StageState> = { RUN: 'pending', REUSE: 'reused', PROVIDED: 'provided', SKIP: 'skipped' };

function initialStatus(plan: Plan, config: PipelineConfig): RunStatus {
  return {
    runId: plan.runId,
    experiment: config.experiment,
    state: 'running',
    startedAt: new Date().toISOString(),
    ...(plan.rerunOf === undefined ? {} : { rerunOf: plan.rerunOf }),
    stages: plan.stages.map((s) => ({
      stage: s.stage,
      decision: s.decision,
      state: INITIAL_STATE[s.decision],
      attempt: 0,
      reason: s.reason,
      ...(s.artifactUri === undefined ? {} : { artifactUri: s.artifactUri }),
      ...(s.fingerprint === undefined ? {} : { fingerprint: s.fingerprint }),
      ...(s.workflowId === undefined ? {} : { workflowId: s.workflowId, logsUri: stageLogsUri(config.artifactRoot, plan.runId, s.stage) }),
    })),
  };
}

function summarize(plan: Plan, status: RunStatus, results: Map<StageName, StageResult>): RunSummary {
  return {
    runId: plan.runId,
    ...(plan.rerunOf === undefined ? {} : { rerunOf: plan.rerunOf }),
    experiment: plan.experiment,
    nothingChanged: plan.stages.every((s) => s.decision !== 'RUN'),
    startedAt: status.startedAt,
    endedAt: status.endedAt!,
    stages: plan.stages.map((s) => {
      const result = results.get(s.stage);
      return {
        stage: s.stage,
        decision: s.decision,
        reason: s.reason,
        ...(s.artifactUri === undefined ? {} : { artifactUri: s.artifactUri }),
        ...(s.fingerprint === undefined ? {} : { fingerprint: s.fingerprint }),
        ...(result === undefined
          ? {}
          : {
              attempts: result.attempts,
              computeName: result.computeName,
              outputs: result.outputs,
              ...(result.compute === undefined ? {} : { compute: result.compute, tpuHours: tpuHoursOf(result.compute, Date.now()), gpuHours: gpuHoursOf(result.compute, Date.now()) }),
              workMs: result.exitedAt - result.startedAt,
              processStartedAt: result.startedAt,
              processExitedAt: result.exitedAt,
            }),
      };
    }),
  };
}
