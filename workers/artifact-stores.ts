/**
 * The artifact stores a worker or the CLI serves: file:// always, gs:// through the Cloud
 * Storage client (Application Default Credentials; created on first use of a gs:// URI, so
 * nothing contacts Google before that). RECOGDRIVE_GCS_ENDPOINT points it at an emulator such
 * as fake-gcs-server (no credentials are sent there); unset, the client's default applies
 * (including its own STORAGE_EMULATOR_HOST).
 */
import { FileArtifactStore } from '../activities/artifacts/file-store.ts';
import { GcsArtifactStore } from '../activities/artifacts/gcs-store.ts';
import { schemeOf, type ArtifactStore } from '../activities/artifacts/store.ts';

export function artifactStores(env: NodeJS.ProcessEnv = process.env): ArtifactStore[] {
  const endpoint = env.RECOGDRIVE_GCS_ENDPOINT;
  return [new FileArtifactStore(), new GcsArtifactStore(endpoint === undefined || endpoint === '' ? {} : { apiEndpoint: endpoint })];
}

/** The store serving a URI's scheme; throws naming the scheme when none does. */
export function artifactStoreFor(uri: string, stores: readonly ArtifactStore[] = artifactStores()): ArtifactStore {
  const store = stores.find((s) => s.schemes.includes(schemeOf(uri)));
  if (store === undefined) throw new Error(`no artifact store for ${schemeOf(uri) || 'scheme-less'} URIs (${uri}); supported: file://, gs://`);
  return store;
}
