// The Lambda entry point: wires Powertools, the SSM client, Parameter Store and the registry client into the job in
// lambda-job.ts. Clients are built on the first invocation and reused while the container lives.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { KmsCacheMac } from './adapters/cache-mac-kms.ts';
import { s3Journal } from './adapters/journal-s3.ts';
import { openS3Cache } from './adapters/manifest-cache-s3.ts';
import { S3ReportStore } from './adapters/report-store.ts';
import { SsmCommandRunner, createSsmClient } from './adapters/ssm-runner.ts';
import { cacheKeyOf, connectRegistry } from './connect.ts';
import type { JanitorConfig } from './config.ts';
import { historyOf } from './history-source.ts';
import { DEFAULT_SERVICE_NAME as SERVICE_NAME, METRIC_NAMESPACE as NAMESPACE } from './core/contract.ts';
import { createLambdaHandler, type LambdaRuntime } from './lambda-job.ts';

/** Secrets come from Parameter Store only; the SSM client has no fixed endpoint, so AWS_ENDPOINT_URL_SSM applies. */
async function connect(config: JanitorConfig): Promise<LambdaRuntime> {
  const ssm = createSsmClient();
  const registry = await connectRegistry(config, ssm);
  // Without its MAC key the cache could be anyone's with s3:PutObject on the bucket, so it is not used at all.
  const keyId = config.cacheHmacKeyId;
  const bucket = keyId === undefined ? undefined : config.cacheBucket;
  const s3 = config.cacheBucket === undefined && config.reports === undefined ? undefined : new S3Client({});
  const journalBucket = config.cacheBucket;
  const mac =
    bucket === undefined || keyId === undefined ? undefined : new KmsCacheMac(new KMSClient({}), keyId);
  const history = historyOf(config, ssm);
  return {
    registry,
    ...(history ? { history } : {}),
    ...(bucket !== undefined && s3 && mac
      ? { openCache: () => openS3Cache(s3, bucket, cacheKeyOf(config), mac) }
      : {}),
    ...(config.reports && s3 ? { reports: new S3ReportStore(s3, config.reports) } : {}),
    // The journal lives in the construct's bucket under journal/, which only the function may write.
    ...(journalBucket !== undefined && s3
      ? {
          journal: (warn: (message: string) => void) =>
            s3Journal(s3, journalBucket, { registry: config.registryUrl, warn }),
        }
      : {}),
    runner: (context) =>
      new SsmCommandRunner({
        client: ssm,
        target: config.gc.target,
        documentName: config.gc.documentName,
        executionTimeoutSeconds: config.gc.timeoutSeconds,
        ...(config.gc.logGroup !== undefined ? { cloudWatchLogGroup: config.gc.logGroup } : {}),
        remainingTimeMs: () => context.getRemainingTimeInMillis(),
      }),
  };
}

export const handler = createLambdaHandler({
  env: () => process.env,
  logger: () => new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME || SERVICE_NAME }),
  metrics: () =>
    new Metrics({
      namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || NAMESPACE,
      serviceName: process.env.POWERTOOLS_SERVICE_NAME || SERVICE_NAME,
    }),
  connect,
});
