/**
 * The Stage 1 script's logging: `logging.basicConfig(format='%(asctime)s - %(levelname)s - %(name)s - %(message)s',
 * datefmt='%m/%d/%Y %H:%M:%S', handlers=[StreamHandler(sys.stdout)])` (internvl_chat_finetune_torchax.py:848-852),
 * its records from the `__main__` logger.
 */
import { out } from './log.ts';

export interface HfLogger {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

export function hfLogger(name = '__main__'): HfLogger {
  const log = (level: string) => (message: string) => out(`${stamp(new Date())} - ${level} - ${name} - ${message}`);
  return { info: log('INFO'), warning: log('WARNING'), error: log('ERROR') };
}

/** `%m/%d/%Y %H:%M:%S`. */
function stamp(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(now.getMonth() + 1)}/${pad(now.getDate())}/${now.getFullYear()} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}
