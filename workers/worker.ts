/** The Temporal worker process for the embedded default backend (`recogdrive worker`). */
import { NativeConnection } from '@temporalio/worker';
import { configFromEnv } from './config.ts';
import { createBackend } from './backend.ts';
import { createRecogdriveWorker } from './temporal-worker.ts';

export async function runWorker(): Promise<void> {
  const config = configFromEnv();
  const backend = await createBackend();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const worker = await createRecogdriveWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.RECOGDRIVE_TASK_QUEUE,
      backend: backend.deps,
    });
    console.log(`worker polling task queue ${config.RECOGDRIVE_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
    await worker.run();
  } finally {
    backend.close();
    await connection.close();
  }
}
