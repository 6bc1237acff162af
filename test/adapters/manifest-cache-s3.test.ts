// The S3 manifest cache (aws-sdk-client-mock): a missing object is a quiet first run, anything unreadable an
// empty cache with a warning, a save one PUT of the whole cache that the next run reads back.
import { GetObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION } from '../../lambda/adapters/manifest-cache-file.ts';
import { openS3Cache } from '../../lambda/adapters/manifest-cache-s3.ts';
import type { ManifestInfo } from '../../lambda/core/model.ts';
import { dg } from '../support/inventory.ts';

const s3 = mockClient(S3Client);
const BUCKET = 'cache-bucket';
const KEY = 'manifest-cache/v1.ndjson.gz';

const image: ManifestInfo = {
  digest: dg('image'),
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  kind: 'image',
  size: 527,
  config: { digest: dg('config'), size: 300, mediaType: 'application/vnd.docker.container.image.v1+json' },
  layers: [{ digest: dg('layer'), size: 1000 }],
  children: [],
  created: '2024-01-01T00:00:00Z',
  createdSource: 'config',
};

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

let warnings: string[];
const warn = (m: string): void => void warnings.push(m);
beforeEach(() => {
  s3.reset();
  warnings = [];
});

describe('openS3Cache', () => {
  it('a missing object (NoSuchKey) is a first run: empty, no warning; save PUTs the whole cache', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    s3.on(PutObjectCommand).resolves({});
    const cache = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([]);
    cache.set(image);
    expect(await cache.save()).toBe(true);
    const puts = s3.commandCalls(PutObjectCommand);
    expect(puts).toHaveLength(1);
    const input = puts[0]!.args[0].input;
    expect(input).toMatchObject({ Bucket: BUCKET, Key: KEY, ContentType: 'application/gzip' });
    const lines = gunzipSync(input.Body as Buffer)
      .toString()
      .trim()
      .split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION });
    expect(JSON.parse(lines[1]!)).toEqual([image.digest, expect.any(Number), image]);
  });

  it('reads back what it saved (stream body, as the Node SDK gives it)', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    s3.on(PutObjectCommand).resolves({});
    const first = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    first.set(image);
    await first.save();
    const saved = s3.commandCalls(PutObjectCommand)[0]!.args[0].input.Body as Buffer;
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: KEY }).resolves({ Body: body(saved) });
    const second = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    expect(second.loadStats).toEqual({ loaded: 1, rejected: 0 });
    expect(second.get(image.digest)).toStrictEqual(image);
    expect(warnings).toEqual([]);
  });

  it('accepts a body that only offers transformToByteArray', async () => {
    const bytes = gzipSync(
      JSON.stringify({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION }) +
        '\n' +
        JSON.stringify([image.digest, 1, image]) +
        '\n',
    );
    s3.on(GetObjectCommand).resolves({
      Body: { transformToByteArray: () => Promise.resolve(new Uint8Array(bytes)) } as never,
    });
    const cache = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    expect(cache.get(image.digest)).toStrictEqual(image);
  });

  it.each([
    ['access denied', () => s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403))],
    ['a network failure', () => s3.on(GetObjectCommand).rejects(new Error('socket hang up'))],
    ['a body that is not gzip', () => s3.on(GetObjectCommand).resolves({ Body: body(Buffer.from('{}')) })],
    [
      'another format version',
      () =>
        s3.on(GetObjectCommand).resolves({
          Body: body(gzipSync(JSON.stringify({ format: CACHE_FORMAT, version: 999 }) + '\n')),
        }),
    ],
    ['no body at all', () => s3.on(GetObjectCommand).resolves({})],
  ])('%s: starts empty with a warning and never throws', async (_name, arrange) => {
    arrange();
    const cache = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(/could not be used .* empty cache/)]);
    expect(warnings[0]).toContain(`s3://${BUCKET}/${KEY}`);
  });

  it('a failed PUT warns and returns false instead of failing the run', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    s3.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403));
    const cache = await openS3Cache(new S3Client({}), BUCKET, KEY, { warn });
    cache.set(image);
    expect(await cache.save()).toBe(false);
    expect(warnings).toEqual([expect.stringMatching(/could not be written .* s3:PutObject/)]);
  });
});
