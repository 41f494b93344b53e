/**
 * One stage of a run: acquire compute → launch → watch → verify → release. Release (and
 * stopping a container that may still run) happens in a non-cancellable scope on every path:
 * success, failure and cancellation. Infrastructure trouble gets a new attempt on new compute;
 * a code error, an out-of-memory kill or a bad output does not.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { RecogdriveActivities } from '../activities/index.ts';
import type { ComputeLease, VerifyReport } from '../activities/types.ts';
import { classifyExit, FailureType, NON_RETRYABLE_ACTIVITY_ERRORS, RETRYABLE_STAGE_FAILURES } from '../pipeline/failures.ts';
import { computeName } from '../pipeline/naming.ts';
import type { StageRunInput, StageResult } from '../pipeline/stage-run.ts';
import type { StagePhase, StageStatus, StageUpdate } from '../pipeline/status.ts';
import { stageStatusQuery, stageUpdateSignal } from './messages.ts';

export async function recogdriveStage(input: StageRunInput): Promise<StageResult> {
  const { stage, launch, limits } = input;
  const parent = workflowInfo().parent;
  const status: StageStatus = {
    stage,
    decision: 'RUN',
    state: 'running',
    attempt: 0,
    artifactUri: launch.output.uri,
    workflowId: workflowInfo().workflowId,
    startedAt: new Date().toISOString(),
  };
  setHandler(stageStatusQuery, () => status);

  const short = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
  });
  // The watcher re-attaches after a worker restart, so it is retried for as long as the stage may
  // run; the budget covers all its retries together.
  const watcher = proxyActivities<RecogdriveActivities>({
    scheduleToCloseTimeout: limits.timeoutMs,
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    retry: { initialInterval: '1s', maximumInterval: '30s', nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
  });
  // Cleanup must not give up: a leaked TPU costs money every hour.
  const cleanup = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    retry: { initialInterval: '1s', maximumInterval: '5 minutes' },
  });

  /** The attempt's FAILED.json when its wrapper could not write one (killed, hung, host lost); the first verdict stands. */
  const recordFailure = (attempt: number, failure: ApplicationFailure, cancelled: boolean): Promise<unknown> =>
    CancellationScope.nonCancellable(() =>
      cleanup.recordAttemptFailure({
        outputUri: launch.output.uri,
        marker: {
          schema: 1,
          stage,
          attempt,
          worker: 0,
          exitCode: null,
          signal: null,
          finishedAt: new Date().toISOString(),
          lastLines: [],
          writer: 'orchestrator',
          reason: cancelled ? 'cancelled' : `${failure.type ?? 'failed'}: ${failure.message}`,
        },
      }),
    );

  // Not awaited: the signal rides along with the next command instead of costing a round trip per phase.
  const report = (update: Omit<StageUpdate, 'stage' | 'attempt'>): void => {
    if (update.phase !== undefined) status.phase = update.phase;
    if (update.computeName !== undefined) status.computeName = update.computeName;
    if (parent === undefined) return;
    getExternalWorkflowHandle(parent.workflowId)
      .signal(stageUpdateSignal, { stage, attempt: status.attempt, ...update })
      // Display only: a closed or terminated run must never keep this stage from releasing its compute.
      .catch(() => {});
  };
  const enter = (phase: StagePhase) => report({ phase });

  const markers = patched(STAGE_MARKERS_PATCH);

  /** A verified output recorded for lineage and reuse; `attempt` is the one whose DONE.json it is. */
  const recorded = async (verified: VerifyReport, attempt: number, computeName: string, times: { startedAt: number; exitedAt: number }): Promise<StageResult> => {
    if (markers) {
      await short.recordArtifact({
        artifactRoot: input.artifact.artifactRoot,
        record: {
          schema: 1,
          stage,
          fingerprint: input.artifact.fingerprint,
          uri: launch.output.uri,
          artifactRoot: input.artifact.artifactRoot,
          components: input.artifact.components,
          inputs: input.artifact.inputs,
          imageDigest: input.artifact.imageDigest,
          producer: { runId: input.runId, workflowId: workflowInfo().workflowId, attempt },
          verifiedAt: new Date().toISOString(),
          manifest: verified.manifest!,
          summary: verified.summary,
          samples: verified.samples ?? [],
        },
      });
    }
    return { stage, artifactUri: launch.output.uri, attempts: attempt, computeName, outputs: verified.summary, ...times };
  };

  /** An output that already has a verdict (an earlier attempt finished after all, or its watcher was lost). */
  const earlierVerdict = async (): Promise<StageResult | undefined> => {
    enter('verifying');
    const verified = await short.verifyStage({ stage, outputUri: launch.output.uri, verification: input.verification });
    if (verified.doneAttempt === undefined) return undefined;
    if (!verified.ok) throw verificationFailure(verified);
    const doneAt = Date.now();
    return recorded(verified, verified.doneAttempt, computeName(input.runId, stage, verified.doneAttempt), { startedAt: doneAt, exitedAt: doneAt });
  };

  const verificationFailure = (verified: VerifyReport) =>
    ApplicationFailure.create({
      type: FailureType.StageVerificationFailed,
      message: `${stage} output at ${launch.output.uri} is incomplete: ${verified.problems.join('; ')}`,
      nonRetryable: true,
      details: [verified.summary],
    });

  const runAttempt = async (attempt: number): Promise<StageResult> => {
    if (markers) {
      const done = await earlierVerdict();
      if (done !== undefined) return done;
    }
    const computeRequest = { runId: input.runId, stage, attempt, compute: input.compute };
    let lease: ComputeLease | undefined;
    try {
      enter('acquiring');
      lease = await short.acquireCompute(computeRequest);
      report({ computeName: lease.name, phase: 'launching' });
      await short.launchStage({ lease, launch, attempt, compute: input.compute });
      enter('running');
      const outcome = await watcher.watchStage({
        lease,
        launch,
        attempt,
        logsUri: input.logsUri,
        hangTimeoutMs: limits.hangTimeoutMs,
        pollIntervalMs: input.orchestration.pollIntervalMs,
        progressIntervalMs: input.orchestration.progressIntervalMs,
        progressHints: input.progressHints,
        logPatterns: [...input.verification.logMustContain, ...input.verification.logMustNotContain],
        ...(parent === undefined ? {} : { reportTo: { workflowId: parent.workflowId, stage } }),
      });
      const verdict = classifyExit(stage, outcome);
      if (!verdict.ok) throw ApplicationFailure.create({ type: verdict.type, message: verdict.message, nonRetryable: true });
      enter('verifying');
      const verified = await short.verifyStage({
        stage,
        outputUri: launch.output.uri,
        verification: input.verification,
        seenPatterns: outcome.seenPatterns,
      });
      if (!verified.ok) throw verificationFailure(verified);
      return await recorded(verified, attempt, lease.name, { startedAt: outcome.startedAt, exitedAt: outcome.exitedAt });
    } finally {
      await CancellationScope.nonCancellable(async () => {
        enter('releasing');
        // Stops what still runs, keeps every worker's log in the artifact store, removes the container.
        if (lease !== undefined) await cleanup.stopStage({ lease, launch, attempt, logsUri: input.logsUri });
        await cleanup.releaseCompute(computeRequest);
      });
    }
  };

  for (let attempt = 1; ; attempt++) {
    status.attempt = attempt;
    try {
      const result = await runAttempt(attempt);
      status.state = 'succeeded';
      status.endedAt = new Date().toISOString();
      return result;
    } catch (error) {
      const failure = asStageFailure(stage, error);
      if (markers) await recordFailure(attempt, failure, isCancellation(error));
      const retry = !isCancellation(error) && RETRYABLE_STAGE_FAILURES.includes(failure.type as FailureType) && attempt < limits.maxAttempts;
      if (!retry) {
        status.state = isCancellation(error) ? 'cancelled' : 'failed';
        status.error = failure.message;
        status.endedAt = new Date().toISOString();
        throw isCancellation(error) ? error : failure;
      }
      status.error = `attempt ${attempt}: ${failure.message}`;
    }
  }
}

