// The Lambda entry point: wires Powertools, the SSM client, Parameter Store and the registry client into the job in
// lambda-job.ts. Clients are built on the first invocation and reused while the container lives.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { containerHistory } from './adapters/history-container.ts';
import { assertS3StorageRoot, listS3History } from './adapters/history-s3.ts';
import { KmsCacheMac } from './adapters/cache-mac-kms.ts';
import { s3Journal } from './adapters/journal-s3.ts';
import { openS3Cache } from './adapters/manifest-cache-s3.ts';
import { S3ReportStore } from './adapters/report-store.ts';
import { SsmCommandRunner, createSsmClient } from './adapters/ssm-runner.ts';
import { cacheKeyOf, connectRegistry } from './connect.ts';
import type { JanitorConfig } from './config.ts';
import { HistoryError, errorMessage } from './core/errors.ts';
import { s3StorageUrl, type HistorySource } from './core/history.ts';
import {
  ENV,
  HISTORY_LISTING_TIMEOUT_SECONDS,
  DEFAULT_SERVICE_NAME as SERVICE_NAME,
  METRIC_NAMESPACE as NAMESPACE,
} from './core/contract.ts';
import { createLambdaHandler, type InvokeContext, type LambdaRuntime } from './lambda-job.ts';
import type { SSMClient } from '@aws-sdk/client-ssm';

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

/** Where this run lists untagged history from (HISTORY_STORAGE), built per invocation for its deadline. */
function historyOf(
  config: JanitorConfig,
  ssm: SSMClient,
): ((context: InvokeContext) => HistorySource) | undefined {
  const setting = config.history;
  if (setting.kind === 'none') return undefined;
  if (setting.kind === 's3') {
    const client = new S3Client({ followRegionRedirects: true });
    const { location } = setting;
    const source: HistorySource = {
      source: s3StorageUrl(location),
      list: async () => {
        // A prefix that holds no registry would list as "no history at all": refused, like the CLI's --storage.
        try {
          await assertS3StorageRoot(client, location);
        } catch (err) {
          throw new HistoryError(
            `listing untagged history failed: ${errorMessage(err).replace(/^--storage /, `${ENV.storage}=`)}`,
            { cause: err },
          );
        }
        return listS3History(client, location);
      },
    };
    return () => source;
  }
  const bucket = config.listingBucket;
  const host =
    'instanceId' in config.gc.target
      ? config.gc.target.instanceId
      : `${config.gc.target.tagKey}=${config.gc.target.tagValue}`;
  if (bucket === undefined) {
    const source = `registry container ${config.gc.containerName} on ${host}`;
    return () => ({
      source,
      list: () =>
        Promise.reject(
          new HistoryError(
            `listing untagged history in the ${source} needs the construct's bucket to receive it, and ` +
              `${ENV.listingBucket} is not set; deploy with the construct (it sets it), or set storage to none`,
          ),
        ),
    });
  }
  // Presigned PUTs carry no checksum: the host uploads with curl, which sends none.
  const s3 = new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' });
  return (context) =>
    containerHistory({
      runner: new SsmCommandRunner({
        client: ssm,
        target: config.gc.target,
        documentName: config.gc.documentName,
        executionTimeoutSeconds: HISTORY_LISTING_TIMEOUT_SECONDS,
        ...(config.gc.logGroup !== undefined ? { cloudWatchLogGroup: config.gc.logGroup } : {}),
        comment: 'registry-janitor: list untagged history',
        remainingTimeMs: () => context.getRemainingTimeInMillis(),
      }),
      s3,
      bucket,
      containerName: config.gc.containerName,
      ...(config.gc.configPath !== undefined ? { configPath: config.gc.configPath } : {}),
      host,
    });
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
