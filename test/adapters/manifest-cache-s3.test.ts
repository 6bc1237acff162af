// The S3 manifest cache (aws-sdk-client-mock for S3 and KMS, the KMS stand-in computing real HMACs): a missing
// object is a quiet first run; a save is one GenerateMac and one PUT, a load one VerifyMac; an object whose MAC
// is missing, wrong or not for its bytes is dropped with a warning, and the plan is the one made without it.
import {
  GenerateMacCommand,
  KMSClient,
  KMSInvalidMacException,
  VerifyMacCommand,
  type VerifyMacCommandInput,
} from '@aws-sdk/client-kms';
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { KmsCacheMac } from '../../lambda/adapters/cache-mac-kms.ts';
import { MAC_METADATA_KEY, openS3Cache } from '../../lambda/adapters/manifest-cache-s3.ts';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  ManifestCacheStore,
} from '../../lambda/adapters/manifest-cache-store.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import type { ManifestCache } from '../../lambda/core/ports.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { SyntheticRegistry } from '../bench/synthetic-registry.ts';
import { dg } from '../support/inventory.ts';

const s3 = mockClient(S3Client);
const kms = mockClient(KMSClient);
// The unit tier shares modules between files: put the real clients back for the files that follow.
afterAll(() => {
  s3.restore();
  kms.restore();
});
const BUCKET = 'cache-bucket';
const KEY = 'manifest-cache/registry.json';
const KEY_ID = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const CONFIG = dg('config');

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

/** The Node SDK answers with a stream; tests hand one back the same way. */
function body(bytes: Buffer): never {
  return Readable.from([bytes]) as never;
}

/** What KMS does with an HMAC key: real HMACs, and a wrong MAC answered with KMSInvalidMacException. */
function standInKms(): void {
  const secret = randomBytes(32);
  const hmac = (message: Uint8Array) => createHmac('sha256', secret).update(message).digest();
  kms.on(GenerateMacCommand).callsFake((input: { Message: Uint8Array }) => ({
    Mac: new Uint8Array(hmac(input.Message)),
    KeyId: KEY_ID,
    MacAlgorithm: 'HMAC_SHA_256',
  }));
  kms.on(VerifyMacCommand).callsFake((input: VerifyMacCommandInput) => {
    const expected = hmac(input.Message!);
    const given = Buffer.from(input.Mac!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new KMSInvalidMacException({ message: 'invalid MAC', $metadata: {} });
    }
    return { MacValid: true, KeyId: KEY_ID, MacAlgorithm: 'HMAC_SHA_256' };
  });
}

/** An S3 bucket of one object, as written and read back (metadata included). */
function standInBucket(): { object?: { Body: Buffer; Metadata?: Record<string, string> } } {
  const bucket: { object?: { Body: Buffer; Metadata?: Record<string, string> } } = {};
  s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
    bucket.object = { Body: input.Body as Buffer, ...(input.Metadata ? { Metadata: input.Metadata } : {}) };
    return {};
  });
  s3.on(GetObjectCommand).callsFake(() => {
    if (!bucket.object) throw s3Error('NoSuchKey', 404);
    return { Body: body(bucket.object.Body), Metadata: bucket.object.Metadata ?? {} };
  });
  return bucket;
}

let warnings: string[];
const warn = (m: string): void => void warnings.push(m);
const open = () =>
  openS3Cache(new S3Client({}), BUCKET, KEY, new KmsCacheMac(new KMSClient({}), KEY_ID), { warn });
beforeEach(() => {
  s3.reset();
  kms.reset();
  warnings = [];
  standInKms();
});

