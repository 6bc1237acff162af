// The manifest cache kept in a local file (the CLI's), plus the format shared with the S3 cache: gzip'd JSON
// lines, a header naming the format version, then one `[digest, lastUsedDay, info]` entry a line. Facts about
// a digest never change, so a cache only saves reads; anything wrong with it costs time, never a run or a plan.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { errorMessage } from '../core/errors.ts';
import { ManifestCompactor } from '../core/compact.ts';
import { isObject } from '../core/manifest.ts';
import type { ManifestInfo } from '../core/model.ts';
import type { ManifestCache } from '../core/ports.ts';

export const CACHE_FORMAT = 'registry-janitor-manifest-cache';
/**
 * Bump when ManifestInfo or the way manifests are parsed into it changes: entries written by another version
 * are dropped, since they might say something this version would not.
 */
export const CACHE_FORMAT_VERSION = 1;
/** Entries no run has used for this long are dropped on save, so the cache follows the registry. */
export const DEFAULT_MAX_UNUSED_DAYS = 30;

const DAY_MS = 86_400_000;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const KINDS = new Set(['image', 'index', 'artifact', 'schema1']);
const SOURCES = new Set(['annotation', 'config', 'history', 'children']);

export interface ManifestCacheOptions {
  /** Told about a cache that cannot be read or written (the run goes on without it). @default stderr */
  readonly warn?: (message: string) => void;
  /** @default DEFAULT_MAX_UNUSED_DAYS */
  readonly maxUnusedDays?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** What loading found, for logs. */
export interface CacheLoadStats {
  /** Entries accepted. */
  readonly loaded: number;
  /** Lines dropped because their shape or digest was wrong. */
  readonly rejected: number;
}

const isDigest = (v: unknown): v is string => typeof v === 'string' && v.length <= 256 && DIGEST.test(v);
const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const optString = (v: unknown): boolean => v === undefined || typeof v === 'string';

function blobRef(v: unknown): { digest: string; size: number } | undefined {
  return isObject(v) && isDigest(v.digest) && isSize(v.size) ? { digest: v.digest, size: v.size } : undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The entry as a ManifestInfo with only the fields the engine knows, or undefined when anything is off: a cached
 * entry of the wrong shape, or filed under another digest, is ignored and the manifest read again. With a
 * `compactor`, the entry comes out in the scanner's compact form (100,000 entries repeat a handful of media
 * types and share base layers).
 */
export function validEntry(key: string, v: unknown, compactor?: ManifestCompactor): ManifestInfo | undefined {
  if (!isObject(v) || v.digest !== key || !isDigest(key)) return undefined;
  if (typeof v.mediaType !== 'string' || typeof v.kind !== 'string' || !KINDS.has(v.kind)) return undefined;
  if (!isSize(v.size) || !Array.isArray(v.layers) || !Array.isArray(v.children)) return undefined;
  if (!optString(v.artifactType) || !optString(v.created)) return undefined;
  if (v.createdSource !== undefined && !(typeof v.createdSource === 'string' && SOURCES.has(v.createdSource)))
    return undefined;
  if ((v.created === undefined) !== (v.createdSource === undefined)) return undefined;
  if (v.subject !== undefined && !isDigest(v.subject)) return undefined;
  let ok = true;
  const layers = (v.layers as unknown[]).map((l) => {
    const ref = blobRef(l);
    if (!ref) ok = false;
    return ref ?? { digest: '', size: 0 };
  });
  const children = (v.children as unknown[]).map((c) => {
    const child: Mutable<ManifestInfo['children'][number]> = { digest: '', mediaType: '' };
    if (!isObject(c) || !isDigest(c.digest) || typeof c.mediaType !== 'string') ok = false;
    else if (!optString(c.platform) || !(c.attestation === undefined || c.attestation === true)) ok = false;
    else {
      child.digest = c.digest;
      child.mediaType = c.mediaType;
      if (c.platform !== undefined) child.platform = c.platform as string;
      if (c.attestation === true) child.attestation = true;
    }
    return child;
  });
  if (!ok) return undefined;
  let config: ManifestInfo['config'];
  if (v.config !== undefined) {
    const ref = blobRef(v.config);
    if (!ref || !isObject(v.config) || typeof v.config.mediaType !== 'string') return undefined;
    config = { digest: ref.digest, size: ref.size, mediaType: v.config.mediaType };
  }
  // What the parser guarantees per kind: images and artifacts have a config, indexes have none.
  if ((v.kind === 'image' || v.kind === 'artifact') !== (config !== undefined)) return undefined;
  if (v.kind !== 'index' && children.length > 0) return undefined;
  const info: Mutable<ManifestInfo> = {
    digest: key,
    mediaType: v.mediaType,
    kind: v.kind as ManifestInfo['kind'],
    size: v.size,
    layers,
    children,
  };
  if (config) info.config = config;
  if (v.subject !== undefined) info.subject = v.subject;
  if (v.artifactType !== undefined) info.artifactType = v.artifactType as string;
  const created = v.created as string | undefined;
  const source = v.createdSource as ManifestInfo['createdSource'];
  if (created !== undefined) {
    info.created = created;
    info.createdSource = source;
  }
  return compactor ? compactor.compact(info, created, source) : info;
}

/**
 * The in-memory side of a cache: entries by digest, each with the day it was last used. Loading and saving are
 * the file's or the bucket's; this is shared by both.
 */
export class ManifestCacheStore implements ManifestCache {
  private readonly entries = new Map<string, ManifestInfo>();
  /**
   * The day each entry was last used, for entries not used today (loaded, not asked for yet): a run that uses
   * everything empties it, so 100,000 entries carry no per-entry bookkeeping by the time the plan is made.
   */
  private readonly lastUsed = new Map<string, number>();
  private readonly today: number;
  private readonly maxUnusedDays: number;

