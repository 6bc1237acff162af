// The Lambda entry point: wires Powertools, the SSM client, Parameter Store and the registry client into the job in
// lambda-job.ts. Clients are built on the first invocation and reused while the container lives.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { KmsCacheMac } from './adapters/cache-mac-kms.ts';
import { openS3Cache } from './adapters/manifest-cache-s3.ts';
import { readCredentials, readParameter } from './adapters/parameter-store.ts';
import { S3ReportStore } from './adapters/report-store.ts';
import { createRegistryClient } from './adapters/registry-client.ts';
import { SsmCommandRunner, createSsmClient } from './adapters/ssm-runner.ts';
import type { JanitorConfig } from './config.ts';
import {
  DEFAULT_SERVICE_NAME as SERVICE_NAME,
  MANIFEST_CACHE_PREFIX,
  METRIC_NAMESPACE as NAMESPACE,
} from './core/contract.ts';
import { createLambdaHandler, type LambdaRuntime } from './lambda-job.ts';

/** Secrets come from Parameter Store only; the SSM client has no fixed endpoint, so AWS_ENDPOINT_URL_SSM applies. */
async function connect(config: JanitorConfig): Promise<LambdaRuntime> {
  const ssm = createSsmClient();
  const credentials =
    config.credentialsParameter === undefined
      ? undefined
      : await readCredentials(ssm, config.credentialsParameter);
  const caPem = config.caParameter === undefined ? undefined : await readParameter(ssm, config.caParameter);
  const registry = createRegistryClient({
    url: config.registryUrl,
    ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    ...(caPem !== undefined ? { caPem } : {}),
    insecure: config.insecureTls,
    concurrency: config.concurrency,
    allowInsecureHttp: config.allowInsecureHttp,
    tokenRealmHosts: config.tokenRealmHosts,
    ...(config.maxListPages !== undefined ? { maxListPages: config.maxListPages } : {}),
    ...(config.maxListEntries !== undefined ? { maxListEntries: config.maxListEntries } : {}),
  });
  // Without its MAC key the cache could be anyone's with s3:PutObject on the bucket, so it is not used at all.
  const keyId = config.cacheHmacKeyId;
  const bucket = keyId === undefined ? undefined : config.cacheBucket;
  const s3 = bucket === undefined && config.reports === undefined ? undefined : new S3Client({});
  const mac =
    bucket === undefined || keyId === undefined ? undefined : new KmsCacheMac(new KMSClient({}), keyId);
  // One object per registry host, so a bucket shared by several janitors keeps their caches apart.
  const cacheKey = `${MANIFEST_CACHE_PREFIX}${new URL(config.registryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`;
  return {
    registry,
    ...(bucket !== undefined && s3 && mac ? { openCache: () => openS3Cache(s3, bucket, cacheKey, mac) } : {}),
    ...(config.reports && s3 ? { reports: new S3ReportStore(s3, config.reports) } : {}),
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
