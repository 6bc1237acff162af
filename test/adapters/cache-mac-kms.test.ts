// The KMS HMAC adapter (aws-sdk-client-mock): what it asks KMS to sign (the labelled SHA-256 of the cache, so
// any size fits KMS's 4 KB), and how it reads KMS's answers.
import { GenerateMacCommand, KMSClient, KMSInvalidMacException, VerifyMacCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { KmsCacheMac, macMessage } from '../../lambda/adapters/cache-mac-kms.ts';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION } from '../../lambda/adapters/manifest-cache-store.ts';

const kms = mockClient(KMSClient);
const KEY_ID = 'alias/registry-janitor-cache';
const MAC = new Uint8Array(32).fill(7);
const mac = () => new KmsCacheMac(new KMSClient({}), KEY_ID);
beforeEach(() => kms.reset());
// The unit tier shares modules between files: put the real client back for the files that follow.
afterAll(() => kms.restore());

describe('KmsCacheMac', () => {
  it('signs the labelled SHA-256 of the body, whatever its size, with HMAC_SHA_256', async () => {
    kms.on(GenerateMacCommand).resolves({ Mac: MAC });
    const body = new Uint8Array(5_000_000).fill(1);
    expect(await mac().sign(body)).toBe(Buffer.from(MAC).toString('base64'));
    const input = kms.commandCalls(GenerateMacCommand)[0]!.args[0].input;
    expect(input.KeyId).toBe(KEY_ID);
    expect(input.MacAlgorithm).toBe('HMAC_SHA_256');
    const hex = createHash('sha256').update(body).digest('hex');
    expect(new TextDecoder().decode(input.Message)).toBe(
      `${CACHE_FORMAT}/${CACHE_FORMAT_VERSION} sha256:${hex}`,
    );
  });

  it('a different body is a different message', () => {
    expect(macMessage(new Uint8Array([1]))).not.toEqual(macMessage(new Uint8Array([2])));
  });

  it.each([
    ['MacValid true', () => kms.on(VerifyMacCommand).resolves({ MacValid: true }), true],
    ['MacValid false', () => kms.on(VerifyMacCommand).resolves({ MacValid: false }), false],
    [
      'KMSInvalidMacException',
      () => kms.on(VerifyMacCommand).rejects(new KMSInvalidMacException({ message: 'bad', $metadata: {} })),
      false,
    ],
  ])('verify: %s', async (_name, arrange, expected) => {
    arrange();
    const tag = Buffer.from(MAC).toString('base64');
    expect(await mac().verify(new Uint8Array([1, 2]), tag)).toBe(expected);
    const input = kms.commandCalls(VerifyMacCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ KeyId: KEY_ID, MacAlgorithm: 'HMAC_SHA_256' });
    expect(Buffer.from(input.Mac!)).toEqual(Buffer.from(MAC));
  });

  it.each(['', 'not base64!', Buffer.alloc(16).toString('base64')])(
    'verify: a tag that cannot be a 32-byte MAC (%j) is false without asking KMS',
    async (tag) => {
      expect(await mac().verify(new Uint8Array([1]), tag)).toBe(false);
      expect(kms.commandCalls(VerifyMacCommand)).toHaveLength(0);
    },
  );

  it('verify: any other KMS error is thrown, for the cache to report', async () => {
    kms.on(VerifyMacCommand).rejects(new Error('AccessDeniedException'));
    await expect(mac().verify(new Uint8Array([1]), Buffer.from(MAC).toString('base64'))).rejects.toThrow(
      'AccessDeniedException',
    );
  });
});
