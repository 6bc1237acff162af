// The manifest cache kept as one S3 object (the Lambda's), in the same format as the file cache. A missing
// object is a first run; one that cannot be read or decoded starts an empty cache with a warning.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { errorMessage } from '../core/errors.ts';
import type { ManifestCache } from '../core/ports.ts';
import {
  ManifestCacheStore,
  warnToStderr,
  type CacheLoadStats,
  type ManifestCacheOptions,
} from './manifest-cache-file.ts';

export interface S3ManifestCache extends ManifestCache {
  readonly bucket: string;
  readonly key: string;
  /** Entries held now. */
  readonly size: number;
  readonly loadStats: CacheLoadStats;
  /** PUT the cache object. Never throws: a failure is warned and the next run reads everything again. */
  save(): Promise<boolean>;
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The SDK hands back a Node stream in Node; anything else that can give its bytes is taken too. */
async function bodyStream(body: unknown): Promise<Readable> {
  if (body instanceof Readable) return body;
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  if (b && typeof b.transformToByteArray === 'function') {
    return Readable.from([Buffer.from(await b.transformToByteArray())]);
  }
  if (body instanceof Uint8Array) return Readable.from([Buffer.from(body)]);
  throw new Error('the object came back without a readable body');
}

/** Open the cache object `s3://bucket/key`. Never throws. */
export async function openS3Cache(
  client: S3Client,
  bucket: string,
  key: string,
  options: ManifestCacheOptions = {},
): Promise<S3ManifestCache> {
  const warn = options.warn ?? warnToStderr;
  const where = `s3://${bucket}/${key}`;
  const store = new ManifestCacheStore(options);
  let loadStats: CacheLoadStats = { loaded: 0, rejected: 0 };
  try {
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    loadStats = await store.load(await bodyStream(got.Body));
    if (loadStats.rejected > 0)
      warn(`manifest cache ${where}: ignored ${loadStats.rejected} malformed entries (they are read again)`);
  } catch (err) {
    if (!isMissing(err)) {
      warn(
        `manifest cache ${where} could not be used (${errorMessage(err)}); starting with an empty cache, which ` +
          'only costs time. It is rewritten at the end of the run.',
      );
    }
  }
  return {
    bucket,
    key,
    get size() {
      return store.size;
    },
    loadStats,
    get: (digest) => store.get(digest),
    set: (info) => store.set(info),
    save: async () => {
      try {
        // One PUT replaces the object whole, so a reader sees the old cache or the new one, never a mix.
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: await store.encodeToBuffer(),
            ContentType: 'application/gzip',
          }),
        );
        return true;
      } catch (err) {
        warn(
          `manifest cache ${where} could not be written (${errorMessage(err)}); the next run reads everything ` +
            'again. Check that the function may s3:PutObject on the bucket.',
        );
        return false;
      }
    },
  };
}
