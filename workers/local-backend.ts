/** The embedded default backend: local compute folders, local processes running the stage simulator (under the stage wrapper), file:// artifacts. */
import { join } from 'node:path';
import type { ActivityDependencies } from '../activities/index.ts';
import { filePathOf } from '../activities/artifacts/file-store.ts';
import { LocalComputeProvider } from '../activities/compute/local.ts';
import { LocalProcessExecutor } from '../activities/execution/local-process.ts';
import { artifactStores } from './artifact-stores.ts';
import { PROJECT_ROOT } from './project-root.ts';

export const SIMULATOR_MAIN = join(PROJECT_ROOT, 'docker', 'simulator', 'main.ts');
export const SIMULATOR_SHIMS = join(PROJECT_ROOT, 'docker', 'simulator', 'shims');
/** The stage wrapper's `recogdrive-stage` shim, which every launch spec's command starts with. */
export const STAGE_WRAPPER_BIN = join(PROJECT_ROOT, 'docker', 'stage-wrapper', 'bin');

/** What the local backend runs in place of a stage image: its files make the "image digest" of local stages. */
export const LOCAL_IMAGE_DIRS = ['docker/simulator', 'docker/stage-wrapper', 'pipeline'].map((dir) => join(PROJECT_ROOT, dir));

export function localComputeRoot(dataDir: string): string {
  return join(dataDir, 'local-compute');
}

export function localBackend(dataDir: string, env: NodeJS.ProcessEnv = process.env): ActivityDependencies {
  return {
    compute: { local: new LocalComputeProvider(localComputeRoot(dataDir)) },
    executors: {
      local: new LocalProcessExecutor({
        simulatorMain: SIMULATOR_MAIN,
        shimsDir: SIMULATOR_SHIMS,
        wrapperBinDir: STAGE_WRAPPER_BIN,
        nodePath: process.execPath,
        hostPathOf: filePathOf,
      }),
    },
    localImage: { base: PROJECT_ROOT, dirs: LOCAL_IMAGE_DIRS },
    // Runs read and write below the data folder only, unless the worker's config says otherwise (workers/backend.ts).
    allowedRoots: [dataDir],
    // file:// for the embedded default; gs:// too (RECOGDRIVE_GCS_ENDPOINT: an emulator), unused until a run names one.
    artifactStores: artifactStores(env),
  };
}
