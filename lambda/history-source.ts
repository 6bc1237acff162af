// Where a run lists untagged history from (HISTORY_STORAGE), for both entry points: the single run (handler.ts)
// and the workflow's probe and apply steps (workflow-handler.ts). Built per invocation, for its deadline.
import { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { containerHistory } from './adapters/history-container.ts';
import { assertS3StorageRoot, listS3History, s3RevisionTime } from './adapters/history-s3.ts';
import { SsmCommandRunner } from './adapters/ssm-runner.ts';
import type { JanitorConfig } from './config.ts';
import { ENV, HISTORY_LISTING_TIMEOUT_SECONDS } from './core/contract.ts';
import { HistoryError, errorMessage } from './core/errors.ts';
import { s3StorageUrl, type HistorySource } from './core/history.ts';
import type { InvokeContext } from './lambda-job.ts';

/** Where this run lists untagged history from (HISTORY_STORAGE), built per invocation for its deadline. */
export function historyOf(
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
      // The sweep's look at one revision link right before its DELETE (a HeadObject: s3:GetObject on the links).
      revisionTime: (repository, digest) => s3RevisionTime(client, location, repository, digest),
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
