/**
 * Artifacts in Cloud Storage (gs://bucket/path URIs), through the official client. Production
 * uses Application Default Credentials; tests point `apiEndpoint` at an emulator (then the
 * client sends no credentials). The client is created on first use, so a worker that never
 * sees a gs:// URI never talks to Google (nor loads the client library).
 *
 * Cloud Storage has no folders and no append: a folder is a name prefix ending in "/", listed
 * one level deep with delimiter "/"; an append uploads the chunk to a temporary object and
 * composes [existing, chunk] into the object under a generation precondition.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bucket, File, Storage } from '@google-cloud/storage';
import type { ArtifactStore, ObjectStat, OutputEntry, OutputReader } from './store.ts';

export interface GcsStoreOptions {
  /** e.g. an emulator's http://127.0.0.1:4443; default: the library's (or STORAGE_EMULATOR_HOST). */
  apiEndpoint?: string;
  projectId?: string;
  /** Entries per list request (Cloud Storage's maximum and default is 1000). */
  listPageSize?: number;
  /** Compose attempts of one append when other writers keep changing the object (412). */
  appendAttempts?: number;
  /**
   * The client's own retries of one request (default 3, with back-off). Past them an error is
   * thrown, never read as absence: the activity fails and Temporal retries it.
   */
  maxRetries?: number;
}

export interface GcsLocation {
  bucket: string;
  /** Object name or folder prefix without a leading or trailing "/"; "" for the bucket's root. */
  key: string;
}

/** An error of this store: names the URI and the HTTP status, never credentials. */
export class GcsStoreError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined) {
    super(message);
    this.name = 'GcsStoreError';
    this.status = status;
  }
}

export function parseGsUri(uri: string): GcsLocation {
  const match = /^gs:\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (match === null) throw new Error(`not a gs:// URI: ${uri}`);
  return { bucket: match[1]!, key: normalizeKey(match[2] ?? '', uri) };
}

/** Joins relative path segments; "" and "." segments vanish, ".." is refused. */
function normalizeKey(path: string, context: string): string {
  const segments = path.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new Error(`".." is not allowed in an artifact path: ${context}`);
  return segments.join('/');
}

function joinKey(root: string, path: string, context: string): string {
  const rest = normalizeKey(path, context);
  return root === '' ? rest : rest === '' ? root : `${root}/${rest}`;
}

/** The HTTP status of a client error (ApiError.code, GaxiosError.status/response.status). */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const candidate of [e.code, e.status, e.response?.status]) {
    if (typeof candidate === 'number' && candidate >= 100 && candidate < 600) return candidate;
  }
  return undefined;
}

