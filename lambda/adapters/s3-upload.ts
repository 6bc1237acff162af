// Writes one object to S3 from text made piece by piece (a plan or a report of a large registry is tens of MB), so
// that the whole body never exists at once: under one part it is one PutObject, over it a multipart upload. The
// text is encoded into one part-sized buffer, which each part is sent from and which is then filled again, so an
// upload holds 5 MiB however large the object. (@aws-sdk/lib-storage's Upload, measured here first, copies each
// part into a fresh buffer: at 100,000 tags that left 40-50 MB of spent parts for the collector and took the plan
// step past 256 MB.) The protocol is lib-storage's: CRC32 checksums when the client computes them (its default),
// the parts' checksums named on completion, and a failure aborts the upload so no parts are left behind.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3's least part size (5 MiB): a part of a multipart upload, all but the last, may not be smaller. */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;
/** S3's most parts in one upload (50 GB at the least part size). */
const MAX_PARTS = 10_000;

export interface UploadTarget {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
}

/**
 * Uploads the text (one string, or its pieces in order) as UTF-8. A failure, the pieces' own included, aborts
 * the multipart upload, so no half-written object and no parts are left behind, and rejects with the error.
 */
export async function uploadText(
  client: S3Client,
  target: UploadTarget,
  body: string | Iterable<string>,
): Promise<void> {
  const { Bucket, Key } = target;
  const buffer = Buffer.allocUnsafeSlow(UPLOAD_PART_BYTES);
  let used = 0;
  let uploadId: string | undefined;
  const parts: CompletedPart[] = [];
  // As lib-storage: the client's default (WHEN_SUPPORTED) checksums each part, so the upload is made for CRC32.
  const checksum =
    (await client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED'
      ? { ChecksumAlgorithm: 'CRC32' as const }
      : {};
  const sendPart = async (): Promise<void> => {
    if (uploadId === undefined) {
      const created = await client.send(new CreateMultipartUploadCommand({ ...target, ...checksum }));
      if (!created.UploadId) throw new Error(`S3 began no multipart upload of s3://${Bucket}/${Key}`);
      uploadId = created.UploadId;
    }
    const PartNumber = parts.length + 1;
    if (PartNumber > MAX_PARTS) throw new Error(`s3://${Bucket}/${Key} is over ${MAX_PARTS} parts`);
    const sent = await client.send(
      new UploadPartCommand({
        Bucket,
        Key,
        UploadId: uploadId,
        PartNumber,
        Body: buffer.subarray(0, used),
        ...checksum,
      }),
    );
    if (!sent.ETag) throw new Error(`S3 answered part ${PartNumber} of s3://${Bucket}/${Key} with no ETag`);
    parts.push({
      PartNumber,
      ETag: sent.ETag,
      ...(sent.ChecksumCRC32 ? { ChecksumCRC32: sent.ChecksumCRC32 } : {}),
      ...(sent.ChecksumCRC32C ? { ChecksumCRC32C: sent.ChecksumCRC32C } : {}),
      ...(sent.ChecksumCRC64NVME ? { ChecksumCRC64NVME: sent.ChecksumCRC64NVME } : {}),
      ...(sent.ChecksumSHA1 ? { ChecksumSHA1: sent.ChecksumSHA1 } : {}),
      ...(sent.ChecksumSHA256 ? { ChecksumSHA256: sent.ChecksumSHA256 } : {}),
    });
    used = 0;
  };
  try {
    for (const piece of typeof body === 'string' ? [body] : body) {
      // A piece that surely fits (UTF-8 takes at most 3 bytes a UTF-16 unit) is encoded in place.
      if (piece.length * 3 <= UPLOAD_PART_BYTES - used) {
        used += buffer.write(piece, used, 'utf8');
        continue;
      }
      const bytes = Buffer.from(piece, 'utf8');
      for (let at = 0; at < bytes.length;) {
        // A full part goes only once more follows, so the last part is never empty.
        if (used === UPLOAD_PART_BYTES) await sendPart();
        const n = bytes.copy(buffer, used, at, Math.min(bytes.length, at + UPLOAD_PART_BYTES - used));
        used += n;
        at += n;
      }
    }
    if (uploadId === undefined) {
      await client.send(new PutObjectCommand({ ...target, Body: buffer.subarray(0, used) }));
      return;
    }
    if (used > 0) await sendPart();
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    if (uploadId !== undefined) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
        .catch((abortError: unknown) => {
          if (err instanceof Error && err.cause === undefined) err.cause = abortError;
        });
    }
    throw err;
  }
}
