/**
 * The worker's allowed roots, checked by a client (CLI, HTTP API) before it starts anything. The
 * worker's `preflight` is the authority and refuses paths outside its roots on every channel; a
 * client answers the same refusal up front only when it is told the worker's roots
 * (RECOGDRIVE_ALLOWED_ROOTS in its environment): its own data folder may not be the worker's.
 */
import { pathsOutsideRoots } from '../pipeline/host-roots.ts';
import { InvalidPipelineInput, parsePipelineInput, type PipelineConfig } from '../pipeline/input.ts';

/** "field: message" for each worker-host path of `config` outside `roots` (RECOGDRIVE_ALLOWED_ROOTS); none when no roots are given. */
export function outsideWorkerRoots(config: PipelineConfig, roots: readonly string[]): string[] {
  if (roots.length === 0) return [];
  return pathsOutsideRoots(config, roots).map((r) => `${r.path}: ${r.message}`);
}

/** parsePipelineInput, then the roots check: InvalidPipelineInput naming each field either refuses. */
export function parseForWorker(raw: unknown, roots: readonly string[]): PipelineConfig {
  const config = parsePipelineInput(raw);
  const outside = outsideWorkerRoots(config, roots);
  if (outside.length > 0) throw new InvalidPipelineInput(outside);
  return config;
}