  public constructor(options: ManifestCacheOptions = {}) {
    this.today = Math.floor((options.now ?? Date.now)() / DAY_MS);
    this.maxUnusedDays = options.maxUnusedDays ?? DEFAULT_MAX_UNUSED_DAYS;
  }

  public get size(): number {
    return this.entries.size;
  }

  public get(digest: string): ManifestInfo | undefined {
    const info = this.entries.get(digest);
    if (!info || info.digest !== digest) return undefined;
    this.lastUsed.delete(digest);
    return info;
  }

  public set(info: ManifestInfo): void {
    // What the cache handed out is already valid; anything else must be what would load again, so a bad entry
    // never outlives the run that made it.
    if (this.entries.get(info.digest) !== info && !validEntry(info.digest, info)) return;
    this.entries.set(info.digest, info);
    this.lastUsed.delete(info.digest);
  }

  /** Read the encoded form; throws when the stream as a whole is unreadable or of another format. */
  public async load(source: Readable): Promise<CacheLoadStats> {
    const gunzip = createGunzip();
    // pipe() does not pass a source's error on; the line reader must see it to stop.
    source.once('error', (err) => gunzip.destroy(err));
    const lines = createInterface({ input: source.pipe(gunzip), crlfDelay: Infinity });
    let header = true;
    let loaded = 0;
    let rejected = 0;
    const compactor = new ManifestCompactor();
    try {
      for await (const line of lines) {
        if (header) {
          header = false;
          checkHeader(line);
          continue;
        }
        if (line === '') continue;
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          rejected++;
          continue;
        }
        const [key, day, value] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
        const info = typeof key === 'string' ? validEntry(key, value, compactor) : undefined;
        if (!info || !isSize(day)) {
          rejected++;
          continue;
        }
        this.entries.set(key as string, info);
        if (day < this.today) this.lastUsed.set(key as string, day);
        loaded++;
      }
      if (header) throw new Error('it is empty');
    } catch (err) {
      // Only a stream read to its end is used: half a cache is as good as none, and simpler to reason about.
      this.entries.clear();
      this.lastUsed.clear();
      gunzip.destroy();
      source.destroy();
      throw err;
    }
    return { loaded, rejected };
  }

  /** The encoded form, gzip'd; drops entries unused for longer than maxUnusedDays. */
  public encode(): Readable {
    const header = JSON.stringify({
      format: CACHE_FORMAT,
      version: CACHE_FORMAT_VERSION,
      savedAt: new Date(this.today * DAY_MS).toISOString().slice(0, 10),
    });
    const { entries, lastUsed, today } = this;
    const oldest = this.today - this.maxUnusedDays;
    function* lines(): Generator<string> {
      yield header + '\n';
      let batch = '';
      for (const [digest, info] of entries) {
        const day = lastUsed.get(digest) ?? today;
        if (day < oldest) continue;
        batch += JSON.stringify([digest, day, info]) + '\n';
        if (batch.length > 64 * 1024) {
          yield batch;
          batch = '';
        }
      }
      if (batch) yield batch;
    }
    // Level 1: most of the text is hex digests, which barely compress further at higher levels.
    return Readable.from(lines()).pipe(createGzip({ level: 1, chunkSize: 64 * 1024 }));
  }

