/** The workflow types this project registers (the worker bundles this module). */
export { recogdrivePipeline } from './pipeline.ts';
export { recogdriveStage } from './stage.ts';
export { recogdriveJanitor } from './janitor.ts';
