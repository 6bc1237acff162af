// The S3 cache's MAC from a KMS HMAC key (HMAC_256): one GenerateMac per save and one VerifyMac per load. KMS
// takes at most 4 KB to sign, so what it signs is the cache's SHA-256, labelled with the cache format.
import {
  GenerateMacCommand,
  KMSInvalidMacException,
  VerifyMacCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { createHash } from 'node:crypto';
import type { CacheMac } from './manifest-cache-s3.ts';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION } from './manifest-cache-store.ts';

export const CACHE_MAC_ALGORITHM = 'HMAC_SHA_256';

/** What is signed for a cache body: a MAC over one format's bytes never verifies another's. */
export function macMessage(body: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(body).digest('hex');
  return new TextEncoder().encode(`${CACHE_FORMAT}/${CACHE_FORMAT_VERSION} sha256:${digest}`);
}

export class KmsCacheMac implements CacheMac {
  public constructor(
    private readonly client: KMSClient,
    public readonly keyId: string,
  ) {}

  public async sign(body: Uint8Array): Promise<string> {
    const out = await this.client.send(
      new GenerateMacCommand({
        KeyId: this.keyId,
        MacAlgorithm: CACHE_MAC_ALGORITHM,
        Message: macMessage(body),
      }),
    );
    if (!out.Mac || out.Mac.length === 0)
      throw new Error(`KMS GenerateMac with ${this.keyId} returned no MAC`);
    return Buffer.from(out.Mac).toString('base64');
  }

  public async verify(body: Uint8Array, mac: string): Promise<boolean> {
    const bytes = Buffer.from(mac, 'base64');
    // A tag that is not base64 of the right length cannot be this key's; no need to ask KMS.
    if (bytes.length !== 32 || bytes.toString('base64') !== mac) return false;
    try {
      const out = await this.client.send(
        new VerifyMacCommand({
          KeyId: this.keyId,
          MacAlgorithm: CACHE_MAC_ALGORITHM,
          Message: macMessage(body),
          Mac: bytes,
        }),
      );
      return out.MacValid === true;
    } catch (err) {
      // KMS answers a wrong MAC with this error rather than MacValid: false.
      if (
        err instanceof KMSInvalidMacException ||
        (err as { name?: unknown }).name === 'KMSInvalidMacException'
      )
        return false;
      throw err;
    }
  }
}
