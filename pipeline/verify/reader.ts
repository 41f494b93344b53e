/**
 * Read access to a stage's outputs, the same for gs://, file:// and (inside the stage container)
 * the local output folder. Pure interface: the checkers in this folder run both in the stage
 * wrapper next to the data and in the orchestrator.
 */
export interface OutputEntry {
  name: string;
  dir: boolean;
}

export interface ObjectStat {
  size: number;
  /** What identifies this content in the store, when it says (Cloud Storage: "md5=<base64> generation=<n>"). */
  version?: string;
}

export interface OutputReader {
  /** Entries of a folder relative to the output root; empty when the folder does not exist. */
  list(path: string): Promise<OutputEntry[]>;
  /** Text of a file relative to the output root; undefined when it does not exist. */
  readText(path: string): Promise<string | undefined>;
  /** Size of a file relative to the output root; undefined when it does not exist. */
  stat(path: string): Promise<ObjectStat | undefined>;
}

/** The same reader without the completion protocol's own files at the output root (DONE.json, _recogdrive/). */
export function withoutMarkers(reader: OutputReader, isMarker: (path: string) => boolean): OutputReader {
  return {
    list: async (path) => {
      const entries = await reader.list(path);
      return path === '' ? entries.filter((e) => !isMarker(e.name)) : entries;
    },
    readText: (path) => reader.readText(path),
    stat: (path) => reader.stat(path),
  };
}
