// The workflow's run store in the construct's bucket: GetObject (a missing key is undefined), and PutObject or,
// for what is over a part (5 MiB), a multipart upload (s3-upload.ts).
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RunStore } from '../workflow/run-store.ts';
import { uploadText } from './s3-upload.ts';

export class S3RunStore implements RunStore {
  public constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  public async get(key: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await out.Body?.transformToString('utf8');
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
      throw err;
    }
  }

  public async put(key: string, body: string | Iterable<string>): Promise<void> {
    await uploadText(this.client, { Bucket: this.bucket, Key: key, ContentType: 'application/json' }, body);
  }
}
