/** Pipeline inputs whose stages run on the SSH + podman test bed (the `static` backend). */
import type { Testbed } from '../testbed/testbed.ts';
import type { StageName } from '../../pipeline/stages.ts';
import type { TestEnv } from './local-env.ts';

export interface TestbedStage {
  /** Indexes of the test bed workers that form this stage's slice. */
  workers: number[];
  /** Container environment (the simulator's controls: RECOGDRIVE_SIM_DURATION_MS, RECOGDRIVE_SIM_FAULT...). */
  env?: Record<string, string>;
  settings?: Record<string, unknown>;
}

/** The embedded default's input with the given stages moved onto test bed workers and the test bed's image. */
export function testbedInput(env: TestEnv, bed: Testbed, stages: Partial<Record<StageName, TestbedStage>>, extra: Record<string, unknown> = {}) {
  const base = env.input({ stages: Object.keys(stages) as StageName[] }) as unknown as Record<string, Record<string, unknown>>;
  const input: Record<string, unknown> = { ...base, images: { stage1: bed.images[0], unified: bed.images[0] }, ...extra };
  for (const [stage, spec] of Object.entries(stages)) {
    input[stage] = {
      ...base[stage],
      compute: {
        backend: 'static',
        hosts: spec.workers.map((i) => ({ address: bed.workers[i]!.address, port: bed.workers[i]!.port, user: bed.workers[i]!.user })),
      },
      env: { RECOGDRIVE_SIM_DURATION_MS: '1500', ...spec.env },
      ...spec.settings,
    };
  }
  return input;
}

/** Worker configuration that lets a worker reach the test bed. */
export function testbedWorkerEnv(bed: Testbed): NodeJS.ProcessEnv {
  return {
    ...process.env,
    RECOGDRIVE_SSH_KEY_FILE: bed.privateKeyFile,
    RECOGDRIVE_KNOWN_HOSTS: bed.knownHostsFile,
    // Loopback answers at once: decide a lost host in seconds, not minutes.
    RECOGDRIVE_SSH_POLL_CONNECT_DEADLINE_MS: '3000',
  };
}
