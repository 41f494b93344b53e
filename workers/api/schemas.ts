/** Request schemas shared by the routes (zod; also the source of the OpenAPI document). */
import { z } from 'zod';
import { PipelineInput } from '../../pipeline/input.ts';
import { RunId } from '../../pipeline/naming.ts';
import { STAGES } from '../../pipeline/stages.ts';
import type { RunState } from '../../pipeline/status.ts';

/** A run id: the one rule of every channel (pipeline/naming.ts). */
export { RunId };

export const RunParams = z.strictObject({ id: RunId });

export const Stage = z.enum(STAGES);

/** The experiment name, exactly as the pipeline input accepts it. */
export const Experiment = PipelineInput.shape.experiment;

export const RUN_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const satisfies readonly RunState[];

/** `true` / `false` in a query string. */
export const QueryFlag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((v) => v === 'true');

/**
 * The body of POST /v1/runs: any JSON object here, validated by parsePipelineInput in the
 * handler (the same checks and messages as the CLI and the workflow). Documented with the
 * pipeline input's own JSON Schema.
 */
const pipelineInputJsonSchema: Record<string, unknown> = z.toJSONSchema(PipelineInput, { io: 'input', unrepresentable: 'any' });
delete pipelineInputJsonSchema.$schema;
export const PipelineInputBody = z.record(z.string(), z.unknown()).meta({
  ...pipelineInputJsonSchema,
  description: 'The pipeline input (pipeline/input.ts): one JSON object, validated like `recogdrive start` validates it.',
});

export const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.string()).optional().describe('each failing field as "<path>: <what is wrong>"'),
});
