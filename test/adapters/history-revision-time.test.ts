// The point lookup the sweep asks right before each DELETE by digest: one revision link's time now, from a
// filesystem storage (a stat of the link) and from S3 (a HeadObject of its key), null once the link is gone, and
// a name or digest that would lead out of the repositories folder refused.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { revisionLinkTime } from '../../lambda/adapters/history-fs.ts';
import { s3History } from '../../lambda/adapters/history-s3.ts';
import { ConfigError, HistoryError } from '../../lambda/core/errors.ts';
import { revisionLinkPath } from '../../lambda/core/history.ts';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

describe('revisionLinkPath', () => {
  it('is the revision link below the storage root', () => {
    expect(revisionLinkPath('team/app', DIGEST)).toBe(
      `docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/${HEX}/link`,
    );
  });

  it.each([
    ['team/app', 'sha256:abc'],
    ['team/app', `sha512:${HEX}`],
    ['team/../app', DIGEST],
    ['team//app', DIGEST],
    ['team/_manifests', DIGEST],
  ])('refuses %s @ %s', (repository, digest) => {
    expect(() => revisionLinkPath(repository, digest)).toThrow(ConfigError);
  });
});

describe('the filesystem lookup', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  it('is the link file mtime, and null once the revision is gone', async () => {
    const root = mkdtempSync(join(tmpdir(), 'rj-revtime-'));
    roots.push(root);
    expect(await revisionLinkTime(root, 'team/app', DIGEST)).toBeNull();
    const link = join(root, revisionLinkPath('team/app', DIGEST));
    mkdirSync(join(link, '..'), { recursive: true });
    writeFileSync(link, DIGEST);
    const at = new Date('2026-11-01T02:03:04.567Z');
    utimesSync(link, at, at);
    expect(await revisionLinkTime(root, 'team/app', DIGEST)).toBe(at.toISOString());
  });
});

describe('the S3 lookup', () => {
  const s3 = mockClient(S3Client);
  afterEach(() => s3.reset());
  const source = () => s3History(new S3Client({ region: 'us-east-1' }), { bucket: 'reg', prefix: 'root' });

  it('is a HeadObject of the link key: its LastModified, null on 404', async () => {
    const at = new Date('2026-11-01T02:03:04Z');
    s3.on(HeadObjectCommand, {
      Bucket: 'reg',
      Key: `root/docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/${HEX}/link`,
    }).resolves({ LastModified: at });
    expect(await source().revisionTime!('team/app', DIGEST)).toBe(at.toISOString());
    s3.on(HeadObjectCommand).rejects(
      new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 } }),
    );
    expect(await source().revisionTime!('team/app', DIGEST)).toBeNull();
  });

  it('says which permission is missing when HeadObject is refused', async () => {
    s3.on(HeadObjectCommand).rejects(
      new S3ServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 } }),
    );
    const err = await source().revisionTime!('team/app', DIGEST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HistoryError);
    expect((err as Error).message).toMatch(
      /access denied: the credentials need s3:GetObject on arn:aws:s3:::reg\/root\//,
    );
  });
});
