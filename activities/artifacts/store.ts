/** Read access to a stage's outputs under an artifact URI, the same for gs:// and file://. */
export interface OutputEntry {
  name: string;
  dir: boolean;
}

export interface OutputReader {
  /** Entries of a folder relative to the output root; empty when the folder does not exist. */
  list(path: string): Promise<OutputEntry[]>;
  /** Text of a file relative to the output root; undefined when it does not exist. */
  readText(path: string): Promise<string | undefined>;
}

export interface ArtifactStore {
  /** The URI schemes this store serves, e.g. ["file"]. */
  readonly schemes: readonly string[];
  reader(uri: string): OutputReader;
  /** Writes (replaces) one object. */
  writeText(uri: string, text: string): Promise<void>;
  /** Appends to one object (creates it when absent). */
  appendText(uri: string, text: string): Promise<void>;
  /** Reads one object; undefined when absent. */
  readText(uri: string): Promise<string | undefined>;
  /** Checks the root is usable (exists or can be created, writable). Throws with a clear message. */
  checkWritable(rootUri: string): Promise<void>;
}

export function schemeOf(uri: string): string {
  return uri.slice(0, Math.max(0, uri.indexOf('://')));
}