  /** The encoded form as one buffer (for an S3 PUT). */
  public async encodeToBuffer(): Promise<Buffer> {
    const chunks: Buffer[] = [];
    await pipeline(
      this.encode(),
      new Writable({
        write(chunk: Buffer, _enc, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    return Buffer.concat(chunks);
  }
}

function checkHeader(line: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    throw new Error('its first line is not a cache header');
  }
  if (!isObject(doc) || doc.format !== CACHE_FORMAT) throw new Error('it is not a registry-janitor cache');
  if (doc.version !== CACHE_FORMAT_VERSION) {
    throw new Error(
      `it was written in format version ${String(doc.version)}; this version reads ${CACHE_FORMAT_VERSION}`,
    );
  }
}

export const warnToStderr = (message: string): void => void process.stderr.write(`warning: ${message}\n`);

/** A cache kept somewhere (a file, an S3 object): the entries in memory, and how it was loaded and is saved. */
export interface StoredManifestCache extends ManifestCache {
  /** Entries held now. */
  readonly size: number;
  readonly loadStats: CacheLoadStats;
  /** Write the cache back. Never throws: a failure is warned and the next run reads everything again. */
  save(): Promise<boolean>;
}

/** Where a cache is kept, for openStoredCache. */
export interface CacheLocation {
  /** How it is named in warnings: a path, or s3://bucket/key. */
  readonly where: string;
  /** The encoded cache; throws when it cannot be read. */
  open(): Promise<Readable>;
  /** The error means "there is none yet" (a first run), which is not worth a warning. */
  isMissing(err: unknown): boolean;
  /** Write the whole encoded cache; throws when it cannot. */
  write(store: ManifestCacheStore): Promise<void>;
  /** What to check when writing failed. */
  readonly writeHint: string;
}

/**
 * Load a cache from where it is kept. A missing one starts empty quietly; an unreadable, corrupt or
 * other-version one starts empty with a warning. Never throws.
 */
export async function openStoredCache(
  location: CacheLocation,
  options: ManifestCacheOptions = {},
): Promise<StoredManifestCache> {
  const warn = options.warn ?? warnToStderr;
  const { where } = location;
  const store = new ManifestCacheStore(options);
  let loadStats: CacheLoadStats = { loaded: 0, rejected: 0 };
  try {
    loadStats = await store.load(await location.open());
    if (loadStats.rejected > 0)
      warn(`manifest cache ${where}: ignored ${loadStats.rejected} malformed entries (they are read again)`);
  } catch (err) {
    if (!location.isMissing(err)) {
      warn(
        `manifest cache ${where} could not be used (${errorMessage(err)}); starting with an empty cache, which ` +
          'only costs time. It is rewritten at the end of the run.',
      );
    }
  }
  return {
    get size() {
      return store.size;
    },
    loadStats,
    get: (digest) => store.get(digest),
    set: (info) => store.set(info),
    save: async () => {
      try {
        await location.write(store);
        return true;
      } catch (err) {
        warn(
          `manifest cache ${where} could not be written (${errorMessage(err)}); the next run reads everything ` +
            `again. ${location.writeHint}`,
        );
        return false;
      }
    },
  };
}

export interface FileManifestCache extends StoredManifestCache {
  readonly path: string;
}

/**
 * Open the cache at `path`. A missing file starts an empty cache quietly; an unreadable, corrupt or
 * other-version file starts an empty one with a warning. Never throws. Saving writes a temp file and renames it
 * over the old one, so a reader sees the old cache or the new one.
 */
export async function openFileCache(
  path: string,
  options: ManifestCacheOptions = {},
): Promise<FileManifestCache> {
  const cache = await openStoredCache(
    {
      where: path,
      open: () => openForReading(path),
      isMissing: (err) => (err as NodeJS.ErrnoException).code === 'ENOENT',
      write: async (store) => {
        const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        try {
          await mkdir(dirname(path), { recursive: true });
          await pipeline(store.encode(), createWriteStream(temp, { flags: 'wx' }));
          await rename(temp, path);
        } catch (err) {
          await rm(temp, { force: true }).catch(() => undefined);
          throw err;
        }
      },
      writeHint: 'Check that the folder exists and is writable.',
    },
    options,
  );
  return Object.assign(cache, { path });
}

async function openForReading(path: string): Promise<Readable> {
  const stream = createReadStream(path);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  return stream;
}
