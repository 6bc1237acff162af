// The manifest cache kept as one S3 object (the Lambda's), in the same format as the file cache. Anyone who may
// put objects in the bucket could write it, so it carries a MAC from a key only the function may use, checked
// once per load: an object without one, or whose MAC does not match, is not used (with a warning).
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { errorMessage } from '../core/errors.ts';
import {
  openStoredCache,
  UntrustedCacheError,
  type ManifestCacheOptions,
  type StoredManifestCache,
} from './manifest-cache-store.ts';

/** Signs the cache's bytes and checks a signature (in the Lambda, the stack's KMS HMAC key). */
export interface CacheMac {
  /** Names the key in messages. */
  readonly keyId: string;
  /** One call per save. */
  sign(body: Uint8Array): Promise<string>;
  /** One call per load; false when the MAC is not this key's over these bytes. */
  verify(body: Uint8Array, mac: string): Promise<boolean>;
}

/** The object's user metadata entry holding the MAC (S3 lowercases metadata keys). */
export const MAC_METADATA_KEY = 'janitor-cache-mac';

export interface S3ManifestCache extends StoredManifestCache {
  readonly bucket: string;
  readonly key: string;
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** The SDK hands back a Node stream in Node; anything else that can give its bytes is taken too. */
export async function bodyBytes(body: unknown): Promise<Buffer> {
  const b = body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
  if (b && typeof b.transformToByteArray === 'function') return Buffer.from(await b.transformToByteArray());
  if (body instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }
  if (body instanceof Uint8Array) return Buffer.from(body);
  throw new Error('the object came back without a readable body');
}

/** Open the cache object `s3://bucket/key`, believed only when `mac` verifies it. Never throws. */
export async function openS3Cache(
  client: S3Client,
  bucket: string,
  key: string,
  mac: CacheMac,
  options: ManifestCacheOptions = {},
): Promise<S3ManifestCache> {
  const cache = await openStoredCache(
    {
      where: `s3://${bucket}/${key}`,
      open: async () => {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const tag = object.Metadata?.[MAC_METADATA_KEY];
        if (tag === undefined || tag === '') {
          (object.Body as Readable | undefined)?.destroy?.();
          throw new UntrustedCacheError(
            'it carries no MAC (written by an older version, or by something other than this function)',
          );
        }
        // The whole object is checked before any of it is parsed.
        const bytes = await bodyBytes(object.Body);
        let valid: boolean;
        try {
          valid = await mac.verify(bytes, tag);
        } catch (err) {
          throw new UntrustedCacheError(
            `its MAC could not be checked with key ${mac.keyId} (${errorMessage(err)}); check that the function ` +
              'may kms:VerifyMac with it',
          );
        }
        if (!valid) {
          throw new UntrustedCacheError(
            `its MAC does not match its contents under key ${mac.keyId}: it was changed by something other than ` +
              'this function',
          );
        }
        return Readable.from([bytes]);
      },
      isMissing,
      // One PUT replaces the object whole, so a reader sees the old cache or the new one, never a mix.
      write: async (store) => {
        const bytes = await store.encodeToBuffer();
        const tag = await mac.sign(bytes);
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: bytes,
            ContentType: 'application/gzip',
            Metadata: { [MAC_METADATA_KEY]: tag },
          }),
        );
      },
      writeHint: `Check that the function may s3:PutObject on the bucket and kms:GenerateMac with key ${mac.keyId}.`,
    },
    options,
  );
  return Object.assign(cache, { bucket, key });
}
