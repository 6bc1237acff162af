// Lists untagged history from a registry's filesystem storage for the Lambda: the janitor's SSM document lists every
// revision link inside the running registry container (`action=list`), gzips the listing on the host and uploads
// it with a presigned PUT URL made here for one new key in the construct's bucket (the host needs no AWS
// permission), and prints only a summary (SSM keeps 24,000 characters of output). The object is then read back and
// checked against that summary before a line of it is believed.
import { createHash, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  HISTORY_LISTING_PREFIX,
  HISTORY_LISTING_TIMEOUT_SECONDS,
  HISTORY_LISTING_URL_SECONDS,
} from '../core/contract.ts';
import { HistoryError, errorMessage } from '../core/errors.ts';
import { lastLine } from '../core/gc.ts';
import { listingParameters, parseListingOutput } from '../core/gc-script.ts';
import type { HistoryListing, HistorySource } from '../core/history.ts';
import { MAX_LISTING_BYTES, MAX_LISTING_GZIP_BYTES, parseListing } from '../core/history-listing.ts';
import type { CommandResult, CommandRunner } from '../core/ports.ts';

const gunzipAsync = promisify(gunzip);

export interface ContainerHistoryOptions {
  /** Runs the janitor's document on the registry host (SSM Run Command in the Lambda). */
  readonly runner: CommandRunner;
  /** Signs the upload URL and reads the listing back: the function's own credentials. */
  readonly s3: S3Client;
  /** The construct's bucket (HISTORY_LISTING_BUCKET). */
  readonly bucket: string;
  readonly containerName: string;
  readonly configPath?: string;
  /** Names the host in the plan, e.g. the instance id. */
  readonly host: string;
  /** @default HISTORY_LISTING_URL_SECONDS (600) */
  readonly urlSeconds?: number;
  /** @default HISTORY_LISTING_TIMEOUT_SECONDS (600) */
  readonly timeoutSeconds?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Injected for tests. @default getSignedUrl from @aws-sdk/s3-request-presigner */
  readonly presign?: (s3: S3Client, bucket: string, key: string, seconds: number) => Promise<string>;
  /** Host settings for local runs (tests): the lock, log folder and lock wait of the script. */
  readonly hostSettings?: {
    readonly lockPath?: string;
    readonly logDir?: string;
    readonly lockWaitSeconds?: number;
  };
}

const defaultPresign = (s3: S3Client, bucket: string, key: string, seconds: number): Promise<string> =>
  getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: seconds });

/** The key one listing is uploaded to: new for every run, under the prefix the function may read. */
export function listingKey(now: Date): string {
  return `${HISTORY_LISTING_PREFIX}${now.toISOString().slice(0, 10)}/${now.getTime()}-${randomUUID()}.txt.gz`;
}

export function containerHistory(options: ContainerHistoryOptions): HistorySource {
  const source = `registry container ${options.containerName} on ${options.host}`;
  return { source, list: () => listContainerHistory(options, source) };
}

async function listContainerHistory(
  options: ContainerHistoryOptions,
  source: string,
): Promise<HistoryListing> {
  const fail = (why: string, cause?: unknown): HistoryError =>
    new HistoryError(
      `listing untagged history in the ${source} failed: ${why}`,
      cause ? { cause } : undefined,
    );
  const key = listingKey((options.now ?? (() => new Date()))());
  let url: string;
  try {
    url = await (options.presign ?? defaultPresign)(
      options.s3,
      options.bucket,
      key,
      options.urlSeconds ?? HISTORY_LISTING_URL_SECONDS,
    );
  } catch (err) {
    throw fail(`could not sign the upload URL (${errorMessage(err)})`, err);
  }
  const parameters = listingParameters({
    containerName: options.containerName,
    ...(options.configPath !== undefined ? { configPath: options.configPath } : {}),
    uploadUrl: url,
    ...options.hostSettings,
  });
  let result: CommandResult;
  try {
    result = await options.runner.run(parameters, {
      timeoutSeconds: options.timeoutSeconds ?? HISTORY_LISTING_TIMEOUT_SECONDS,
    });
  } catch (err) {
    throw fail(`could not run the listing on the host (${errorMessage(err)})`, err);
  }
  const summary = parseListingOutput(result.stdout);
  if (result.status !== 'Success' || summary.status !== 'ok') {
    const reason = summary.error ?? lastLine(result.stderr) ?? 'no reason given';
    const how =
      result.status === 'InProgress' ? 'was still running when the function had to stop waiting' : '';
    throw fail(
      `${how || `the command ended ${result.status}${result.exitCode === null ? '' : ` (exit ${result.exitCode})`}`}` +
        `${result.commandId ? `, SSM command ${result.commandId}` : ''}: ${reason}`,
    );
  }
  if (summary.root === null || summary.count === null || summary.bytes === null || summary.sha256 === null) {
    throw fail('the host reported success without the listing summary (root, count, size, SHA-256)');
  }
  if (summary.bytes > MAX_LISTING_GZIP_BYTES) {
    throw fail(`the listing is ${summary.bytes} bytes gzip'd, over the ${MAX_LISTING_GZIP_BYTES}-byte bound`);
  }
  const where = `s3://${options.bucket}/${key}`;
  let body: Uint8Array;
  try {
    const object = await options.s3.send(new GetObjectCommand({ Bucket: options.bucket, Key: key }));
    if (object.ContentLength !== undefined && object.ContentLength !== summary.bytes) {
      throw new Error(`it is ${object.ContentLength} bytes where the host uploaded ${summary.bytes}`);
    }
    if (!object.Body) throw new Error('it has no body');
    body = await object.Body.transformToByteArray();
  } catch (err) {
    throw fail(`could not read the uploaded listing ${where} (${errorMessage(err)})`, err);
  }
  if (body.length !== summary.bytes) {
    throw fail(`${where} is ${body.length} bytes where the host uploaded ${summary.bytes}`);
  }
  const digest = createHash('sha256').update(body).digest('hex');
  if (digest !== summary.sha256) {
    throw fail(`${where} does not have the SHA-256 the host reported (${digest}, not ${summary.sha256})`);
  }
  let text: string;
  try {
    text = (await gunzipAsync(body, { maxOutputLength: MAX_LISTING_BYTES })).toString('utf8');
  } catch (err) {
    throw fail(
      `${where} is not a gzip'd listing of at most ${MAX_LISTING_BYTES} bytes (${errorMessage(err)})`,
      err,
    );
  }
  return parseListing(text, {
    source: `${source}: ${summary.root}`,
    root: summary.root,
    count: summary.count,
  });
}
