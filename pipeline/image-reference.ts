/**
 * Image references as docker reads them: [registry[:port]/]path[:tag][@sha256:digest]. The first
 * component is a registry when it has a dot or a port or is "localhost"; otherwise the image is on
 * Docker Hub, whose API host is registry-1.docker.io and whose one-component names are library/<name>.
 * The pipeline input checks the form (pipeline/input.ts ImageRef); this reads its parts.
 */

export interface ImageReference {
  /** The registry as a reference names it (host[:port]); docker.io for Docker Hub. */
  registry: string;
  /** host[:port] of the registry's v2 API. */
  apiHost: string;
  /** The repository path within the registry (library/ubuntu on Docker Hub). */
  repository: string;
  /** The tag; "latest" when the reference names neither a tag nor a digest. */
  tag?: string;
  digest?: string;
}

export class InvalidImageReference extends Error {
  constructor(text: string, why: string) {
    super(`${JSON.stringify(text.slice(0, 300))} is not an image reference: ${why}`);
    this.name = 'InvalidImageReference';
  }
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const REGISTRY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The digest pinned in a reference (name@sha256:...), if any. */
export function pinnedDigest(image: string): string | undefined {
  return /@(sha256:[a-f0-9]{64})$/.exec(image)?.[1];
}

export function parseImageReference(text: string): ImageReference {
  if (text.length === 0 || text.length > 255) throw new InvalidImageReference(text, 'it must be 1 to 255 characters');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new InvalidImageReference(text, 'the digest must be sha256:<64 hex digits>');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidImageReference(text, `the tag ${JSON.stringify(tag)} has characters a tag cannot have`);
  }
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  const namesRegistry = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = namesRegistry ? first : DOCKER_HUB;
  if (!REGISTRY.test(registry)) throw new InvalidImageReference(text, `${JSON.stringify(registry)} is not a registry host[:port]`);
  let repository = namesRegistry ? rest.slice(slash + 1) : rest;
  if (repository === '' || !repository.split('/').every((c) => COMPONENT.test(c))) {
    throw new InvalidImageReference(text, 'the path must be lowercase letters, digits and . _ - separated by /');
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  return {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository,
    ...(tag === undefined && digest === undefined ? { tag: 'latest' } : tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** registry/path@digest: the reference that names what the digest names, whatever the tag does later. */
export function pinnedReference(ref: ImageReference, digest: string): string {
  if (!DIGEST.test(digest)) throw new Error(`not a sha256 digest: ${digest.slice(0, 100)}`);
  return `${ref.registry}/${ref.repository}@${digest}`;
}

/** How a message names the image: as given, without Docker Hub's implied parts. */
export function referenceText(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}