/** One line of an error's message with anything that looks like a credential removed. */
function safeMessage(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown };
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(error);
  const firstLine = message.split('\n')[0] ?? '';
  const redacted = firstLine
    .replace(/Bearer\s+[^\s"',]+/gi, 'Bearer <redacted>')
    .replace(/\b(access_token|id_token|refresh_token|token|key|signature|X-Goog-Signature|X-Goog-Credential|client_secret)=[^&\s"']+/gi, '$1=<redacted>')
    .replace(/ya29\.[A-Za-z0-9._-]+/g, '<redacted>');
  // Network errors carry their cause in `code` (ECONNREFUSED, ENOTFOUND): keep it, it helps.
  return typeof e?.code === 'string' && !redacted.includes(e.code) ? `${redacted} (${e.code})` : redacted;
}

function storeError(action: string, uri: string, error: unknown): GcsStoreError {
  const status = httpStatusOf(error);
  const where = status === undefined ? 'no HTTP response' : `HTTP ${status}`;
  return new GcsStoreError(`${action} ${uri} failed (${where}): ${safeMessage(error)}`, status);
}

const TEXT = 'text/plain; charset=utf-8';

export class GcsArtifactStore implements ArtifactStore {
  readonly schemes = ['gs'] as const;
  readonly #options: GcsStoreOptions;
  #storage: Promise<Storage> | undefined;
  #downloads: Promise<Storage> | undefined;

  constructor(options: GcsStoreOptions = {}) {
    this.#options = options;
  }

  /** The client, created (and its library loaded) on first use. */
  storage(): Promise<Storage> {
    this.#storage ??= import('@google-cloud/storage').then(
      ({ Storage }) =>
        new Storage({
          ...(this.#options.apiEndpoint === undefined ? {} : { apiEndpoint: this.#options.apiEndpoint }),
          ...(this.#options.projectId === undefined ? {} : { projectId: this.#options.projectId }),
          // maxRetries 0 alone still retries a refused connection for ~15 s: 0 means no retries at all.
          ...(this.#options.maxRetries === undefined ? {} : { retryOptions: this.#options.maxRetries === 0 ? { autoRetry: false } : { maxRetries: this.#options.maxRetries } }),
        }),
    );
    return this.#storage;
  }

  /**
   * A client for downloads with the library's retries off: its retry of a download answered 5xx
   * pipes into a destroyed stream and throws ERR_STREAM_UNABLE_TO_PIPE outside any promise,
   * killing the worker process (@google-cloud/storage 7.x over teeny-request). readText retries itself.
   */
  #downloadClient(): Promise<Storage> {
    this.#downloads ??= import('@google-cloud/storage').then(
      ({ Storage }) =>
        new Storage({
          ...(this.#options.apiEndpoint === undefined ? {} : { apiEndpoint: this.#options.apiEndpoint }),
          ...(this.#options.projectId === undefined ? {} : { projectId: this.#options.projectId }),
          retryOptions: { autoRetry: false },
        }),
    );
    return this.#downloads;
  }

  async #file(uri: string): Promise<{ bucket: Bucket; file: File; key: string }> {
    const { bucket: name, key } = parseGsUri(uri);
    if (key === '') throw new Error(`${uri} names a bucket, not an object`);
    const bucket = (await this.storage()).bucket(name);
    return { bucket, file: bucket.file(key), key };
  }

  async location(uri: string): Promise<string | undefined> {
    const [metadata] = await (await this.storage()).bucket(parseGsUri(uri).bucket).getMetadata();
    return typeof metadata.location === 'string' && metadata.location !== '' ? metadata.location : undefined;
  }

  reader(uri: string): OutputReader {
    const root = parseGsUri(uri);
    const objectUri = (path: string): string => `gs://${root.bucket}/${joinKey(root.key, path, uri)}`;
    return {
      list: async (path: string) => this.#list((await this.storage()).bucket(root.bucket), joinKey(root.key, path, uri), root.bucket),
      readText: (path: string) => this.readText(objectUri(path)),
      stat: (path: string) => this.stat(objectUri(path)),
    };
  }

  /** One level below a folder: objects as files, prefixes as folders; every page. */
  async #list(bucket: Bucket, folder: string, bucketName: string): Promise<OutputEntry[]> {
    const prefix = folder === '' ? '' : `${folder}/`;
    const found = new Map<string, OutputEntry>();
    let pageToken: string | undefined;
    do {
      let page;
      try {
        page = await bucket.getFiles({
          autoPaginate: false,
          delimiter: '/',
          prefix,
          maxResults: this.#options.listPageSize ?? 1000,
          fields: 'items(name),prefixes,nextPageToken',
          ...(pageToken === undefined ? {} : { pageToken }),
        });
      } catch (error) {
        if (httpStatusOf(error) === 404) return []; // the bucket itself is absent: nothing is there
        throw storeError('listing', `gs://${bucketName}/${prefix}`, error);
      }
      const [files, next, raw] = page;
      for (const file of files) {
        const name = file.name.slice(prefix.length);
        // "folder/" placeholder objects (made by the console) are the folder itself.
        if (name !== '') found.set(`f:${name}`, { name, dir: false });
      }
      for (const sub of (raw as { prefixes?: string[] } | undefined)?.prefixes ?? []) {
        const name = sub.slice(prefix.length).replace(/\/$/, '');
        if (name !== '') found.set(`d:${name}`, { name, dir: true });
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken !== undefined && pageToken !== '');
    // The same order as the file store, so checks see both stores alike.
    return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async readText(uri: string): Promise<string | undefined> {
    const { bucket, key } = parseGsUri(uri);
    if (key === '') throw new Error(`${uri} names a bucket, not an object`);
    const file = (await this.#downloadClient()).bucket(bucket).file(key);
    const retries = this.#options.maxRetries ?? DEFAULT_DOWNLOAD_RETRIES;
    for (let attempt = 0; ; attempt++) {
      try {
        const [content] = await file.download();
        return content.toString('utf8');
      } catch (error) {
        const status = httpStatusOf(error);
        if (status === 404) return undefined;
        if (attempt >= retries || !isTransient(status)) throw storeError('reading', uri, error);
        await sleep(DOWNLOAD_BACKOFF_MS * 2 ** attempt);
      }
    }
  }

  async stat(uri: string): Promise<ObjectStat | undefined> {
    const { file } = await this.#file(uri);
    try {
      const [metadata] = await file.getMetadata();
      const version = [metadata.md5Hash === undefined ? '' : `md5=${metadata.md5Hash}`, metadata.generation === undefined ? '' : `generation=${metadata.generation}`].filter(Boolean).join(' ');
      return { size: Number(metadata.size ?? 0), ...(version === '' ? {} : { version }) };
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw storeError('reading metadata of', uri, error);
    }
  }

  async writeText(uri: string, text: string): Promise<void> {
    const { file } = await this.#file(uri);
    try {
      await file.save(text, { resumable: false, contentType: TEXT });
    } catch (error) {
      throw storeError('writing', uri, error);
    }
  }

  async createIfAbsent(uri: string, text: string): Promise<boolean> {
    return this.#createIfAbsent((await this.#file(uri)).file, uri, text);
  }

  async #createIfAbsent(file: File, uri: string, text: string): Promise<boolean> {
    try {
      // Generation 0 matches only "no live object": of concurrent creators exactly one wins.
      await file.save(text, { resumable: false, contentType: TEXT, preconditionOpts: { ifGenerationMatch: 0 } });
      return true;
    } catch (error) {
      if (httpStatusOf(error) === 412) return false;
      throw storeError('creating', uri, error);
    }
  }

  /** The object's generation; undefined when it does not exist. */
  async #generation(file: File, uri: string): Promise<string | undefined> {
    try {
      const [metadata] = await file.getMetadata();
      if (metadata.generation === undefined) throw new Error('the object has no generation');
      return String(metadata.generation);
    } catch (error) {
      if (httpStatusOf(error) === 404) return undefined;
      throw storeError('reading metadata of', uri, error);
    }
  }

  async appendText(uri: string, text: string): Promise<void> {
    const { bucket, file, key } = await this.#file(uri);
    let generation = await this.#generation(file, uri);
    if (generation === undefined && (await this.#createIfAbsent(file, uri, text))) return;
    // Someone else has the object: compose [existing, chunk] into it.
    const chunk = bucket.file(`${key}.append-${randomUUID()}.tmp`);
    try {
      await chunk.save(text, { resumable: false, contentType: TEXT, preconditionOpts: { ifGenerationMatch: 0 } });
    } catch (error) {
      throw storeError('appending to', uri, error);
    }
    try {
      const attempts = this.#options.appendAttempts ?? 5;
      let lastError: unknown;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        generation ??= await this.#generation(file, uri);
        if (generation === undefined) {
          // Deleted meanwhile: the chunk becomes the whole object, unless another writer recreates it first.
          if (await this.#createIfAbsent(file, uri, text)) return;
          continue;
        }
        const destination = bucket.file(key);
        destination.metadata = { ...destination.metadata, contentType: TEXT };
        try {
          // The source pinned to the generation read, and the destination only if still that
          // generation: an append by another writer in between makes this fail with 412 instead of being lost.
          await bucket.combine([bucket.file(key, { generation }), chunk], destination, { ifGenerationMatch: generation });
          return;
        } catch (error) {
          const status = httpStatusOf(error);
          if (status !== 412 && status !== 404) throw storeError('appending to', uri, error);
          lastError = error;
          generation = undefined;
          await sleep(20 * attempt + Math.floor(Math.random() * 30));
        }
      }
      throw storeError(`appending (${attempts} attempts, the object kept changing) to`, uri, lastError);
    } finally {
      // Best effort: the append itself is done (or failed) either way; a failure here leaves
      // one stray *.tmp object and must not make the caller append twice.
      await chunk.delete({ ignoreNotFound: true }).catch(() => undefined);
    }
  }

  async checkWritable(rootUri: string): Promise<void> {
    const { bucket: bucketName, key } = parseGsUri(rootUri);
    const probeKey = joinKey(key, `.recogdrive-write-probe-${randomUUID()}`, rootUri);
    const probe = (await this.storage()).bucket(bucketName).file(probeKey);
    try {
      await probe.save('probe', { resumable: false, contentType: TEXT, preconditionOpts: { ifGenerationMatch: 0 } });
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 404) {
        throw new GcsStoreError(`artifact root ${rootUri}: bucket "${bucketName}" does not exist (HTTP 404)`, status);
      }
      if (status === 401 || status === 403) {
        throw new GcsStoreError(
          `artifact root ${rootUri}: bucket "${bucketName}" is not accessible to this worker's credentials (HTTP ${status}): ${safeMessage(error)}`,
          status,
        );
      }
      throw storeError(`artifact root ${rootUri} (bucket "${bucketName}") is not writable: writing a probe object to`, `gs://${bucketName}/${probeKey}`, error);
    }
    try {
      await probe.delete({ ignoreNotFound: true });
    } catch (error) {
      throw storeError(`artifact root ${rootUri} (bucket "${bucketName}"): deleting the probe object`, `gs://${bucketName}/${probeKey}`, error);
    }
  }
}

/** Retries of one download (the library's default for other requests is 3, too). */
const DEFAULT_DOWNLOAD_RETRIES = 3;
const DOWNLOAD_BACKOFF_MS = 250;

/** A failure a repeat may not meet: no HTTP answer at all (connection refused or reset), 408, 429 or 5xx. */
function isTransient(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}
