/** The embedded default backend: local compute folders, local processes running the stage simulator, file:// artifacts. */
import { join } from 'node:path';
import type { ActivityDependencies } from '../activities/index.ts';
import { FileArtifactStore, filePathOf } from '../activities/artifacts/file-store.ts';
import { LocalComputeProvider } from '../activities/compute/local.ts';
import { LocalProcessExecutor } from '../activities/execution/local-process.ts';
import { PROJECT_ROOT } from './project-root.ts';

export const SIMULATOR_MAIN = join(PROJECT_ROOT, 'docker', 'simulator', 'main.ts');
export const SIMULATOR_SHIMS = join(PROJECT_ROOT, 'docker', 'simulator', 'shims');

export function localComputeRoot(dataDir: string): string {
  return join(dataDir, 'local-compute');
}

export function localBackend(dataDir: string): ActivityDependencies {
  return {
    compute: { local: new LocalComputeProvider(localComputeRoot(dataDir)) },
    executors: {
      local: new LocalProcessExecutor({
        simulatorMain: SIMULATOR_MAIN,
        shimsDir: SIMULATOR_SHIMS,
        nodePath: process.execPath,
        hostPathOf: filePathOf,
      }),
    },
    artifactStores: [new FileArtifactStore()],
  };
}
