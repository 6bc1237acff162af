// The manifest cache in memory and its encoding, shared by the file cache (the CLI's) and the S3 cache (the
// Lambda's): gzip'd JSON lines, a header naming the format version, then one `[configDigest, lastUsedDay,
// created]` entry a line. It holds only what costs a read beyond the manifest (an image config's `created`);
// anything wrong with it costs time, never a run or a plan.
import { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { hashDigestBytes, randomHashSeed } from '../core/digest-hash.ts';
import { errorMessage } from '../core/errors.ts';
import { isObject } from '../core/manifest.ts';
import type { ManifestCache } from '../core/ports.ts';

export const CACHE_FORMAT = 'registry-janitor-manifest-cache';
/**
 * Bump when what an entry means changes: entries written by another version are dropped, since they might say
 * something this version would not. 2: entries are config `created` values only (1 held whole manifests).
 */
export const CACHE_FORMAT_VERSION = 2;
/** Entries no run has used for this long are dropped on save, so the cache follows the registry. */
export const DEFAULT_MAX_UNUSED_DAYS = 30;

const DAY_MS = 86_400_000;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** Longer than any RFC 3339 time; a longer value is not a `created` this version would have stored. */
const MAX_CREATED_LENGTH = 64;

export interface ManifestCacheOptions {
  /** Told about a cache that cannot be used, read or written (the run goes on without it). @default stderr */
  readonly warn?: (message: string) => void;
  /** @default DEFAULT_MAX_UNUSED_DAYS */
  readonly maxUnusedDays?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Seeds the in-memory table's hash (tests fix it; what the cache answers never depends on it). @default random */
  readonly hashSeed?: number;
}

/** What loading found, for logs. */
export interface CacheLoadStats {
  /** Entries accepted. */
  readonly loaded: number;
  /** Lines dropped because their shape was wrong. */
  readonly rejected: number;
}

const isDigest = (v: unknown): v is string => typeof v === 'string' && v.length <= 256 && DIGEST.test(v);
const isDay = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The entry's value (a config's `created`, or null when it has none), or undefined when the entry is malformed. */
export function validEntry(key: unknown, value: unknown): string | null | undefined {
  if (!isDigest(key)) return undefined;
  if (value === null) return null;
  return typeof value === 'string' && value.length <= MAX_CREATED_LENGTH ? value : undefined;
}

const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;
/** What ends a line, as readline reads them (a \r\n split across two chunks only adds an empty line, skipped). */
const LINE_END = /\r\n|\r|\n/;
const KEY_BYTES = 32;

/**
 * The in-memory side of a cache: config `created` values by config digest, each with the day it was last used.
 * Loading and saving are the file's or the bucket's.
 *
 * Compact, since a warm cache sits beside a 100,000-tag inventory in a 256 MB function: no object or key string
 * per entry. A sha256 digest is kept as its 32 bytes in one buffer, found through an open-addressing table of
 * entry numbers placed by a seeded hash of all 32 bytes (core/digest-hash.ts); the day an entry was last used is a number in a typed array; the `created` strings are the
 * ones the inventory holds anyway. Any other digest (another algorithm, upper-case hex: legal, and rare) keeps its
 * string in a Map of its own, so every key means exactly what it meant as a string.
 */
export class ManifestCacheStore implements ManifestCache {
  /** Entry i's sha256 digest at i * 32 (unused for an entry in `otherKeys`). */
  private keys = Buffer.alloc(0);
  private readonly created: (string | null)[] = [];
  /** Entry i's day last used (today once used in this run). */
  private days = new Int32Array(0);
  /** Open addressing: entry number + 1, 0 for empty; a power of two at least twice the entries. */
  private slots = new Int32Array(0);
  private readonly otherKeys = new Map<string, number>();
  private readonly scratch = Buffer.alloc(KEY_BYTES);
  private count = 0;
  private readonly seed: number;
  private readonly today: number;
  private readonly maxUnusedDays: number;

  public constructor(options: ManifestCacheOptions = {}) {
    this.today = Math.floor((options.now ?? Date.now)() / DAY_MS);
    this.maxUnusedDays = options.maxUnusedDays ?? DEFAULT_MAX_UNUSED_DAYS;
    this.seed = options.hashSeed ?? randomHashSeed();
  }

  public get size(): number {
    return this.count;
  }