/** Runs started before completion markers and lineage replay without them. */
const STAGE_MARKERS_PATCH = 'stage-markers-v1';

/** The error of an attempt as one typed, readable failure. */
function asStageFailure(stage: string, error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ActivityFailure) {
    const cause = error.cause;
    if (cause instanceof ApplicationFailure) {
      // An activity that kept failing is infrastructure unless it says otherwise.
      const type = NON_RETRYABLE_ACTIVITY_ERRORS.includes(cause.type ?? '') ? cause.type! : FailureType.StageInfrastructureError;
      return ApplicationFailure.create({ type, message: `${stage}: ${error.activityType} failed: ${cause.message}`, nonRetryable: true, cause });
    }
    if (cause instanceof TimeoutFailure && error.activityType === 'watchStage' && cause.timeoutType === 'SCHEDULE_TO_CLOSE') {
      return ApplicationFailure.create({ type: FailureType.StageTimeout, message: `${stage} ran longer than its timeout`, nonRetryable: true, cause });
    }
    return ApplicationFailure.create({
      type: FailureType.StageInfrastructureError,
      message: `${stage}: ${error.activityType} failed: ${cause?.message ?? error.message}`,
      nonRetryable: true,
      ...(cause === undefined ? {} : { cause }),
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return ApplicationFailure.create({ type: FailureType.StageInfrastructureError, message: `${stage}: ${message}`, nonRetryable: true });
}
