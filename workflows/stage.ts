/**
 * One stage of a run: acquire compute → launch → watch → verify → release. Release (and
 * stopping a container that may still run) happens in a non-cancellable scope on every path:
 * success, failure and cancellation. Infrastructure trouble gets a new attempt on new compute;
 * a code error, an out-of-memory kill or a bad output does not.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { RecogdriveActivities } from '../activities/index.ts';
import type { ComputeLease, ComputeRequest, VerifyReport } from '../activities/types.ts';
import { COMPUTE_FAILURES, computeFailureClassOfType } from '../pipeline/compute-failures.ts';
import type { ComputeUsage } from '../pipeline/cost.ts';
import { classifyExit, FailureType, NON_RETRYABLE_ACTIVITY_ERRORS, RETRYABLE_STAGE_FAILURES } from '../pipeline/failures.ts';
import { nextStep, startFailover, type FailoverState } from '../pipeline/zone-failover.ts';
import { classifyFailure, failoverPolicyOf, isCloudCompute, isNodeLoss, placementOf, usageOf, usageOutcome } from './cloud-compute.ts';
import { launchMarkers } from '../pipeline/launch.ts';
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
  // Provisioning a cloud VM waits for capacity (queued resources: hours), heartbeating all along.
  // Cancellation waits for the activity to stop, so the release that follows cannot race a create.
  const provisioning = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
  });
  // A launch heartbeats while it waits for the slice's hosts (up to the SSH connect deadline each);
  // cancelling it waits until the try stopped, so the stop that follows cannot race a create.
  const launching = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
  });
  // Bringing up a bare VM copies models and datasets (hours for large ones), heartbeating all along;
  // a transient failure is retried on the same machine, resuming at the step that failed.
  const bringingUp = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: input.orchestration.heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '5s', maximumInterval: '2 minutes', maximumAttempts: 5, nonRetryableErrorTypes: [...NON_RETRYABLE_ACTIVITY_ERRORS] },
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
        markers: launchMarkers(launch),
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

  // Cloud compute: where the next try provisions (zone failover), the machines held (cost record).
  const cloud = isCloudCompute(input.compute) ? input.compute : undefined;
  const policy = cloud === undefined ? undefined : failoverPolicyOf(cloud);
  let failover: FailoverState | undefined;
  if (cloud !== undefined) {
    const bucketRegion = await short.artifactLocation({ uri: input.artifact.artifactRoot });
    failover = startFailover({ zones: cloud.zones, spot: cloud.spot, ...(bucketRegion === undefined ? {} : { bucketRegion }) });
  }
  const usages: ComputeUsage[] = [];
  if (cloud !== undefined) status.compute = usages;
  const computeEvent = (event: string): void => {
    status.computeEvent = event;
    report({ computeEvent: event });
  };

  /**
   * A machine for the attempt: on cloud compute, tries zones as the failover policy says
   * (capacity failures move on, opaque errors retry in place, with back-off between rounds);
   * `request` is updated to each try's placement so the caller releases the right one.
   */
  const acquire = async (request: ComputeRequest): Promise<ComputeLease> => {
    if (failover === undefined || policy === undefined) return short.acquireCompute(request);
    for (;;) {
      request.placement = placementOf(failover);
      try {
        return await provisioning.acquireCompute(request);
      } catch (error) {
        const classified = classifyFailure(error);
        if (classified === undefined || isNodeLoss(classified) || COMPUTE_FAILURES[classified.failureClass].giveUp) throw error;
        // A failed create can leave a node behind in that zone.
        await CancellationScope.nonCancellable(() => cleanup.releaseCompute(request));
        const step = nextStep(failover, classified, policy);
        failover = step.state;
        computeEvent(step.reason);
        if (step.action === 'give-up') {
          const cause = asStageFailure(stage, error);
          throw ApplicationFailure.create({ type: cause.type ?? FailureType.StageInfrastructureError, message: `${stage}: ${step.reason}`, nonRetryable: true, cause });
        }
        if (step.backoffMs > 0) await sleep(step.backoffMs);
      }
    }
  };

  const markers = patched(STAGE_MARKERS_PATCH);
  const fencedLaunch = patched(FENCED_LAUNCH_PATCH);

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
          ...(launch.markers === undefined ? {} : { markers: launchMarkers(launch) }),
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
    const verified = await short.verifyStage({ stage, outputUri: launch.output.uri, markers: launchMarkers(launch), verification: input.verification });
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
    const computeRequest: ComputeRequest = { runId: input.runId, stage, attempt, compute: input.compute, ...(input.project === undefined ? {} : { project: input.project }) };
    let lease: ComputeLease | undefined;
    let usage: ComputeUsage | undefined;
    let failed: unknown;
    try {
      enter('acquiring');
      const acquiringAt = Date.now();
      lease = await acquire(computeRequest);
      if (cloud !== undefined) {
        usage = usageOf(lease, attempt, acquiringAt);
        usages.push(usage);
        report({ usage });
      }
      // Stages planned before bring-up existed carry no spec and replay as they ran.
      if (input.bringUp !== undefined && patched(BRING_UP_PATCH)) {
        report({ computeName: lease.name, phase: 'bringing up' });
        await bringingUp.bringUpStage({ lease, spec: input.bringUp, attempt, logsUri: input.logsUri, ...(cloud === undefined ? {} : { health: { request: computeRequest } }) });
        enter('launching');
      } else report({ computeName: lease.name, phase: 'launching' });
      // runId is an argument only (replay compares activity types, not inputs): no patch needed.
      await (fencedLaunch ? launching : short).launchStage({ lease, launch, attempt, runId: input.runId, compute: input.compute, hangTimeoutMs: limits.hangTimeoutMs });
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
        ...(cloud === undefined ? {} : { health: { request: computeRequest, intervalMs: cloud.failover.healthCheckInterval } }),
      });
      const verdict = classifyExit(stage, outcome);
      if (!verdict.ok) throw ApplicationFailure.create({ type: verdict.type, message: verdict.message, nonRetryable: true });
      enter('verifying');
      const verified = await short.verifyStage({
        stage,
        outputUri: launch.output.uri,
        markers: launchMarkers(launch),
        verification: input.verification,
        seenPatterns: outcome.seenPatterns,
      });
      if (!verified.ok) throw verificationFailure(verified);
      return await recorded(verified, attempt, lease.name, { startedAt: outcome.startedAt, exitedAt: outcome.exitedAt });
    } catch (error) {
      failed = error;
      throw error;
    } finally {
      await CancellationScope.nonCancellable(async () => {
        enter('releasing');
        // Stops what still runs, keeps every worker's log in the artifact store, removes the container.
        // A lost cloud VM has nothing left to stop.
        if (lease !== undefined && !isNodeLoss(classifyFailure(failed))) await cleanup.stopStage({ lease, launch, attempt, logsUri: input.logsUri });
        await cleanup.releaseCompute(computeRequest);
      });
      if (usage !== undefined) {
        usage.releasedAt = Date.now();
        usage.outcome = usageOutcome(failed, failed !== undefined && isCancellation(failed));
        report({ usage });
      }
    }
  };

  // Attempts that count against maxAttempts: a machine taken away by the cloud does not.
  let counted = 0;
  for (let attempt = 1; ; attempt++) {
    status.attempt = attempt;
    try {
      const result = await runAttempt(attempt);
      status.state = 'succeeded';
      status.endedAt = new Date().toISOString();
      return cloud === undefined ? result : { ...result, compute: usages };
    } catch (error) {
      let failure = asStageFailure(stage, error);
      if (markers) await recordFailure(attempt, failure, isCancellation(error));
      const classified = classifyFailure(failure);
      if (!isCancellation(error) && failover !== undefined && policy !== undefined && isNodeLoss(classified)) {
        const step = nextStep(failover, classified!, policy);
        failover = step.state;
        computeEvent(step.reason);
        if (step.action !== 'give-up') {
          status.error = `attempt ${attempt}: ${failure.message}`;
          continue;
        }
        failure = ApplicationFailure.create({ type: failure.type ?? FailureType.StageInfrastructureError, message: `${failure.message}; ${step.reason}`, nonRetryable: true, cause: failure });
      } else counted++;
      const retry = !isCancellation(error) && RETRYABLE_STAGE_FAILURES.includes(failure.type as FailureType) && counted < limits.maxAttempts;
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
/** Bare cloud VMs are brought up (image by digest, code, data, bucket mounts) before the launch. */
const BRING_UP_PATCH = 'bring-up-v1';
/** Runs started before launches heartbeat and are fenced on the hosts launch with the short activity options. */
const FENCED_LAUNCH_PATCH = 'fenced-launch-v1';

/** The error of an attempt as one typed, readable failure. */
function asStageFailure(stage: string, error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ActivityFailure) {
    const cause = error.cause;
    if (cause instanceof ApplicationFailure) {
      // An activity that kept failing is infrastructure unless it says otherwise; compute failures keep their class.
      const known = NON_RETRYABLE_ACTIVITY_ERRORS.includes(cause.type ?? '') || computeFailureClassOfType(cause.type ?? undefined) !== undefined;
      const type = known ? cause.type! : FailureType.StageInfrastructureError;
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
