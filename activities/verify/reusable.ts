/**
 * Whether a verified output is still what its record says before a plan reuses it: DONE.json is
 * there with the same manifest digest, and the sampled files are there with their sizes. A cache
 * someone deleted or rewrote is not reused.
 */
import type { ArtifactRecord } from '../../pipeline/lineage.ts';
import { parseDoneMarker } from '../artifacts/markers.ts';
import type { OutputReaders } from './markers.ts';
import { checkSamples } from './samples.ts';

export async function checkStillValid(readers: OutputReaders, record: ArtifactRecord): Promise<string[]> {
  const text = await readers.markers.readText(readers.files.done);
  if (text === undefined) return [`the completion marker ${readers.files.done} of ${record.uri} is gone`];
  const done = parseDoneMarker(text);
  if (!done.ok) return [done.problem];
  if (done.value.manifest.digest !== record.manifest.digest) return [`${record.uri} was rewritten after it was verified (manifest digest changed)`];
  return checkSamples((path) => readers.data.stat(path), record.samples);
}
