/**
 * A Temporal worker process for the chaos suite: the project's worker (`recogdrive worker`) with
 * a workflow bundle built once by the harness, so killing and restarting it takes about a second
 * instead of a re-bundle. Configured by the environment (workers/config.ts) plus
 * CHAOS_WORKFLOW_BUNDLE, the bundle's file.
 */
import { runWorker } from '../../workers/worker.ts';

const codePath = process.env.CHAOS_WORKFLOW_BUNDLE;
if (codePath === undefined) throw new Error('CHAOS_WORKFLOW_BUNDLE is not set');
await runWorker({ workflowBundle: { codePath } });
