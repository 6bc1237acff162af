// The Step Functions workflow's entry point: one bundle, deployed as one function per step (each with its own
// role), each invocation one step of lambda/workflow/workflow-job.ts. Clients are built on the first use and kept
// while the container lives; the registry (and its credentials) only in the steps that read it.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { KmsCacheMac } from './adapters/cache-mac-kms.ts';
import { s3Journal } from './adapters/journal-s3.ts';
import { openS3Cache } from './adapters/manifest-cache-s3.ts';
import { S3ReportStore } from './adapters/report-store.ts';
import { S3RunStore } from './adapters/run-store-s3.ts';
import { createSsmClient } from './adapters/ssm-runner.ts';
import { loadConfig } from './config.ts';
import { cacheKeyOf, connectRegistry } from './connect.ts';
import {
  DEFAULT_BATCH_REPOSITORIES,
  DEFAULT_BATCH_TAGS,
  DEFAULT_DEADLINE_MARGIN_SECONDS,
  DEFAULT_SERVICE_NAME as SERVICE_NAME,
  METRIC_NAMESPACE as NAMESPACE,
  WORKFLOW_ENV,
} from './core/contract.ts';
import { ConfigError, errorMessage } from './core/errors.ts';
import type { RegistryClient } from './core/ports.ts';
import type { InvokeContext } from './lambda-job.ts';
import { historyOf } from './history-source.ts';
import { runWorkflowStep } from './workflow/workflow-job.ts';

let registry: Promise<RegistryClient> | undefined;
let ssm: ReturnType<typeof createSsmClient> | undefined;
let logger: Logger | undefined;

const whole = (name: string, fallback: number, least = 1): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < least)
    throw new ConfigError(`${name}="${raw}" must be a whole number of at least ${least}`);
  return n;
};

export async function handler(event: unknown, context: InvokeContext): Promise<Record<string, unknown>> {
  logger ??= new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || SERVICE_NAME });
  logger.addContext(context as never);
  const metrics = new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || NAMESPACE,
    serviceName: process.env.POWERTOOLS_SERVICE_NAME || SERVICE_NAME,
  });
  try {
    const config = loadConfig(process.env);
    const bucket = config.cacheBucket;
    if (bucket === undefined) {
      throw new ConfigError(
        'CACHE_BUCKET is not set: the workflow keeps what passes between its steps there',
      );
    }
    const s3 = new S3Client({});
    const keyId = config.cacheHmacKeyId;
    const mac = keyId === undefined ? undefined : new KmsCacheMac(new KMSClient({}), keyId);
    ssm ??= createSsmClient();
    const ssmClient = ssm;
    // The same listing as the single run's (HISTORY_STORAGE): the probe lists for the run, each apply batch again.
    const history = historyOf(config, ssmClient);
    return await runWorkflowStep(
      {
        config,
        store: new S3RunStore(s3, bucket),
        registry: () =>
          (registry ??= connectRegistry(config, ssmClient).catch((err: unknown) => {
            registry = undefined;
            throw err;
          })),
        logger,
        metrics,
        ...(history ? { history: () => history(context) } : {}),
        ...(mac ? { openCache: () => openS3Cache(s3, bucket, cacheKeyOf(config), mac) } : {}),
        ...(config.reports ? { reports: new S3ReportStore(s3, config.reports) } : {}),
        // The journal lives in the construct's bucket under journal/, as for the single run.
        journal: (warn: (message: string) => void) =>
          s3Journal(s3, bucket, { registry: config.registryUrl, warn }),
        batchTags: whole(WORKFLOW_ENV.batchTags, DEFAULT_BATCH_TAGS),
        batchRepositories: whole(WORKFLOW_ENV.batchRepositories, DEFAULT_BATCH_REPOSITORIES),
        deadlineMarginMs:
          whole(WORKFLOW_ENV.deadlineMarginSeconds, DEFAULT_DEADLINE_MARGIN_SECONDS, 0) * 1000,
      },
      event,
      context,
    );
  } catch (err) {
    logger.error(`workflow step failed: ${errorMessage(err)}`, { error: err });
    throw err;
  }
}
