/** What every simulated stage script receives, and the shape of one. */
import type { ContainerFs } from '../container-fs.ts';
import type { Controls } from '../controls.ts';

export interface ScriptContext {
  /** Absolute container path of the script, as Python tracebacks show it. */
  scriptPath: string;
  /** Its basename, e.g. run_metric_caching.py. */
  scriptName: string;
  /** Arguments after the script path. */
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  fs: ContainerFs;
  controls: Controls;
}

export type ScriptMain = (ctx: ScriptContext) => Promise<void>;

export function isPartial(ctx: ScriptContext): boolean {
  return ctx.controls.fault === 'partial';
}
