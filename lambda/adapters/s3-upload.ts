// Writes one object to S3 from text made piece by piece (a plan or a report of a large registry is tens of MB), so
// that the whole body never exists at once: lib-storage's Upload sends it as one PutObject when it is under one
// part, and as a multipart upload otherwise, holding about a part at a time (one part in flight).
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';

/** S3's least part size (5 MiB): a part of a multipart upload, all but the last, may not be smaller. */
export const UPLOAD_PART_BYTES = 5 * 1024 * 1024;

export interface UploadTarget {
  readonly Bucket: string;
  readonly Key: string;
  readonly ContentType: string;
}

/**
 * Uploads the text (one string, or its pieces in order) as UTF-8. A failure aborts the multipart upload, so no
 * half-written object and no parts are left behind, and rejects with S3's error.
 */
export async function uploadText(
  client: S3Client,
  target: UploadTarget,
  body: string | Iterable<string>,
): Promise<void> {
  const pieces = typeof body === 'string' ? [body] : body;
  const upload = new Upload({
    client,
    params: { ...target, Body: Readable.from(utf8(pieces), { objectMode: false }) },
    partSize: UPLOAD_PART_BYTES,
    queueSize: 1,
  });
  await upload.done();
}

/** The pieces as UTF-8 bytes, empty ones left out. */
function* utf8(pieces: Iterable<string>): Generator<Buffer> {
  for (const piece of pieces) if (piece.length > 0) yield Buffer.from(piece, 'utf8');
}
