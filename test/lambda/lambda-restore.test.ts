// The Lambda's restore payload (lambda/lambda-restore.ts): validated before anything is read; through the handler,
// the journal read from the construct's bucket (journal/<host>.json, the real S3 adapter over aws-sdk-client-mock)
// and the tags put back in the (in-memory) registry. A restore sends no DELETE and writes no S3 object.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { journalKey, s3Journal } from '../../lambda/adapters/journal-s3.ts';
import { ConfigError } from '../../lambda/core/errors.ts';
import { encodeJournal, type JournalEntry } from '../../lambda/core/journal.ts';
import { createLambdaHandler } from '../../lambda/lambda-job.ts';
import {
  isRestorePayload,
  parseRestorePayload,
  type LambdaRestoreResult,
} from '../../lambda/lambda-restore.ts';
import { context, INSTANCE, POLICY, recorder, unusedRunner } from '../support/lambda-job.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const BUCKET = 'janitor-bucket';
const RUN = '20261202T031500Z-3f9a1c';

describe('the restore payload', () => {
  it.each([
    [{ restore: { run: RUN } }, { selection: { run: RUN }, dryRun: false }],
    [
      { restore: { repository: 'team1/app' }, dryRun: true },
      { selection: { repository: 'team1/app' }, dryRun: true },
    ],
    [
      { restore: { tag: 'team1/app:v1.2' } },
      { selection: { repository: 'team1/app', tag: 'v1.2' }, dryRun: false },
    ],
  ])('%j', (event, expected) => {
    expect(isRestorePayload(event)).toBe(true);
    expect(parseRestorePayload(event)).toEqual(expected);
  });

  it.each([
    [{ restore: {} }, 'restore: give one of "run", "repository" or "tag"'],
    [
      { restore: { run: RUN, tag: 'a:b' } },
      'restore: give one of "run", "repository" and "tag", not "run" and "tag"',
    ],
    [{ restore: RUN }, 'restore: expected an object with one of "run", "repository" or "tag"'],
    [{ restore: { run: '' } }, 'restore.run: expected a run id as the run report names it, not ""'],
    [{ restore: { run: 7 } }, 'restore.run: expected a run id as the run report names it as a string'],
    [
      { restore: { tag: 'team1/app' } },
      'restore.tag: expected "repository:tag", e.g. "team1/app:v1", got "team1/app"',
    ],
    [{ restore: { tag: 'Team1/app:v1' } }, 'restore.tag: "Team1/app" is not a repository name'],
    [{ restore: { repository: 'team1/**' } }, 'not a glob'],
    [{ restore: { tags: 'a:b' } }, 'restore: unknown key "tags"; the allowed keys are run, repository, tag'],
    [
      { restore: { run: RUN }, skipGc: true },
      'unknown key "skipGc" beside "restore"; the allowed keys are restore, dryRun',
    ],
    [{ restore: { run: RUN }, dryRun: 'yes' }, 'dryRun: expected true or false'],
    [{ restore: { run: RUN }, force: true }, 'unknown key "force"'],
  ])('%j is refused', (event, message) => {
    expect(() => parseRestorePayload(event)).toThrow(ConfigError);
    expect(() => parseRestorePayload(event)).toThrow(message);
  });

  it.each([
    [{}],
    [null],
    [{ dryRun: true }],
    [{ 'detail-type': 'Scheduled Event', source: 'aws.events' }],
    [[]],
  ])('%j is not a restore', (event) => expect(isRestorePayload(event)).toBe(false));
});

