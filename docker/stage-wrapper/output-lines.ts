/**
 * Counts the command's output lines and keeps the last few, for progress.json and FAILED.json.
 * The bytes themselves pass through untouched elsewhere; this only looks at them.
 */
import { StringDecoder } from 'node:string_decoder';

export const KEPT_LINES = 50;
/** A line longer than this is kept by its end (a progress bar redrawn with \r can grow without a newline). */
const MAX_LINE_CHARS = 4096;

export class OutputLines {
  private count = 0;
  private last = '';
  private readonly kept: string[] = [];
  private readonly partial = new Map<string, { decoder: StringDecoder; text: string }>();

  /** Output lines seen so far (a final line without a newline counts once finish() ran). */
  get lines(): number {
    return this.count;
  }

  /** The last non-empty line. */
  get lastLine(): string {
    return this.last;
  }

  /** Feeds a chunk of one stream (stdout and stderr are split into lines separately). */
  feed(stream: string, chunk: Buffer): void {
    let state = this.partial.get(stream);
    if (state === undefined) {
      state = { decoder: new StringDecoder('utf8'), text: '' };
      this.partial.set(stream, state);
    }
    const parts = (state.text + state.decoder.write(chunk)).split('\n');
    state.text = clip(parts.pop()!);
    for (const line of parts) this.add(line);
  }

  /** Ends every stream: a trailing line without a newline counts too. */
  finish(): void {
    for (const state of this.partial.values()) {
      const rest = state.text + state.decoder.end();
      state.text = '';
      if (rest !== '') this.add(rest);
    }
  }

  /** The last KEPT_LINES lines, oldest first. */
  lastLines(): string[] {
    return [...this.kept];
  }

  private add(raw: string): void {
    // What a terminal would show: the text after the last carriage return.
    const line = clip(raw.replace(/\r+$/, '').split('\r').at(-1) ?? '');
    this.count++;
    if (line.trim() !== '') this.last = line;
    this.kept.push(line);
    if (this.kept.length > KEPT_LINES) this.kept.shift();
  }
}

function clip(text: string): string {
  return text.length > MAX_LINE_CHARS ? text.slice(-MAX_LINE_CHARS) : text;
}
