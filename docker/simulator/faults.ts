/** The three faults that end a stage abruptly. (`partial` is played by each script: it changes outputs, not control flow.) */
import { PythonError } from './errors.ts';

export type AbruptFault = 'crash' | 'hang' | 'oom';

export async function injectFault(kind: AbruptFault, scriptName: string): Promise<void> {
  switch (kind) {
    case 'crash':
      // Raised like any Python exception: the script's normal error path prints the traceback.
      throw new PythonError('RuntimeError', `simulated crash in ${scriptName}`);
    case 'hang':
      // A deadlocked data loader: silent, alive, idle until a signal ends it.
      return waitForever();
    case 'oom':
      // The kernel OOM killer: no message, SIGKILL, so a parent shell sees status 137.
      process.kill(process.pid, 'SIGKILL');
      return waitForever();
  }
}

/** Keeps the event loop alive without using CPU; only a signal ends the process. */
function waitForever(): Promise<never> {
  return new Promise(() => {
    setInterval(() => {}, 2 ** 30);
  });
}
