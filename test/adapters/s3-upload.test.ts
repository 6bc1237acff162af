// The protocol of a large upload (lambda/adapters/s3-upload.ts) as S3 sees it, with aws-sdk-client-mock: with the
// client's default checksums the upload is begun for CRC32 and completed naming each part's checksum, in order;
// a client that checksums only when required sends none; a part S3 refuses aborts the upload. The bytes
// themselves are checked against the local S3 stand-in (test/integration/s3-upload.test.ts).
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { UPLOAD_PART_BYTES, uploadText } from '../../lambda/adapters/s3-upload.ts';

const s3 = mockClient(S3Client);
afterAll(() => s3.restore());
beforeEach(() => s3.reset());

const target = { Bucket: 'b', Key: 'workflow-runs/x/plan.json', ContentType: 'application/json' };
/** 12 MiB and a bit, in 1 KiB pieces: three parts. */
const big = (): Generator<string> =>
  (function* () {
    for (let i = 0; i < 12 * 1024 + 5; i++) yield 'x'.repeat(1024);
  })();

describe('uploadText', () => {
  it('begins the upload for CRC32 and completes it with each part and its checksum, in order', async () => {
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    const sizes: number[] = [];
    s3.on(UploadPartCommand).callsFake((input: { PartNumber: number; Body: Uint8Array }) => {
      sizes.push(input.Body.length);
      return { ETag: `"e${input.PartNumber}"`, ChecksumCRC32: `c${input.PartNumber}` };
    });
    s3.on(CompleteMultipartUploadCommand).resolves({});
    await uploadText(new S3Client({ region: 'eu-west-1' }), target, big());
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject({
      ...target,
      ChecksumAlgorithm: 'CRC32',
    });
    expect(s3.commandCalls(UploadPartCommand).map((c) => c.args[0].input.ChecksumAlgorithm)).toEqual([
      'CRC32',
      'CRC32',
      'CRC32',
    ]);
    expect(sizes).toEqual([UPLOAD_PART_BYTES, UPLOAD_PART_BYTES, 2 * 1024 * 1024 + 5 * 1024]);
    expect(s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input).toEqual({
      Bucket: 'b',
      Key: target.Key,
      UploadId: 'u1',
      MultipartUpload: {
        Parts: [1, 2, 3].map((n) => ({ PartNumber: n, ETag: `"e${n}"`, ChecksumCRC32: `c${n}` })),
      },
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
  });

  it('names no checksum when the client checksums only where S3 requires it', async () => {
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3.on(UploadPartCommand).resolves({ ETag: '"e"' });
    s3.on(CompleteMultipartUploadCommand).resolves({});
    const client = new S3Client({ region: 'eu-west-1', requestChecksumCalculation: 'WHEN_REQUIRED' });
    await uploadText(client, target, big());
    expect(s3.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input.ChecksumAlgorithm).toBeUndefined();
    expect(s3.commandCalls(UploadPartCommand)[0]!.args[0].input.ChecksumAlgorithm).toBeUndefined();
  });

  it('aborts the upload when S3 refuses a part, and rejects with S3 error', async () => {
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    s3.on(UploadPartCommand).resolvesOnce({ ETag: '"e1"' }).rejects(new Error('SlowDown'));
    s3.on(AbortMultipartUploadCommand).resolves({});
    await expect(uploadText(new S3Client({ region: 'eu-west-1' }), target, big())).rejects.toThrow(
      'SlowDown',
    );
    expect(s3.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input).toEqual({
      Bucket: 'b',
      Key: target.Key,
      UploadId: 'u1',
    });
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('sends a text of exactly one part as one PUT', async () => {
    s3.on(PutObjectCommand).resolves({});
    await uploadText(new S3Client({ region: 'eu-west-1' }), target, ['y'.repeat(UPLOAD_PART_BYTES)]);
    const put = s3.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect((put.Body as Uint8Array).length).toBe(UPLOAD_PART_BYTES);
    expect(s3.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
  });
});
