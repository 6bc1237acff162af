// The Lambda's container listing (lambda/adapters/history-container.ts) with aws-sdk-client-mock for S3 and a
// recording runner for SSM: the parameters the document gets (one presigned URL, never credentials), the object
// read back and checked against the host's summary, and every way the listing is refused as incomplete.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { containerHistory, listingKey } from '../../lambda/adapters/history-container.ts';
import { HistoryError } from '../../lambda/core/errors.ts';
import type { CommandResult, CommandRunner } from '../../lambda/core/ports.ts';

const s3 = mockClient(S3Client);
afterAll(() => s3.restore());
beforeEach(() => s3.reset());

const BUCKET = 'janitor-bucket';
const ROOT = '/data/registry';
const hex = (c: string) => c.repeat(64);
const LISTING =
  `1767225600 ${ROOT}/docker/registry/v2/repositories/team1/app/_manifests/revisions/sha256/${hex('a')}/link\n` +
  `1700000000 ${ROOT}/docker/registry/v2/repositories/team1/app/_manifests/revisions/sha256/${hex('b')}/link\n`;

interface Host {
  gz?: Buffer;
  summary?: Partial<Record<'root' | 'count' | 'bytes' | 'sha256', string>>;
  result?: Partial<CommandResult>;
  stdout?: string;
}

function hostRunner(
  host: Host,
): CommandRunner & { calls: { parameters: Record<string, string>; timeout?: number }[] } {
  const calls: { parameters: Record<string, string>; timeout?: number }[] = [];
  return {
    calls,
    run(parameters, options) {
      calls.push({
        parameters: { ...parameters },
        ...(options?.timeoutSeconds ? { timeout: options.timeoutSeconds } : {}),
      });
      const gz = host.gz ?? gzipSync(LISTING);
      const summary = {
        root: ROOT,
        count: '2',
        bytes: String(gz.length),
        sha256: createHash('sha256').update(gz).digest('hex'),
        ...host.summary,
      };
      const stdout =
        host.stdout ??
        [
          'registry-janitor: action=list',
          'registry-janitor: version=3.0.0',
          `registry-janitor: listing_root=${summary.root}`,
          `registry-janitor: listing_count=${summary.count}`,
          `registry-janitor: listing_bytes=${summary.bytes}`,
          `registry-janitor: listing_sha256=${summary.sha256}`,
          'registry-janitor: listing_upload=curl',
          'registry-janitor: status=ok',
          '',
        ].join('\n');
      return Promise.resolve({
        status: 'Success',
        exitCode: 0,
        stdout,
        stderr: '',
        commandId: 'cmd-1',
        ...host.result,
      });
    },
  };
}

function objectBody(bytes: Buffer) {
  return {
    Body: { transformToByteArray: () => Promise.resolve(new Uint8Array(bytes)) },
    ContentLength: bytes.length,
  } as never;
}

const NOW = new Date('2026-12-02T03:00:00Z');
function source(host: Host, presigned: string[] = []) {
  const runner = hostRunner(host);
  const history = containerHistory({
    runner,
    s3: new S3Client({ region: 'us-east-1' }),
    bucket: BUCKET,
    containerName: 'registry',
    host: 'i-0123456789abcdef0',
    now: () => NOW,
    presign: (_client, bucket, key, seconds) => {
      presigned.push(`${bucket}/${key}/${seconds}`);
      return Promise.resolve(
        `https://${bucket}.s3.us-east-1.amazonaws.com/${key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=${seconds}&X-Amz-Signature=${'0'.repeat(64)}`,
      );
    },
  });
  return { runner, history };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(HistoryError);
    return (err as Error).message;
  }
  throw new Error('expected the listing to be refused');
}

