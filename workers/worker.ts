/** The Temporal worker process for the embedded default backend (`recogdrive worker`). */
import { NativeConnection } from '@temporalio/worker';
import { configFromEnv } from './config.ts';
import { localBackend } from './local-backend.ts';
import { createRecogdriveWorker } from './temporal-worker.ts';

export async function runWorker(): Promise<void> {
  const config = configFromEnv();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    const worker = await createRecogdriveWorker({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: config.RECOGDRIVE_TASK_QUEUE,
      backend: localBackend(config.RECOGDRIVE_DATA_DIR),
    });
    console.log(`worker polling task queue ${config.RECOGDRIVE_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
    await worker.run();
  } finally {
    await connection.close();
  }
}
