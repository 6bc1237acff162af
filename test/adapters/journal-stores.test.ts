// The journal's stores: the CLI's file (held to the cache's rules: the user's own, 0600, in a folder only the
// user can write; replaced whole) and the Lambda's S3 object under journal/ (aws-sdk-client-mock). A missing
// journal is empty and quiet; an unusable one is empty with a warning; neither ever throws on load.
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultJournalPath, fileJournal, journalBesideCache } from '../../lambda/adapters/journal-file.ts';
import { journalKey, s3Journal } from '../../lambda/adapters/journal-s3.ts';
import { encodeJournal, type JournalEntry } from '../../lambda/core/journal.ts';
import { dg } from '../support/inventory.ts';

const REGISTRY = 'https://registry.internal:5000';
const ENTRY: JournalEntry = {
  repository: 'app/x',
  digest: dg('c1'),
  after: [dg('ix')],
  recordedAt: '2026-11-27T12:00:00.000Z',
};

describe('the file journal', () => {
  let dir: string;
  let warnings: string[];
  const journal = (path = join(dir, 'j', 'journal.json')) =>
    fileJournal(path, { registry: REGISTRY, warn: (m) => void warnings.push(m) });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rj-journal-store-'));
    warnings = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is empty and quiet when missing; a save makes the folder 0700 and the file 0600, replaced whole', async () => {
    const j = journal();
    expect(await j.load()).toEqual([]);
    await j.save([ENTRY]);
    expect(statSync(join(dir, 'j')).mode & 0o777).toBe(0o700);
    expect(statSync(j.where).mode & 0o777).toBe(0o600);
    expect(await j.load()).toEqual([ENTRY]);
    await j.save([]);
    expect(await j.load()).toEqual([]);
    expect(readdirSync(join(dir, 'j'))).toEqual(['journal.json']);
    expect(warnings).toEqual([]);
  });

  it('refuses a file others can write, with a warning, and uses none of it', async () => {
    const j = journal();
    await j.save([ENTRY]);
    chmodSync(j.where, 0o666);
    expect(await j.load()).toEqual([]);
    expect(warnings[0]).toMatch(/^journal .* is not used: it can be written by others \(mode 0666\)/);
  });

  it('uses no entry of a journal for another registry, or of something that is not one', async () => {
    const path = join(dir, 'other.json');
    writeFileSync(path, encodeJournal('https://elsewhere:5000', [ENTRY]), { mode: 0o600 });
    expect(await journal(path).load()).toEqual([]);
    writeFileSync(path, 'not json', { mode: 0o600 });
    expect(await journal(path).load()).toEqual([]);
    expect(warnings).toEqual([
      `journal ${path} is not used: it is for https://elsewhere:5000, not ${REGISTRY}`,
      expect.stringMatching(/is not used: it is not JSON/),
    ]);
  });

  it('lives beside the cache, else in the state folder, one per registry host', () => {
    expect(journalBesideCache('/home/u/.cache/rj/cache.json')).toBe(
      '/home/u/.cache/rj/cache.json.journal.json',
    );
    expect(defaultJournalPath(REGISTRY, { XDG_STATE_HOME: '/s', HOME: '/home/u' })).toBe(
      '/s/registry-janitor/journal-registry.internal_5000.json',
    );
    expect(defaultJournalPath(REGISTRY, { HOME: '/home/u' })).toBe(
      '/home/u/.local/state/registry-janitor/journal-registry.internal_5000.json',
    );
    expect(defaultJournalPath(REGISTRY, {})).toBeUndefined();
  });
});

describe('the S3 journal', () => {
  const s3 = mockClient(S3Client);
  let warnings: string[];
  let stored: string | undefined;
  beforeEach(() => {
    s3.reset();
    warnings = [];
    stored = undefined;
    s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
      stored = input.Body as string;
      return {};
    });
    s3.on(GetObjectCommand).callsFake(() => {
      if (stored === undefined)
        throw new S3ServiceException({
          name: 'NoSuchKey',
          $fault: 'client',
          $metadata: { httpStatusCode: 404 },
          message: 'NoSuchKey',
        });
      return { Body: Readable.from([Buffer.from(stored)]) as never };
    });
  });
  const journal = () =>
    s3Journal(new S3Client({}), 'bucket', { registry: REGISTRY, warn: (m) => void warnings.push(m) });

  it('keeps one object per registry under journal/, read back as written', async () => {
    expect(journalKey(REGISTRY)).toBe('journal/registry.internal_5000.json');
    const j = journal();
    expect(j.where).toBe('s3://bucket/journal/registry.internal_5000.json');
    expect(await j.load()).toEqual([]);
    await j.save([ENTRY]);
    expect(s3.commandCalls(PutObjectCommand)[0]!.args[0].input).toMatchObject({
      Bucket: 'bucket',
      Key: 'journal/registry.internal_5000.json',
    });
    expect(await j.load()).toEqual([ENTRY]);
    expect(warnings).toEqual([]);
  });

  it('an object it may not read is empty with a warning naming the grant', async () => {
    s3.on(GetObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    );
    expect(await journal().load()).toEqual([]);
    expect(warnings[0]).toMatch(/could not be read \(Access Denied\).*s3:GetObject on journal\/\*/);
  });
});