describe('openS3Cache', () => {
  it('a missing object is a first run: empty, no warning, no KMS call; save signs once and PUTs once', async () => {
    const bucket = standInBucket();
    const cache = await open();
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([]);
    expect(kms.commandCalls(VerifyMacCommand)).toHaveLength(0);
    cache.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    expect(await cache.save()).toBe(true);
    expect(kms.commandCalls(GenerateMacCommand)).toHaveLength(1);
    expect(kms.commandCalls(GenerateMacCommand)[0]!.args[0].input).toMatchObject({
      KeyId: KEY_ID,
      MacAlgorithm: 'HMAC_SHA_256',
    });
    const puts = s3.commandCalls(PutObjectCommand);
    expect(puts).toHaveLength(1);
    expect(puts[0]!.args[0].input).toMatchObject({
      Bucket: BUCKET,
      Key: KEY,
      ContentType: 'application/gzip',
    });
    expect(bucket.object?.Metadata?.[MAC_METADATA_KEY]).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const lines = gunzipSync(bucket.object!.Body).toString().trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION });
    expect(JSON.parse(lines[1]!)).toEqual([CONFIG, expect.any(Number), '2024-01-01T00:00:00Z']);
  });

  it('reads back what it saved with one VerifyMac', async () => {
    standInBucket();
    const first = await open();
    first.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    await first.save();
    const second = await open();
    expect(kms.commandCalls(VerifyMacCommand)).toHaveLength(1);
    expect(second.loadStats).toEqual({ loaded: 1, rejected: 0 });
    expect(second.getConfigCreated(CONFIG)).toBe('2024-01-01T00:00:00Z');
    expect(warnings).toEqual([]);
  });

  it('accepts a body that only offers transformToByteArray', async () => {
    const bucket = standInBucket();
    const first = await open();
    first.setConfigCreated(CONFIG, null);
    await first.save();
    const { Body, Metadata } = bucket.object!;
    s3.on(GetObjectCommand).resolves({
      Body: { transformToByteArray: () => Promise.resolve(new Uint8Array(Body)) } as never,
      Metadata: Metadata!,
    });
    expect((await open()).getConfigCreated(CONFIG)).toBeNull();
  });

  it.each([
    ['access denied', () => s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403))],
    ['a network failure', () => s3.on(GetObjectCommand).rejects(new Error('socket hang up'))],
  ])('%s: starts empty with a warning and never throws', async (_name, arrange) => {
    arrange();
    const cache = await open();
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(/could not be used .* empty cache/)]);
    expect(warnings[0]).toContain(`s3://${BUCKET}/${KEY}`);
  });

  it('a failed PUT warns and returns false instead of failing the run', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    s3.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403));
    const cache = await open();
    cache.setConfigCreated(CONFIG, null);
    expect(await cache.save()).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/could not be written .* s3:PutObject/)]);
  });

  it('a failed GenerateMac writes nothing: an unsigned cache would only be refused', async () => {
    standInBucket();
    kms.on(GenerateMacCommand).rejects(new Error('AccessDeniedException'));
    const cache = await open();
    cache.setConfigCreated(CONFIG, null);
    expect(await cache.save()).toBe(false);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(warnings).toEqual([expect.stringMatching(/could not be written .*kms:GenerateMac/)]);
  });
});

