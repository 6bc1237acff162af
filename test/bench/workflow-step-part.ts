// One step of the Step Functions workflow as its invocation runs it (`runWorkflowStep`, the handler's core), over
// the synthetic registry, with the run's folder on disk instead of the bucket: each step runs in a process of its
// own, as each invocation does, so its peak RSS is its own. The report is rendered and handed to an S3 client
// that keeps nothing; the manifest cache is a file (the bucket's format).
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { openFileCache } from '../../lambda/adapters/manifest-cache-file.ts';
import { S3ReportStore } from '../../lambda/adapters/report-store.ts';
import { uploadText } from '../../lambda/adapters/s3-upload.ts';
import { loadConfig } from '../../lambda/config.ts';
import { DEFAULT_BATCH_REPOSITORIES, DEFAULT_BATCH_TAGS } from '../../lambda/core/contract.ts';
import type { RunStore } from '../../lambda/workflow/run-store.ts';
import { runWorkflowStep } from '../../lambda/workflow/workflow-job.ts';
import { SyntheticRegistry } from './synthetic-registry.ts';

/**
 * The run's folder in the bucket, as files. Each object is written as the S3 run store writes it (the pieces
 * through uploadText, to an S3 client that keeps nothing), so the step's memory is the bucket's; the file is a
 * copy made on the way, for the next step to read.
 */
class FolderRunStore implements RunStore {
  public constructor(private readonly dir: string) {}

  public async get(key: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.dir, key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  public async put(key: string, body: string | Iterable<string>): Promise<void> {
    const path = join(this.dir, key);
    await mkdir(dirname(path), { recursive: true });
    const fd = openSync(path, 'w');
    function* copied(pieces: Iterable<string>): Generator<string> {
      for (const piece of pieces) {
        writeSync(fd, piece);
        yield piece;
      }
    }
    try {
      const target = { Bucket: 'bench', Key: key, ContentType: 'application/json' };
      await uploadText(discardingS3, target, copied(typeof body === 'string' ? [body] : body));
    } finally {
      closeSync(fd);
    }
  }
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { addMetric: () => undefined, publishStoredMetrics: () => undefined };
/**
 * An S3 client whose requests go nowhere: each body is read through (as the socket would read it) and dropped,
 * and every answer is S3's success, so that the report is made and uploaded (one PutObject, or a multipart
 * upload) exactly as in the bucket, and kept nowhere.
 */
const discardingS3 = new S3Client({
  region: 'us-east-1',
  endpoint: 'https://s3.bench.invalid',
  forcePathStyle: true,
  credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  requestHandler: {
    async handle(request: { method: string; query?: Record<string, unknown>; body?: unknown }) {
      const body = request.body;
      if (body instanceof Readable) for await (const _ of body) void _;
      const initiate = request.method === 'POST' && request.query?.uploads !== undefined;
      const complete = request.method === 'POST' && request.query?.uploadId !== undefined;
      const xml = initiate
        ? '<InitiateMultipartUploadResult><UploadId>bench</UploadId></InitiateMultipartUploadResult>'
        : complete
          ? '<CompleteMultipartUploadResult><ETag>"0"</ETag></CompleteMultipartUploadResult>'
          : '';
      return {
        response: {
          statusCode: 200,
          headers: { etag: '"0"', 'content-type': 'application/xml' },
          body: Readable.from([Buffer.from(xml)]),
        },
      };
    },
  },
});

export const BENCH_WORKFLOW_STEPS = [
  'probe',
  'inventory',
  'plan',
  'apply',
  'collect',
  'verify',
  'report',
] as const;

export interface WorkflowStepOptions {
  readonly step: (typeof BENCH_WORKFLOW_STEPS)[number];
  readonly batch?: number;
  readonly runId: string;
  readonly runDir: string;
  readonly repos: number;
  readonly tags: number;
  readonly keep: number;
  readonly cache?: string;
  readonly batchTags?: number;
  readonly batchRepositories?: number;
  /** A real run: the plan goes on to apply (the synthetic registry's DELETEs succeed), collect, verify, report. */
  readonly apply?: boolean;
}

export async function workflowStep(o: WorkflowStepOptions): Promise<Record<string, unknown>> {
  const registry = new SyntheticRegistry({ repos: o.repos, tags: o.tags }, { deletable: o.apply === true });
  const cache = o.cache;
  const result = await runWorkflowStep(
    {
      config: loadConfig({
        REGISTRY_URL: 'https://synthetic.bench.invalid',
        GC_INSTANCE_ID: 'i-00000000',
        GC_DOCUMENT_NAME: 'bench',
        RETENTION_POLICY: JSON.stringify({ rules: [{ repositories: ['**'], keep: { newest: o.keep } }] }),
        // A dry run plans all the same (and stops there); it sends no delete probe to the synthetic registry.
        DRY_RUN: o.apply ? 'false' : 'true',
        MAX_DELETE_FRACTION: '1',
      }),
      store: new FolderRunStore(o.runDir),
      registry: () => Promise.resolve(registry),
      logger: quiet,
      metrics: noMetrics,
      ...(cache ? { openCache: () => openFileCache(cache) } : {}),
      reports: new S3ReportStore(discardingS3, { bucket: 'bench', prefix: 'reports/' }),
      batchTags: o.batchTags ?? DEFAULT_BATCH_TAGS,
      batchRepositories: o.batchRepositories ?? DEFAULT_BATCH_REPOSITORIES,
    },
    o.step === 'probe'
      ? { step: 'probe', runId: o.runId, input: {} }
      : o.step === 'inventory' || o.step === 'apply' || o.step === 'verify'
        ? { step: o.step, runId: o.runId, batch: o.batch ?? 0 }
        : o.step === 'report'
          ? // The garbage-collect (SSM) is not run here.
            { step: 'report', runId: o.runId, gc: { skipped: 'bench' } }
          : { step: o.step, runId: o.runId },
    { getRemainingTimeInMillis: () => 900_000, awsRequestId: 'bench' },
  );
  return { step: o.step, result, requests: registry.counts };
}
