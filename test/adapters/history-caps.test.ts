// Both storage listers are bounded by the same cap on the entries one listing reads (DEFAULT_MAX_HISTORY_ENTRIES,
// the CLI's --max-history-entries), its own and not the catalog's: past it the listing stops as partial (a
// HistoryError, so no untagged manifest is deleted that run). On S3 the pages cap follows it (one page per 1,000).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listFilesystemHistory } from '../../lambda/adapters/history-fs.ts';
import {
  DEFAULT_MAX_HISTORY_KEYS,
  DEFAULT_MAX_HISTORY_PAGES,
  listS3History,
} from '../../lambda/adapters/history-s3.ts';
import { HistoryError } from '../../lambda/core/errors.ts';
import { DEFAULT_MAX_HISTORY_ENTRIES, REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';

const hex = (n: number): string => n.toString(16).padStart(64, '0');

describe('the filesystem listing is bounded', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'rj-history-caps-'));
    // Two repositories of five revisions each.
    for (const repo of ['a', 'b']) {
      for (let i = 0; i < 5; i++) {
        const dir = join(root, REPOSITORIES_PATH, repo, REVISIONS_PATH, hex(i));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'link'), `sha256:${hex(i)}`);
      }
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lists everything within the cap (by default 10 million entries)', async () => {
    expect(DEFAULT_MAX_HISTORY_ENTRIES).toBe(10_000_000);
    const listing = await listFilesystemHistory(root);
    expect([...listing.repositories].map(([name, r]) => [name, r.length])).toEqual([
      ['a', 5],
      ['b', 5],
    ]);
    // Two repository folders, each one _manifests folder, and ten revisions: 14 entries.
    await expect(listFilesystemHistory(root, { maxEntries: 14 })).resolves.toBeDefined();
  });

  it.each([1, 3, 13])('stops as partial past %s entries, naming the cap and its flag', async (maxEntries) => {
    const run = listFilesystemHistory(root, { maxEntries });
    await expect(run).rejects.toThrow(HistoryError);
    await expect(listFilesystemHistory(root, { maxEntries })).rejects.toThrow(
      new RegExp(
        `more than ${maxEntries} entries \\(the cap on one listing, --max-history-entries\\); the listing is partial`,
      ),
    );
  });
});

describe('the S3 listing is bounded the same way', () => {
  const location = { bucket: 'registry-data', prefix: 'registry' };
  const s3 = mockClient(S3Client);
  afterEach(() => s3.reset());
  afterAll(() => s3.restore());

  it('takes the same default, and one page per 1,000 keys', () => {
    expect(DEFAULT_MAX_HISTORY_KEYS).toBe(DEFAULT_MAX_HISTORY_ENTRIES);
    expect(DEFAULT_MAX_HISTORY_PAGES).toBe(10_000);
  });

  it('stops a bucket that pages forever at the pages the keys cap allows', async () => {
    let n = 0;
    s3.on(ListObjectsV2Command).callsFake(() => ({
      Contents: [],
      IsTruncated: true,
      NextContinuationToken: `t${++n}`,
    }));
    const client = new S3Client({ region: 'us-east-1' });
    await expect(listS3History(client, location, { maxKeys: 2500 })).rejects.toThrow(
      /more than 3 pages of keys/,
    );
    expect(n).toBe(3);
  });

  it('stops past the keys cap', async () => {
    let n = 0;
    s3.on(ListObjectsV2Command).callsFake(() => ({
      Contents: Array.from({ length: 1000 }, (_, i) => ({
        Key: `registry/${REPOSITORIES_PATH}/a/${REVISIONS_PATH}/${hex(n * 1000 + i)}/link`,
        LastModified: new Date('2026-01-01T00:00:00Z'),
      })),
      IsTruncated: true,
      NextContinuationToken: `t${++n}`,
    }));
    const client = new S3Client({ region: 'us-east-1' });
    await expect(listS3History(client, location, { maxKeys: 2500, maxPages: 100 })).rejects.toThrow(
      /more than 2500 keys \(the cap on one listing, --max-history-entries\); the listing is partial/,
    );
  });
});
