/**
 * One artifact store per URI scheme (gs:// and file://), one layout for both. Outputs are
 * referenced by URI and never copied between stages.
 */
import type { ObjectStat, OutputReader } from '../../pipeline/verify/reader.ts';

export type { ObjectStat, OutputEntry, OutputReader } from '../../pipeline/verify/reader.ts';

export interface ArtifactStore {
  /** The URI schemes this store serves, e.g. ["file"]. */
  readonly schemes: readonly string[];
  /** Read access below a folder URI (list one level, read one object, stat one object). */
  reader(uri: string): OutputReader;
  /** Writes (replaces) one object. */
  writeText(uri: string, text: string): Promise<void>;
  /**
   * Creates one object only if it does not exist (gs://: ifGenerationMatch=0; file://: O_EXCL).
   * Returns false, without writing, when it already exists: the first writer's content stands.
   */
  createIfAbsent(uri: string, text: string): Promise<boolean>;
  /** Appends to one object (creates it when absent). */
  appendText(uri: string, text: string): Promise<void>;
  /** Reads one object; undefined when absent. */
  readText(uri: string): Promise<string | undefined>;
  /** Size of one object; undefined when absent. */
  stat(uri: string): Promise<ObjectStat | undefined>;
  /** Checks the root is usable (exists or can be created, writable). Throws with a clear message. */
  checkWritable(rootUri: string): Promise<void>;
  /** Where the data lives, as the store reports it (a bucket's location, e.g. US-EAST5); undefined when it has none. */
  location?(uri: string): Promise<string | undefined>;
}

export function schemeOf(uri: string): string {
  return uri.slice(0, Math.max(0, uri.indexOf('://')));
}
