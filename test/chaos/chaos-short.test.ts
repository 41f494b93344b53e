/**
 * The chaos suite's CI variant (the long one: `npm run chaos`): on the test bed with a real
 * Temporal server, one worker kill, one SSH host lost during launch past the heartbeat timeout,
 * one lost while a stage runs, and one storage outage during the lineage lookup. After each run: one container per host per
 * attempt, nothing left, one verdict per attempt, the fingerprints of an undisturbed run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gcsEmulatorSkip } from '../helpers/gcs-emulator.ts';
import { testbedSkip } from '../testbed/requirements.ts';
import { runScenario, SCENARIOS, SHORT_SCENARIOS, startChaosWorld, type ChaosWorld } from './suite.ts';

const skip = testbedSkip() || gcsEmulatorSkip();
let world: ChaosWorld | undefined;
before(async () => {
  if (skip === false) world = await startChaosWorld();
});
after(async () => {
  await world?.close();
});

const titles: Record<(typeof SHORT_SCENARIOS)[number], string> = {
  'worker-kill-running': 'a worker SIGKILLed while a stage runs: the run succeeds on its first attempt with one container per host, nothing left, same fingerprints',
  'ssh-lost-launch': 'a host that stops answering during launch past the heartbeat timeout: never two containers per host per attempt, one verdict per attempt, nothing left, same fingerprints',
  'ssh-lost-running': 'a host lost while a stage runs (its polls outlast the heartbeat timeout): the attempt is given up as infrastructure, the next succeeds, one container per host per attempt, nothing left',
  'storage-down-lookup': 'a storage outage during the lineage lookup: the lookup waits it out (an error is not an absence) and the fingerprints are those of an undisturbed run',
};

for (const name of SHORT_SCENARIOS) {
  test(titles[name], { skip, timeout: 300_000 }, async () => {
    const result = await runScenario(world!, SCENARIOS.find((s) => s.name === name)!);
    for (const [check, problems] of Object.entries(result.problems)) assert.deepEqual(problems, [], `${name}: ${check}`);
  });
}
