/**
 * The wrapper's stderr: the command's stderr passes through it unchanged, and the wrapper's own
 * lines (`recogdrive-stage: ...`) each start on a line of their own. A tqdm bar redraws itself
 * with \r and no newline for hours (the metric cache's `Ray objects: 0/8`): a wrapper line
 * written then would be glued to the bar, so a newline ends the bar's line first (as tqdm.write does).
 */
const NEWLINE = 0x0a;

export const WRAPPER_PREFIX = 'recogdrive-stage: ';

export class WrapperStderr {
  private readonly out: NodeJS.WritableStream;
  /** True when the last byte written was not a newline. */
  private midLine = false;

  constructor(out: NodeJS.WritableStream = process.stderr) {
    this.out = out;
  }

  /** A chunk of the command's stderr, byte for byte. */
  passThrough(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.out.write(chunk);
    this.midLine = chunk[chunk.length - 1] !== NEWLINE;
  }

  /** One line of the wrapper's own, `recogdrive-stage: <text>`. */
  say(text: string): void {
    this.writeLine(`${WRAPPER_PREFIX}${text}`);
  }

  /** One whole line, as it is (it must carry its own prefix). */
  writeLine(line: string): void {
    this.out.write(`${this.midLine ? '\n' : ''}${line}\n`);
    this.midLine = false;
  }
}
