/** The Temporal worker process for the embedded default backend (`recogdrive worker`). */
import { NativeConnection } from '@temporalio/worker';
import { configFromEnv } from './config.ts';
import { createBackend } from './backend.ts';
import { createRecogdriveWorker, type RecogdriveWorkerOptions } from './temporal-worker.ts';

/** `workflowBundle`: a prebuilt bundle instead of bundling at start (the chaos suite restarts workers often). */
export async function runWorker(options: Pick<RecogdriveWorkerOptions, 'workflowBundle'> = {}): Promise<void> {
  const config = configFromEnv();
  const backend = await createBackend();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const worker = await createRecogdriveWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.RECOGDRIVE_TASK_QUEUE,
      backend: backend.deps,
      ...(options.workflowBundle === undefined ? {} : { workflowBundle: options.workflowBundle }),
    });
    console.log(`worker polling task queue ${config.RECOGDRIVE_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
    await worker.run();
  } finally {
    backend.close();
    await connection.close();
  }
}