describe('a cache whose MAC fails is dropped, and the plan is the one made without it', () => {
  const policy = validatePolicy(
    { rules: [{ repositories: ['**'], keep: { newest: 3 } }] },
    'test-policy.yaml',
  );
  const shape = { repos: 4, tags: 6 };
  const NOW = new Date(Date.UTC(2025, 5, 1));

  async function planWith(cache?: ManifestCache): Promise<{ plan: Plan; registry: SyntheticRegistry }> {
    const registry = new SyntheticRegistry(shape);
    const inventory = await scanRegistry(registry, { policy, ...(cache ? { cache } : {}) });
    return { plan: makePlan(inventory, policy, NOW), registry };
  }

  /** The newest images' `created` set to 2015, as an attacker with s3:PutObject would. */
  function poisoned(bytes: Buffer): Buffer {
    const [head, ...entries] = gunzipSync(bytes).toString().trim().split('\n');
    const parsed = entries.map((l) => JSON.parse(l) as [string, number, string | null]);
    const newest = parsed
      .map(([, , created]) => created ?? '')
      .sort()
      .at(-1);
    const lines = parsed.map(([d, day, created]) =>
      JSON.stringify([d, day, created === newest ? '2015-01-01T00:00:00Z' : created]),
    );
    return gzipSync([head, ...lines].join('\n') + '\n');
  }

  /** A run that fills the bucket with an honest, signed cache. */
  async function honestRun(): Promise<ReturnType<typeof standInBucket>> {
    const bucket = standInBucket();
    const cache = await open();
    await planWith(cache);
    expect(await cache.save()).toBe(true);
    warnings = [];
    return bucket;
  }

  it('believed, the poisoned cache would delete the newest images (what the MAC is for)', async () => {
    const bucket = await honestRun();
    const { plan: reference } = await planWith();
    const store = new ManifestCacheStore();
    await store.load(Readable.from([poisoned(bucket.object!.Body)]));
    const { plan } = await planWith(store);
    const deleted = (p: Plan) => p.repositories.flatMap((r) => r.deleteManifests.map((m) => m.digest));
    const kept = new Set(reference.repositories.flatMap((r) => r.kept.map((t) => t.digest)));
    expect(deleted(plan).filter((d) => kept.has(d))).not.toEqual([]);
  });

  it.each<[string, (object: { Body: Buffer; Metadata?: Record<string, string> }) => void, RegExp]>([
    [
      'a tampered body under the honest MAC',
      (o) => {
        o.Body = poisoned(o.Body);
      },
      /MAC does not match its contents/,
    ],
    [
      'a tampered body under a MAC of the attacker’s own',
      (o) => {
        o.Body = poisoned(o.Body);
        o.Metadata = { [MAC_METADATA_KEY]: randomBytes(32).toString('base64') };
      },
      /MAC does not match its contents/,
    ],
    [
      'a tampered body without a MAC',
      (o) => {
        o.Body = poisoned(o.Body);
        delete o.Metadata;
      },
      /carries no MAC/,
    ],
    [
      'a MAC that is not even base64 of 32 bytes',
      (o) => {
        o.Metadata = { [MAC_METADATA_KEY]: 'not a mac' };
      },
      /MAC does not match its contents/,
    ],
  ])('%s', async (_name, tamper, why) => {
    const bucket = await honestRun();
    tamper(bucket.object!);
    const { plan: reference, registry: uncached } = await planWith();
    const cache = await open();
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(why)]);
    expect(warnings[0]).toMatch(/is not used: .*the plan is the same as without a cache/);
    const { plan, registry } = await planWith(cache);
    expect(JSON.stringify(plan)).toBe(JSON.stringify(reference));
    expect(registry.counts).toEqual(uncached.counts);
    expect(kms.commandCalls(VerifyMacCommand).length).toBeLessThanOrEqual(1);
  });

  it('a VerifyMac that fails (no permission) drops the cache with a warning naming the permission', async () => {
    await honestRun();
    kms.on(VerifyMacCommand).rejects(new Error('User is not authorized to perform: kms:VerifyMac'));
    const { plan: reference } = await planWith();
    const cache = await open();
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(/MAC could not be checked .*kms:VerifyMac/)]);
    expect(JSON.stringify((await planWith(cache)).plan)).toBe(JSON.stringify(reference));
  });

  it('an honest cache gives the same plan without reading a config', async () => {
    await honestRun();
    const { plan: reference } = await planWith();
    const cache = await open();
    expect(cache.size).toBeGreaterThan(0);
    const { plan, registry } = await planWith(cache);
    expect(JSON.stringify(plan)).toBe(JSON.stringify(reference));
    expect(registry.counts.blobGet).toBe(0);
    expect(warnings).toEqual([]);
  });
});
