/**
 * Running docker/bridge/orbax_to_torch.py for real (in the bridge venv) and the simulator's
 * stand-in for it on the same paths, in a scratch folder: what both bridge test files share.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SIM_MAIN } from '../helpers/simulator.ts';
import { requirePath, type PinnedTool } from '../images/pinned-tool.ts';

export const BRIDGE_SCRIPT = path.resolve(import.meta.dirname, '../../docker/bridge/orbax_to_torch.py');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BridgeRunner {
  /** The venv's python with these arguments, in the scratch folder. */
  python(args: string[]): Promise<Run>;
  /** The real converter. */
  bridge(args: string[]): Promise<Run>;
  /** The simulator's stand-in, run as the stage runs it (`python <script> args`), on the same paths. */
  simulated(args: string[]): Promise<Run>;
  /** Writes a Python script into the scratch folder and runs it. */
  pythonScript(name: string, text: string, args: string[]): Promise<Run>;
}

export function bridgeRunner(tmp: string, venv: PinnedTool): BridgeRunner {
  const run = (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => {
    const child = spawn(command, args, { cwd: tmp, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  };
  const python = (args: string[]) => run(requirePath(venv), args);
  return {
    python,
    bridge: (args) => python([BRIDGE_SCRIPT, ...args]),
    simulated: (args) =>
      run(process.execPath, [SIM_MAIN, 'python', BRIDGE_SCRIPT, ...args], {
        RECOGDRIVE_SIM_DURATION_MS: '0',
        RECOGDRIVE_SIM_STATE_DIR: path.join(tmp, 'sim-state'),
        RECOGDRIVE_SIM_MOUNTS: '',
        RECOGDRIVE_SIM_WORKDIR: tmp,
      }),
    pythonScript: (name, text, args) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, text);
      return python([file, ...args]);
    },
  };
}

/** stderr without absl's import-time warnings (TensorFlow not found, ...), which only the real libraries print. */
export function ownStderr(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('WARNING:absl:'))
    .join('\n');
}

export function show(result: Run): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}
