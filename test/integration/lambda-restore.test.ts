// The Lambda's restore payload on real 2.8 and v3 registries: a real two-phase run records its untag records in
// the journal object of the construct's bucket (the S3 adapter over an in-memory bucket, aws-sdk-client-mock),
// garbage-collect runs within the window, then the handler, invoked with {"restore": {"run": ID}}, puts every tag
// back from that object. Every restored image is served whole after another garbage-collect; the restore wrote
// no S3 object and sent no DELETE.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { s3Journal } from '../../lambda/adapters/journal-s3.ts';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { runJob } from '../../lambda/core/job.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { createLambdaHandler } from '../../lambda/lambda-job.ts';
import type { LambdaRestoreResult } from '../../lambda/lambda-restore.ts';
import { context, INSTANCE, POLICY as JOB_POLICY, recorder, unusedRunner } from '../support/lambda-job.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { seedRestoreScenario } from '../support/restore-scenario.ts';
import { servedWhole } from '../support/served-whole.ts';
import { shiftStorage } from '../support/time-shift.ts';

const BUCKET = 'janitor-bucket';
const POLICY = parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { tags: ["keep"] }\n', 'policy.yaml');

describeEachRegistry('the Lambda restore payload', ({ kind }) => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;
  const s3Client = new S3Client({ region: 'eu-west-1' });
  const s3 = mockClient(s3Client);
  const bucket = new Map<string, string>();

  beforeAll(async () => {
    registry = await startRegistry(kind);
    client = createRegistryClient({ url: registry.url, concurrency: 8 });
    s3.on(PutObjectCommand).callsFake((input: { Key: string; Body: string }) => {
      bucket.set(input.Key, input.Body);
      return {};
    });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
      const body = bucket.get(input.Key);
      if (body === undefined) throw Object.assign(new Error('no such key'), { name: 'NoSuchKey' });
      return { Body: Readable.from([Buffer.from(body)]) as never };
    });
  }, 60_000);

  afterAll(async () => {
    s3.restore();
    await client?.close();
    await registry?.dispose();
  });

  const journal = (warn: (m: string) => void) =>
    s3Journal(s3Client, BUCKET, { registry: registry.url, warn });

  async function collectGarbage(): Promise<void> {
    await registry.stop();
    registry.garbageCollect();
    await registry.start();
  }

  it('puts back a whole run from journal/<host>.json after a garbage-collect within the window', async () => {
    const s = await seedRestoreScenario(client, 'lambda');
    shiftStorage(registry.storageDir, 2 * 3_600_000); // pushed a while ago, not "again" at the untagging
    const warnings: string[] = [];
    const job = await runJob({
      client,
      policy: POLICY,
      history: filesystemHistory(registry.storageDir),
      journal: journal((m) => warnings.push(m)),
      undoWindowHours: 24,
      now: new Date(),
      dryRun: false,
      maxDeleteFraction: 1,
    });
    expect(warnings).toEqual([]);
    const runId = job.report!.undo!.runId!;
    expect((await client.listTags(s.app)).sort()).toEqual(['keep']);
    await collectGarbage();

    const rec = recorder();
    const handler = createLambdaHandler({
      env: () => ({
        REGISTRY_URL: registry.url,
        GC_INSTANCE_ID: INSTANCE,
        GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
        RETENTION_POLICY: JSON.stringify(JOB_POLICY),
        CACHE_BUCKET: BUCKET,
      }),
      logger: () => rec.logger,
      metrics: () => rec.metrics,
      connect: () => Promise.resolve({ registry: client, runner: () => unusedRunner, journal }),
    });
    const puts = s3.commandCalls(PutObjectCommand).length;
    const deletes = client.stats().delete;

    const dry = (await handler(
      { restore: { tag: `${s.app}:v1` }, dryRun: true },
      context,
    )) as LambdaRestoreResult;
    expect(dry).toMatchObject({ dryRun: true, restored: 1, failed: 0 });
    expect((await client.listTags(s.app)).sort()).toEqual(['keep']);

    const result = (await handler({ restore: { run: runId } }, context)) as LambdaRestoreResult;
    expect(result).toMatchObject({
      restored: 4,
      already: 0,
      skipped: 0,
      failed: 0,
      journal: expect.stringMatching(/^s3:\/\/janitor-bucket\/journal\//),
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(puts);
    expect(client.stats().delete).toBe(deletes);
    expect((await client.listTags(s.app)).sort()).toEqual(['keep', 'multi', 'v1', 'v1-alias']);
    expect(await client.listTags(s.api)).toEqual(['old']);
    await collectGarbage();
    for (const [ref, digest] of Object.entries(s.was)) {
      const at = ref.lastIndexOf(':');
      expect(await servedWhole(client, ref.slice(0, at), ref.slice(at + 1), digest)).toBeGreaterThan(0);
    }
  }, 180_000);
});