describe('a restore through the handler', () => {
  const s3Client = new S3Client({ region: 'eu-west-1' });
  const s3 = mockClient(s3Client);
  afterAll(() => s3.restore());

  let registry: MemoryRegistry;
  let journalText: string;

  const env = {
    REGISTRY_URL: 'http://memory.test',
    GC_INSTANCE_ID: INSTANCE,
    GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
    RETENTION_POLICY: JSON.stringify(POLICY),
    CACHE_BUCKET: BUCKET,
  };

  /** team1/app:v1 and :v1-alias (one image) and team1/api:old, untagged by RUN and recorded as apply does. */
  async function seed(): Promise<Record<string, string>> {
    registry = new MemoryRegistry({ tagDelete: true });
    const v1 = registry.addImage('team1/app', 'v1', {
      created: '2026-01-01T00:00:00Z',
      layers: [{ seed: 'a', size: 64 }],
    });
    registry.tag('team1/app', 'v1-alias', v1.digest);
    const old = registry.addImage('team1/api', 'old', {
      created: '2026-01-01T00:00:00Z',
      layers: [{ seed: 'b', size: 64 }],
    });
    const entries: JournalEntry[] = [];
    for (const [repository, digest, tags] of [
      ['team1/app', v1.digest, ['v1', 'v1-alias']],
      ['team1/api', old.digest, ['old']],
    ] as const) {
      const m = (await registry.getManifest(repository, digest))!;
      entries.push({
        repository,
        digest,
        after: [],
        recordedAt: '2026-12-02T03:15:00.000Z',
        untag: {
          runId: RUN,
          tags: [...tags],
          state: 'untagged',
          manifests: [{ digest, mediaType: m.mediaType, bytes: Buffer.from(m.body).toString('base64') }],
        },
      });
      for (const t of tags) await registry.deleteManifest(repository, t);
    }
    journalText = encodeJournal(env.REGISTRY_URL, entries);
    registry.calls.length = 0;
    return { v1: v1.digest, old: old.digest };
  }

  beforeEach(() => {
    s3.reset();
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: journalKey(env.REGISTRY_URL) }).callsFake(() => ({
      Body: Readable.from([Buffer.from(journalText)]) as never,
    }));
  });

  function handlerWith(extraEnv: Record<string, string | undefined> = {}, withJournal = true) {
    const rec = recorder();
    const connect = vi.fn(() =>
      Promise.resolve({
        registry,
        runner: () => unusedRunner,
        ...(withJournal
          ? {
              journal: (warn: (m: string) => void) =>
                s3Journal(s3Client, BUCKET, { registry: env.REGISTRY_URL, warn }),
            }
          : {}),
      }),
    );
    const handler = createLambdaHandler({
      env: () => ({ ...env, ...extraEnv }),
      logger: () => rec.logger,
      metrics: () => rec.metrics,
      connect,
    });
    return { handler, connect, rec };
  }

  it('puts back a whole run from journal/<host>.json: no DELETE, no S3 write, no plan', async () => {
    const digests = await seed();
    const { handler, rec } = handlerWith();
    const result = (await handler({ restore: { run: RUN } }, context)) as LambdaRestoreResult;
    expect(result).toMatchObject({
      restore: { run: RUN },
      journal: `s3://${BUCKET}/journal/memory.test.json`,
      dryRun: false,
      restored: 3,
      already: 0,
      skipped: 0,
      failed: 0,
    });
    expect(result.results.map((r) => [r.repository, r.tag, r.digest, r.outcome])).toEqual([
      ['team1/app', 'v1', digests.v1, 'restored'],
      ['team1/app', 'v1-alias', digests.v1, 'restored'],
      ['team1/api', 'old', digests.old, 'restored'],
    ]);
    expect(registry.tagsOf('team1/app')).toEqual({ v1: digests.v1, 'v1-alias': digests.v1 });
    expect(registry.tagsOf('team1/api')).toEqual({ old: digests.old });
    expect(registry.callsOf('deleteManifest')).toEqual([]);
    expect(registry.callsOf('listRepositories')).toEqual([]);
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    expect(s3.commandCalls(DeleteObjectCommand)).toEqual([]);
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(1);
    expect(rec.logs.find((l) => l.message === 'restore')).toMatchObject({ level: 'info' });
  });

  it('a dry run says what it would restore and writes nothing; a tag restores only that tag', async () => {
    const digests = await seed();
    const { handler } = handlerWith();
    const dry = (await handler(
      { restore: { repository: 'team1/app' }, dryRun: true },
      context,
    )) as LambdaRestoreResult;
    expect(dry).toMatchObject({ dryRun: true, restored: 2, failed: 0 });
    expect(registry.writes()).toEqual([]);
    const one = (await handler({ restore: { tag: 'team1/app:v1-alias' } }, context)) as LambdaRestoreResult;
    expect(one).toMatchObject({ restored: 1 });
    expect(registry.tagsOf('team1/app')).toEqual({ 'v1-alias': digests.v1 });
  });

  it('a tag pushed since is left alone and said so (no force in the payload)', async () => {
    await seed();
    const newer = registry.addImage('team1/app', 'v1', {
      created: '2026-02-01T00:00:00Z',
      layers: [{ seed: 'c', size: 64 }],
    });
    const { handler, rec } = handlerWith();
    const result = (await handler({ restore: { tag: 'team1/app:v1' } }, context)) as LambdaRestoreResult;
    expect(result).toMatchObject({ restored: 0, skipped: 1 });
    expect(result.results[0]!.reason).toContain(`now points at ${newer.digest}`);
    expect(registry.tagsOf('team1/app')).toEqual({ v1: newer.digest });
    expect(
      rec.logs.some((l) => l.level === 'warn' && l.message.startsWith('restore: tags pushed since')),
    ).toBe(true);
  });

  it.each([
    [
      'a bad payload',
      { restore: { tag: 'team1/app' } },
      {},
      true,
      /restore\.tag: expected "repository:tag"/,
      false,
    ],
    [
      'a run the journal does not record',
      { restore: { run: 'nope' } },
      {},
      true,
      /records no tag removed by run nope; the runs it knows: 2026/,
      true,
    ],
    ['no bucket', { restore: { run: RUN } }, {}, false, /no bucket \(CACHE_BUCKET is not set\)/, true],
  ])(
    '%s fails the invocation, counted in Errors, with nothing written',
    async (_, event, extraEnv, withJournal, message, connects) => {
      await seed();
      const { handler, connect, rec } = handlerWith(extraEnv, withJournal);
      await expect(handler(event, context)).rejects.toThrow(message);
      expect(connect).toHaveBeenCalledTimes(connects ? 1 : 0);
      expect(rec.metric('Errors')).toEqual([1]);
      expect(registry.writes()).toEqual([]);
    },
  );

  it('an unreadable journal says why in the error, not only that it holds nothing', async () => {
    await seed();
    s3.on(GetObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
        message: 'Access Denied',
      }),
    );
    const { handler } = handlerWith();
    await expect(handler({ restore: { run: RUN } }, context)).rejects.toThrow(
      /holds no removed tags at all.*could not be read \(Access Denied\).*s3:GetObject on journal\/\*/s,
    );
  });
});
