/**
 * `npm run chaos`: every chaos scenario (suite.ts), CHAOS_REPEAT times each (default 3), on
 * one test bed and Temporal server; prints a table of what held and exits 1 when anything did
 * not. CHAOS_ONLY=name,name runs a subset. Timeouts: see suite.ts.
 */
import { formatResults, runScenario, SCENARIOS, startChaosWorld, type ScenarioResult } from './suite.ts';

const repeat = Number(process.env.CHAOS_REPEAT ?? 3);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('CHAOS_REPEAT must be a positive integer');
const only = (process.env.CHAOS_ONLY ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
const unknown = only.filter((name) => !SCENARIOS.some((s) => s.name === name));
if (unknown.length > 0) throw new Error(`unknown scenarios: ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
const scenarios = SCENARIOS.filter((s) => only.length === 0 || only.includes(s.name));

const started = Date.now();
console.log(`chaos: ${scenarios.length} scenarios x ${repeat}; setting up the test bed, storage emulator, Temporal server and baselines...`);
const world = await startChaosWorld();
const results: ScenarioResult[] = [];
try {
  for (let r = 1; r <= repeat; r++) {
    for (const scenario of scenarios) {
      const result = await runScenario(world, scenario, r);
      results.push(result);
      const failed = Object.entries(result.problems).filter(([, p]) => p.length > 0).map(([c]) => c);
      console.log(`${scenario.name}#${r}: ${failed.length === 0 ? 'ok' : `FAILED ${failed.join(', ')}`} (${(result.ms / 1000).toFixed(0)} s)`);
    }
  }
} finally {
  await world.close();
}
console.log(`\n${formatResults(results)}\n\n${SCENARIOS.filter((s) => scenarios.includes(s)).map((s) => `${s.name}: ${s.fault} (expect ${s.expect})`).join('\n')}`);
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = results.every((r) => Object.values(r.problems).every((p) => p.length === 0)) ? 0 : 1;
