/**
 * A test workflow for the launch fence: launchStage with a start-to-close timeout shorter than a
 * slow host, so Temporal retries it while the earlier try still runs, then stopStage. What the
 * launch ended with is returned (the stop runs either way).
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { RecogdriveActivities } from '../../activities/index.ts';
import type { LaunchRequest, StopRequest } from '../../activities/types.ts';

export async function fencedLaunchProbe(input: { launch: LaunchRequest; stop: StopRequest; startToCloseMs: number }): Promise<string> {
  const { launchStage } = proxyActivities<RecogdriveActivities>({
    startToCloseTimeout: input.startToCloseMs,
    heartbeatTimeout: 2_000,
    retry: { initialInterval: '100ms', backoffCoefficient: 1, maximumAttempts: 4 },
  });
  const { stopStage } = proxyActivities<RecogdriveActivities>({ startToCloseTimeout: '2 minutes', heartbeatTimeout: 10_000 });
  let outcome = 'launched';
  try {
    await launchStage(input.launch);
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : error;
    outcome = cause instanceof ApplicationFailure ? `failed: ${cause.type ?? ''}: ${cause.message}` : `failed: ${String(cause)}`;
  }
  await stopStage(input.stop);
  return outcome;
}
