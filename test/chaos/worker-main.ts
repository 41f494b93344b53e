/**
 * A Temporal worker process for the chaos suite: the project's worker (activities and backend as
 * `recogdrive worker` builds them) with a workflow bundle built once by the harness, so killing
 * and restarting it takes about a second instead of a re-bundle. Configured by the environment
 * (workers/config.ts) plus CHAOS_WORKFLOW_BUNDLE, the bundle's file.
 */
import { NativeConnection } from '@temporalio/worker';
import { createBackend } from '../../workers/backend.ts';
import { configFromEnv } from '../../workers/config.ts';
import { createRecogdriveWorker } from '../../workers/temporal-worker.ts';

const codePath = process.env.CHAOS_WORKFLOW_BUNDLE;
if (codePath === undefined) throw new Error('CHAOS_WORKFLOW_BUNDLE is not set');
const config = configFromEnv();
const backend = await createBackend(process.env, config.RECOGDRIVE_DATA_DIR);
const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
try {
  const worker = await createRecogdriveWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.RECOGDRIVE_TASK_QUEUE,
    backend: backend.deps,
    workflowBundle: { codePath },
  });
  process.once('SIGTERM', () => worker.shutdown());
  console.log('chaos worker polling');
  await worker.run();
} finally {
  backend.close();
  await connection.close();
}
