// Large objects go to the bucket in pieces (lambda/adapters/s3-upload.ts), here
// against the local S3 stand-in with an S3 client as the functions make it (default checksums): a text over one
// part (5 MiB) is a multipart upload and reads back byte for byte; one under it is a single PUT; a body that fails
// half-way leaves no object and no open upload. The workflow's run store and the report store both write so.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ReportStore } from '../../lambda/adapters/report-store.ts';
import { S3RunStore } from '../../lambda/adapters/run-store-s3.ts';
import { UPLOAD_PART_BYTES, uploadText } from '../../lambda/adapters/s3-upload.ts';
import { jsonPieces } from '../../lambda/core/json-pieces.ts';
import type { Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';

let s3: LocalS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startLocalS3('runs');
  // As the functions make it: the SDK's default checksums.
  client = s3.clientWith({ requestChecksumCalculation: 'WHEN_SUPPORTED' });
});
afterAll(async () => {
  client.destroy();
  await s3.close();
});

/** `n` pieces of text of about `size` bytes each, some of them not ASCII (a part may end inside a character). */
function* pieces(n: number, size: number): Generator<string> {
  for (let i = 0; i < n; i++) yield `${i}:${'é'.repeat(i % 7)}${'x'.repeat(size)}\n`;
}
const text = (n: number, size: number): string => [...pieces(n, size)].join('');
const target = (Key: string) => ({ Bucket: 'runs', Key, ContentType: 'application/json' });

/** A plan of `n` repositories of about 20 KB of JSON each. */
function bigPlan(n: number): Plan {
  const repository = (i: number): RepositoryPlan => ({
    name: `team/app-${i}`,
    rule: 0,
    action: 'cleaned',
    kept: [],
    deleteTags: Array.from({ length: 150 }, (_, t) => ({
      tag: `v${t}`,
      digest: `sha256:${(i * 1000 + t).toString(16).padStart(64, '0')}`,
      method: 'manifest' as const,
    })),
    deleteManifests: [],
    bytesFreed: 0,
    warnings: [],
  });
  return {
    registry: 'https://registry.example',
    generatedAt: '2026-12-03T00:00:00.000Z',
    complete: true,
    errors: [],
    warnings: [],
    summary: {
      repositories: n,
      tags: n * 150,
      tagsKept: 0,
      tagsDeleted: n * 150,
      manifestsDeleted: 0,
      bytesFreed: 0,
      deleteFraction: 1,
    },
    repositories: Array.from({ length: n }, (_, i) => repository(i)),
  };
}

describe('uploadText', () => {
  it('sends a text over one part as a multipart upload that reads back byte for byte', async () => {
    await uploadText(client, target('big.json'), pieces(3000, 4000));
    const expected = text(3000, 4000);
    expect(Buffer.byteLength(expected)).toBeGreaterThan(2 * UPLOAD_PART_BYTES);
    expect(s3.object('big.json')!.toString('utf8')).toBe(expected);
    expect(s3.puts.at(-1)).toMatchObject({ key: 'big.json', parts: 3 });
    expect(s3.openUploads).toBe(0);
  });

  it('sends a text under one part, whole or in pieces, as one PUT', async () => {
    await uploadText(client, target('small.json'), pieces(10, 100));
    expect(s3.object('small.json')!.toString('utf8')).toBe(text(10, 100));
    expect(s3.puts.at(-1)).toEqual({
      key: 'small.json',
      presigned: false,
      bytes: Buffer.byteLength(text(10, 100)),
    });
    await uploadText(client, target('whole.json'), '{"a":1}');
    expect(s3.object('whole.json')!.toString('utf8')).toBe('{"a":1}');
  });

  it('leaves no object and no open upload when the text fails half-way', async () => {
    function* failing(): Generator<string> {
      yield* pieces(2000, 4000);
      throw new Error('the plan could not be written');
    }
    await expect(uploadText(client, target('broken.json'), failing())).rejects.toThrow(
      /could not be written/,
    );
    expect(s3.object('broken.json')).toBeUndefined();
    expect(s3.openUploads).toBe(0);
  });
});

describe('the stores that write so', () => {
  it('the run store writes a plan in pieces and reads it back', async () => {
    const store = new S3RunStore(client, 'runs');
    const plan = bigPlan(600);
    await store.put('workflow-runs/x/plan.json', jsonPieces(plan, ['repositories']));
    expect(s3.puts.at(-1)!.parts).toBeGreaterThan(1);
    expect(JSON.parse((await store.get('workflow-runs/x/plan.json'))!)).toEqual(plan);
  });

  it('the report store writes a large plan as `plan --json` does, and its page', async () => {
    const plan = bigPlan(600);
    const saved = await new S3ReportStore(client, { bucket: 'runs', prefix: 'reports/' }).save({
      runId: 'big',
      startedAt: new Date('2026-12-03T00:00:00Z'),
      plan,
      maxDeleteFraction: 1,
    });
    expect(saved.status).toBe('written');
    const json = s3.object(saved.json)!.toString('utf8');
    expect(json).toBe(JSON.stringify(plan, null, 2) + '\n');
    expect(s3.object(saved.html)!.toString('utf8')).toContain('team/app-599');
    expect(s3.openUploads).toBe(0);
  });
});
