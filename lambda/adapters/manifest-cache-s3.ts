// The manifest cache kept as one S3 object (the Lambda's), in the same format as the file cache. A missing
// object is a first run; one that cannot be read or decoded starts an empty cache with a warning.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import {
  openStoredCache,
  type ManifestCacheOptions,
  type StoredManifestCache,
} from './manifest-cache-file.ts';

export interface S3ManifestCache extends StoredManifestCache {
  readonly bucket: string;
  readonly key: string;
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
  const cache = await openStoredCache(
    {
      where: `s3://${bucket}/${key}`,
      open: async () =>
        bodyStream((await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body),
      isMissing,
      // One PUT replaces the object whole, so a reader sees the old cache or the new one, never a mix.
      write: async (store) => {
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: await store.encodeToBuffer(),
            ContentType: 'application/gzip',
          }),
        );
      },
      writeHint: 'Check that the function may s3:PutObject on the bucket.',
    },
    options,
  );
  return Object.assign(cache, { bucket, key });
}
