/**
 * Readers over an output's completion markers and its data, wherever the markers are: beside the
 * output (pipeline/markers.ts) or, for outputs of runs started before that layout, inside it.
 */
import { besideMarkersUri, type MarkerLocation } from '../../pipeline/markers.ts';
import { outputReaders, type OutputReaders } from '../verify/markers.ts';
import type { ArtifactStore } from './store.ts';

export type StoreFor = (uri: string) => ArtifactStore;

/** The readers of an output whose marker location is known (a launch spec, a lineage record). */
export function markerReaders(storeFor: StoreFor, outputUri: string, markers: MarkerLocation): OutputReaders {
  return outputReaders(storeFor(markers.uri).reader(markers.uri), storeFor(outputUri).reader(outputUri), markers.layout);
}

/** Where the markers of an output of unknown origin may be, in the order to look: beside it, then inside it. */
export function markerLocationsToTry(outputUri: string): MarkerLocation[] {
  const beside = besideMarkersUri(outputUri);
  return [...(beside === undefined ? [] : [{ layout: 'beside' as const, uri: beside }]), { layout: 'inside', uri: outputUri }];
}
