/**
 * Whether a verified output is still what its record says before a plan reuses it: DONE.json is
 * there with the same manifest digest, and the sampled files are there with their sizes. A cache
 * someone deleted or rewrote is not reused.
 */
import { DONE_MARKER } from '../../pipeline/markers.ts';
import type { ArtifactRecord } from '../../pipeline/lineage.ts';
import type { OutputReader } from '../../pipeline/verify/reader.ts';
import { parseDoneMarker } from '../artifacts/markers.ts';
import { checkSamples } from './samples.ts';

export async function checkStillValid(reader: OutputReader, record: ArtifactRecord): Promise<string[]> {
  const text = await reader.readText(DONE_MARKER);
  if (text === undefined) return [`${record.uri}/${DONE_MARKER} is gone`];
  const done = parseDoneMarker(text);
  if (!done.ok) return [done.problem];
  if (done.value.manifest.digest !== record.manifest.digest) return [`${record.uri} was rewritten after it was verified (manifest digest changed)`];
  return checkSamples((path) => reader.stat(path), record.samples);
}