  /** The entry number of `digest`, or -1; a sha256 digest's bytes are left in `scratch`. */
  private find(digest: string): number {
    if (!SHA256_DIGEST.test(digest)) return this.otherKeys.get(digest) ?? -1;
    const key = this.scratch;
    key.write(digest.slice(7), 0, KEY_BYTES, 'hex');
    const mask = this.slots.length - 1;
    if (mask < 0) return -1;
    for (let slot = hashDigestBytes(key, 0, this.seed) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]! - 1;
      if (entry < 0) return -1;
      if (key.compare(this.keys, entry * KEY_BYTES, entry * KEY_BYTES + KEY_BYTES) === 0) return entry;
    }
  }

  private put(digest: string, created: string | null, day: number): void {
    const found = this.find(digest);
    if (found >= 0) {
      this.created[found] = created;
      this.days[found] = day;
      return;
    }
    const entry = this.count++;
    if (entry >= this.days.length) this.grow();
    this.created[entry] = created;
    this.days[entry] = day;
    if (SHA256_DIGEST.test(digest)) {
      // find() left the digest's bytes in scratch.
      this.scratch.copy(this.keys, entry * KEY_BYTES);
      this.index(entry);
    } else {
      this.otherKeys.set(digest, entry);
    }
  }

  private index(entry: number): void {
    const mask = this.slots.length - 1;
    let slot = hashDigestBytes(this.keys, entry * KEY_BYTES, this.seed) & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = entry + 1;
  }

  private grow(): void {
    const capacity = Math.max(1024, this.days.length * 2);
    const keys = Buffer.alloc(capacity * KEY_BYTES);
    this.keys.copy(keys);
    this.keys = keys;
    const days = new Int32Array(capacity);
    days.set(this.days);
    this.days = days;
    this.slots = new Int32Array(capacity * 2);
    const others = new Set(this.otherKeys.values());
    for (let e = 0; e < this.count - 1; e++) if (!others.has(e)) this.index(e);
  }

  private digestAt(entry: number, others: ReadonlyMap<number, string>): string {
    return (
      others.get(entry) ??
      'sha256:' + this.keys.toString('hex', entry * KEY_BYTES, entry * KEY_BYTES + KEY_BYTES)
    );
  }

  public getConfigCreated(configDigest: string): string | null | undefined {
    const entry = this.find(configDigest);
    if (entry < 0) return undefined;
    this.days[entry] = this.today;
    return this.created[entry];
  }

  public setConfigCreated(configDigest: string, created: string | null): void {
    // Only what would load again, so a bad entry never outlives the run that made it.
    if (validEntry(configDigest, created) === undefined) return;
    this.put(configDigest, created, this.today);
  }

  /** Drop everything (a cache that turned out not to be trustworthy after all). */
  public clear(): void {
    this.keys = Buffer.alloc(0);
    this.created.length = 0;
    this.days = new Int32Array(0);
    this.slots = new Int32Array(0);
    this.otherKeys.clear();
    this.count = 0;
  }

  /** Read the encoded form; throws when the stream as a whole is unreadable or of another format. */
  public async load(source: Readable): Promise<CacheLoadStats> {
    const gunzip = createGunzip();
    // pipe() does not pass a source's error on; the reader must see it to stop.
    source.once('error', (err) => gunzip.destroy(err));
    let header = true;
    let loaded = 0;
    let rejected = 0;
    const entry = (line: string): void => {
      if (header) {
        header = false;
        checkHeader(line);
        return;
      }
      if (line === '') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        rejected++;
        return;
      }
      const [key, day, value] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
      const created = validEntry(key, value);
      if (created === undefined || !isDay(day)) {
        rejected++;
        return;
      }
      this.put(key as string, created, Math.min(day, this.today));
      loaded++;
    };
    try {
      // Each chunk's lines are read at once, with no await between them, so what a line costs (its text, the
      // parsed array) dies young; queued line by line through readline it lived long enough to be promoted, and
      // the old generation it filled before the scan began raised a warm run's peak RSS by about 10 MB.
      const decoder = new StringDecoder('utf8');
      let rest = '';
      for await (const chunk of source.pipe(gunzip)) {
        const lines = (rest + decoder.write(chunk as Buffer)).split(LINE_END);
        rest = lines.pop()!;
        for (const line of lines) entry(line);
      }
      rest += decoder.end();
      if (rest !== '') entry(rest);
      if (header) throw new Error('it is empty');
    } catch (err) {
      // Only a stream read to its end is used: half a cache is as good as none, and simpler to reason about.
      this.clear();
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
    const oldest = this.today - this.maxUnusedDays;
    const others = new Map([...this.otherKeys].map(([digest, entry]) => [entry, digest]));
    const { count, days, created } = this;
    const digestAt = (entry: number): string => this.digestAt(entry, others);
    function* lines(): Generator<string> {
      yield header + '\n';
      let batch = '';
      for (let entry = 0; entry < count; entry++) {
        const day = days[entry]!;
        if (day < oldest) continue;
        batch += JSON.stringify([digestAt(entry), day, created[entry]]) + '\n';
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

  /** The encoded form as one buffer (for an S3 PUT, and its MAC). */
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

/**
 * A cache that is there but must not be believed (someone else could have written it); the message says why
 * and how to fix it.
 */
export class UntrustedCacheError extends Error {
  public override readonly name = 'UntrustedCacheError';
}

/** Where a cache is kept, for openStoredCache. */
export interface CacheLocation {
  /** How it is named in warnings: a path, or s3://bucket/key. */
  readonly where: string;
  /** The encoded cache, once it is known to be the janitor's own; throws when it cannot be read or trusted. */
  open(): Promise<Readable>;
  /** The error means "there is none yet" (a first run), which is not worth a warning. */
  isMissing(err: unknown): boolean;
  /** Write the whole encoded cache; throws when it cannot. */
  write(store: ManifestCacheStore): Promise<void>;
  /** What to check when writing failed. */
  readonly writeHint: string;
}

/**
 * Load a cache from where it is kept. A missing one starts empty quietly; an untrusted, unreadable, corrupt
 * or other-version one starts empty with a warning: the plan is then the one a run without a cache makes.
 * Never throws.
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
    store.clear();
    if (err instanceof UntrustedCacheError) {
      warn(
        `manifest cache ${where} is not used: ${err.message}. The run reads everything again, so the plan is ` +
          'the same as without a cache.',
      );
    } else if (!location.isMissing(err)) {
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
    getConfigCreated: (digest) => store.getConfigCreated(digest),
    setConfigCreated: (digest, created) => store.setConfigCreated(digest, created),
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