describe('containerHistory', () => {
  it('sends the listing action with one presigned URL for a new key, reads that key back, and parses it', async () => {
    let key: string | undefined;
    s3.on(GetObjectCommand).callsFake((input: { Bucket: string; Key: string }) => {
      expect(input.Bucket).toBe(BUCKET);
      key = input.Key;
      return objectBody(gzipSync(LISTING));
    });
    const presigned: string[] = [];
    const { runner, history } = source({}, presigned);
    expect(history.source).toBe('registry container registry on i-0123456789abcdef0');
    const listing = await history.list();

    expect(key).toMatch(/^history-listing\/2026-12-02\/\d+-[0-9a-f-]{36}\.txt\.gz$/);
    expect(presigned).toEqual([`${BUCKET}/${key}/600`]);
    expect(runner.calls).toHaveLength(1);
    const { parameters, timeout } = runner.calls[0]!;
    expect(parameters).toEqual({
      containerName: 'registry',
      configPath: '',
      mode: 'online',
      dryRun: 'false',
      deleteUntagged: 'false',
      action: 'list',
      uploadUrl: expect.stringMatching(
        new RegExp(`^https://${BUCKET}\\.s3\\.us-east-1\\.amazonaws\\.com/${key}\\?`),
      ) as unknown,
    });
    expect(timeout).toBe(600);
    expect(listing.source).toBe(`registry container registry on i-0123456789abcdef0: ${ROOT}`);
    expect([...listing.repositories]).toEqual([
      [
        'team1/app',
        [
          { digest: `sha256:${hex('a')}`, pushedAt: '2026-01-01T00:00:00.000Z' },
          { digest: `sha256:${hex('b')}`, pushedAt: '2023-11-14T22:13:20.000Z' },
        ],
      ],
    ]);
  });

  it('makes a new key for every listing', () => {
    expect(listingKey(NOW)).not.toBe(listingKey(NOW));
  });

  it.each<{ name: string; host: Host; object?: Buffer; why: RegExp }>([
    {
      name: 'the command failed, with the script’s reason',
      host: {
        result: { status: 'Failed', exitCode: 4 },
        stdout:
          'registry-janitor: error_code=container-not-running\nregistry-janitor: error=container registry is not running (state: exited)\nregistry-janitor: status=failed\n',
      },
      why: /the command ended Failed \(exit 4\), SSM command cmd-1: container registry is not running/,
    },
    {
      name: 'the command was still running when the function stopped waiting',
      host: { result: { status: 'InProgress', exitCode: null }, stdout: '' },
      why: /was still running when the function had to stop waiting/,
    },
    {
      name: 'success without a summary (output cut off)',
      host: { stdout: 'registry-janitor: status=ok\n' },
      why: /without the listing summary/,
    },
    {
      name: 'no final status line',
      host: { stdout: `registry-janitor: listing_count=2\n` },
      why: /the command ended Success/,
    },
    {
      name: 'an object whose hash is not the one reported (changed in the bucket)',
      host: {},
      object: gzipSync(LISTING.replace('1700000000', '1000000000')),
      why: /does not have the SHA-256 the host reported|bytes where the host uploaded/,
    },
    {
      name: 'a listing over the size bound',
      host: { summary: { bytes: String(65 * 1024 * 1024) } },
      why: /over the 67108864-byte bound/,
    },
    {
      name: 'an object that is not gzip',
      host: { gz: Buffer.from(LISTING) },
      why: /is not a gzip'd listing/,
    },
    {
      name: 'a count that is not the listing’s',
      host: { summary: { count: '3' } },
      why: /2 lines where the host counted 3/,
    },
    {
      name: 'a root that the lines are not under',
      host: { summary: { root: '/var/lib/registry' } },
      why: /line 1 is not a revision link under \/var\/lib\/registry\//,
    },
  ])('refuses the listing when $name', async ({ host, object, why }) => {
    const gz = host.gz ?? gzipSync(LISTING);
    s3.on(GetObjectCommand).resolves(objectBody(object ?? gz));
    const message = await refusal(source(host).history.list());
    expect(message).toMatch(why);
  });

  it('refuses when the object cannot be read', async () => {
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    expect(await refusal(source({}).history.list())).toMatch(
      /could not read the uploaded listing s3:\/\/janitor-bucket\/history-listing\/.*\(Access Denied\)/,
    );
  });

  it('refuses when the upload URL cannot be signed, and runs nothing', async () => {
    const runner = hostRunner({});
    const history = containerHistory({
      runner,
      s3: new S3Client({ region: 'us-east-1' }),
      bucket: BUCKET,
      containerName: 'registry',
      host: 'i-1',
      presign: () => Promise.reject(new Error('no credentials')),
    });
    expect(await refusal(history.list())).toMatch(/could not sign the upload URL \(no credentials\)/);
    expect(runner.calls).toEqual([]);
  });

  it('signs a real URL with the SDK: one key, PUT, expiring, no checksum the host would have to send', async () => {
    const runner = hostRunner({});
    s3.restore();
    const client = new S3Client({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const history = containerHistory({
      runner,
      s3: client,
      bucket: BUCKET,
      containerName: 'registry',
      host: 'i-1',
      now: () => NOW,
    });
    await history.list().catch(() => undefined);
    const url = new URL(runner.calls[0]!.parameters.uploadUrl!);
    expect(url.pathname).toMatch(/^\/history-listing\/2026-12-02\/.+\.txt\.gz$/);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('600');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect([...url.searchParams.keys()].some((k) => k.toLowerCase().includes('checksum'))).toBe(false);
    client.destroy();
    mockClient(S3Client);
  });
});
