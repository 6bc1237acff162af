// A minimal S3 stand-in on 127.0.0.1 (PutObject, GetObject, ListObjectsV2 and multipart uploads, path-style, one
// bucket, objects in memory; presigned URLs honoured until they expire)
// holding a copy of a real filesystem registry's storage layout, for listing untagged history from S3.
// Why not s3rver: its ListObjectsV2 continuation tokens use DES, which Node 20's OpenSSL 3 refuses, so every
// listing longer than one page fails there with a 500; and it has no multipart upload, which the workflow's large
// objects (a plan, a report page) go by, as a registry's layers would. The layout is copied file by file, as the S3 driver lays it out under its rootdirectory.
import { PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

/** The one access key the stand-in accepts (the signature itself is not checked). */
export const S3_CREDENTIALS = { accessKeyId: 'LOCALS3', secretAccessKey: 'LOCALS3SECRET' } as const;

export interface LocalS3 {
  readonly endpoint: string;
  readonly bucket: string;
  /** The environment the CLI reads to reach it. */
  readonly env: Record<string, string>;
  /** A client of the stand-in (checksums only where S3 requires them). */
  readonly client: S3Client;
  /** Another client of the stand-in, with these settings over its own (e.g. the SDK's default checksums). */
  clientWith(config: Omit<S3ClientConfig, 'endpoint' | 'credentials'>): S3Client;
  /** ListObjectsV2 requests served so far. */
  readonly listRequests: number;
  /**
   * Every object written so far (a PUT, or a completed multipart upload): its key, whether it came with a
   * presigned URL (no Authorization header) and, for a multipart upload, its part count.
   */
  readonly puts: readonly {
    readonly key: string;
    readonly presigned: boolean;
    readonly bytes: number;
    readonly parts?: number;
  }[];
  /** Multipart uploads begun and neither completed nor aborted (S3 would keep, and bill, their parts). */
  readonly openUploads: number;
  /** An object's bytes, or undefined. */
  object(key: string): Buffer | undefined;
  /** Replace an object's bytes (a bucket someone else can write to). */
  setObject(key: string, body: Buffer): void;
  /** Copy every file under `root` to `<prefix>/<its path>`; returns the keys written. */
  copyTree(root: string, prefix: string): Promise<string[]>;
  /** Set an object's LastModified (real S3 cannot be backdated; this stands in for an old push). */
  setLastModified(key: string, at: Date): void;
  close(): Promise<void>;
}

const xmlEscape = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`,
  );
}

export async function startLocalS3(bucket = 'registry-data'): Promise<LocalS3> {
  const objects = new Map<string, { body: Buffer; lastModified: Date }>();
  let listRequests = 0;
  const puts: { key: string; presigned: boolean; bytes: number; parts?: number }[] = [];
  const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
  let uploadIds = 0;
  const list = (url: URL, res: ServerResponse): void => {
    listRequests++;
    const q = url.searchParams;
    if (q.get('list-type') !== '2') return sendError(res, 400, 'InvalidArgument', 'only list-type=2');
    const prefix = q.get('prefix') ?? '';
    const maxKeys = Math.min(1000, Number(q.get('max-keys') ?? '1000'));
    const token = q.get('continuation-token');
    const after = token ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, maxKeys);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = objects.get(k)!;
        return (
          `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified>` +
          `<ETag>"0"</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`
        );
      })
      .join('');
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Name>${bucket}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount>` +
        `<MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}` +
        (truncated
          ? `<NextContinuationToken>${Buffer.from(page.at(-1)!, 'utf8').toString('base64url')}</NextContinuationToken>`
          : '') +
        `</ListBucketResult>`,
    );
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', 'http://local');
    // A presigned URL carries its credential and lifetime in the query instead of an Authorization header.
    const presigned = req.headers.authorization === undefined && url.searchParams.has('X-Amz-Credential');
    const credential = presigned
      ? url.searchParams.get('X-Amz-Credential')?.split('/')[0]
      : /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
    if (presigned) {
      const date = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(
        url.searchParams.get('X-Amz-Date') ?? '',
      );
      const expires = Number(url.searchParams.get('X-Amz-Expires'));
      const signedAt = date
        ? Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!)
        : NaN;
      if (!(Date.now() <= signedAt + expires * 1000)) {
        return sendError(res, 403, 'AccessDenied', 'Request has expired');
      }
    }
    if (credential !== S3_CREDENTIALS.accessKeyId) {
      return sendError(
        res,
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    }
    const [, name = '', ...rest] = url.pathname.split('/');
    if (name !== bucket) return sendError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    const key = decodeURIComponent(rest.join('/'));
    if (req.method === 'GET' && key === '') return list(url, res);
    // HEAD as S3 answers it: GET's headers, no body (Node sends none for HEAD; a 404 reads as NotFound).
    if ((req.method === 'GET' || req.method === 'HEAD') && key !== '') {
      const o = objects.get(key);
      if (!o) return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, {
        'content-length': String(o.body.length),
        'last-modified': o.lastModified.toUTCString(),
        etag: '"0"',
      });
      return void res.end(req.method === 'HEAD' ? undefined : o.body);
    }
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'POST' && key !== '' && url.searchParams.has('uploads')) {
      const id = `upload-${++uploadIds}`;
      uploads.set(id, { key, parts: new Map() });
      res.writeHead(200, { 'content-type': 'application/xml' });
      return void res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket>` +
          `<Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (uploadId !== null) {
      const upload = uploads.get(uploadId);
      if (!upload || upload.key !== key) {
        return sendError(res, 404, 'NoSuchUpload', 'The specified multipart upload does not exist.');
      }
      if (req.method === 'PUT') {
        const n = Number(url.searchParams.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > 10_000) {
          return sendError(res, 400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000');
        }
        upload.parts.set(n, Buffer.concat(chunks));
        res.writeHead(200, { etag: `"${n}"` });
        return void res.end();
      }
      if (req.method === 'DELETE') {
        uploads.delete(uploadId);
        res.writeHead(204);
        return void res.end();
      }
      if (req.method === 'POST') {
        // The parts the client names, in its order; S3's rule: each but the last at least 5 MiB.
        const named = [
          ...Buffer.concat(chunks)
            .toString('utf8')
            .matchAll(/<PartNumber>(\d+)<\/PartNumber>/g),
        ].map((m) => Number(m[1]));
        const parts = named.map((n) => upload.parts.get(n));
        if (named.length === 0 || parts.some((p) => p === undefined)) {
          return sendError(res, 400, 'InvalidPart', 'One or more of the specified parts could not be found.');
        }
        if (parts.slice(0, -1).some((p) => p!.length < 5 * 1024 * 1024)) {
          return sendError(
            res,
            400,
            'EntityTooSmall',
            'Your proposed upload is smaller than the minimum allowed size',
          );
        }
        const body = Buffer.concat(parts as Buffer[]);
        uploads.delete(uploadId);
        puts.push({ key, presigned, bytes: body.length, parts: parts.length });
        objects.set(key, { body, lastModified: new Date() });
        res.writeHead(200, { 'content-type': 'application/xml' });
        return void res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket>` +
            `<Key>${xmlEscape(key)}</Key><ETag>"0-${parts.length}"</ETag></CompleteMultipartUploadResult>`,
        );
      }
    }
    if (req.method === 'PUT' && key !== '') {
      const body = Buffer.concat(chunks);
      puts.push({ key, presigned, bytes: body.length });
      objects.set(key, { body, lastModified: new Date() });
      res.writeHead(200, { etag: '"0"' });
      return void res.end();
    }
    sendError(res, 501, 'NotImplemented', `${req.method ?? ''} ${url.pathname} is not implemented here`);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, 500, 'InternalError', String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientWith = (config: Omit<S3ClientConfig, 'endpoint' | 'credentials'>): S3Client =>
    new S3Client({
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: S3_CREDENTIALS,
      ...config,
    });
  const client = clientWith({ requestChecksumCalculation: 'WHEN_REQUIRED' });
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
    );
  return {
    endpoint,
    bucket,
    env: {
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
    },
    client,
    clientWith,
    get listRequests() {
      return listRequests;
    },
    puts,
    get openUploads() {
      return uploads.size;
    },
    object: (key) => objects.get(key)?.body,
    setObject(key, body) {
      objects.set(key, { body, lastModified: new Date() });
    },
    async copyTree(root, prefix) {
      const keys: string[] = [];
      for (const file of files(root)) {
        const key = `${prefix ? `${prefix}/` : ''}${relative(root, file).split(sep).join('/')}`;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file) }));
        keys.push(key);
      }
      return keys;
    },
    setLastModified(key, at) {
      const o = objects.get(key);
      if (!o) throw new Error(`no object ${key}`);
      o.lastModified = at;
    },
    async close() {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
