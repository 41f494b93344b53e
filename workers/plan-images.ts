/**
 * The image digests a plan can know before a run, as the worker's resolveImages finds them:
 * pinned references name theirs, the local backend's stand-in image is hashed, a tag on cloud
 * compute is asked of its registry. A tag on static hosts stays unresolved (the host resolves it).
 * A missing image or refused credentials fail the plan; an unreachable registry leaves the tag
 * unresolved and says why, so a dry run still works offline.
 */
import { pinnedDigest, treeDigest } from '../activities/images/tree-digest.ts';
import { resolveTag, type RegistryAccess } from '../activities/images/registry-access.ts';
import { RegistryUnavailable } from '../activities/images/registry-client.ts';
import { CONTRACTS } from '../pipeline/contracts/index.ts';
import { isCloudBackend, type PipelineConfig } from '../pipeline/input.ts';
import { LOCAL_IMAGE_DIRS } from './local-backend.ts';
import { PROJECT_ROOT } from './project-root.ts';

export interface PlanImages {
  /** Image reference → "sha256:..." digest, for the images that could be resolved. */
  imageDigests: Record<string, string>;
  /** Why a tag stayed unresolved (its registry could not be reached); empty when none did for that reason. */
  unresolved: string[];
}

/** `registry` false: no registry is asked (tags on cloud compute stay unresolved). */
export async function planImageDigests(config: PipelineConfig, registry: RegistryAccess | false): Promise<PlanImages> {
  const imageDigests: Record<string, string> = {};
  const unresolved: string[] = [];
  let local: Promise<string> | undefined;
  for (const stage of config.stages) {
    const image = config.images[CONTRACTS[stage].image];
    if (imageDigests[image] !== undefined) continue;
    const backend = config[stage].compute.backend;
    const pinned = pinnedDigest(image);
    if (pinned !== undefined) imageDigests[image] = pinned;
    else if (backend === 'local') imageDigests[image] = await (local ??= treeDigest(PROJECT_ROOT, LOCAL_IMAGE_DIRS));
    else if (isCloudBackend(backend) && registry !== false) {
      try {
        imageDigests[image] = await resolveTag(image, registry);
      } catch (error) {
        if (!(error instanceof RegistryUnavailable)) throw error;
        if (!unresolved.includes(error.message)) unresolved.push(error.message);
      }
    }
  }
  return { imageDigests, unresolved };
}
