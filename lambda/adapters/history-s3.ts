// Lists untagged history from a registry whose storage is S3: the driver keeps the filesystem layout under its
// rootdirectory as keys, so every `<repo>/_manifests/revisions/sha256/<hex>/link` object is a revision, and its
// LastModified is when that manifest was last pushed into that repository. ListObjectsV2 only; read-only.
import {
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type ListObjectsV2CommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { ConfigError, HistoryError, errorMessage } from '../core/errors.ts';
import {
  DEFAULT_MAX_HISTORY_ENTRIES,
  RESERVED_PREFIX,
  REVISION_HEX,
  REVISIONS_PATH,
  parseS3StorageUrl,
  revisionLinkPath,
  s3RepositoriesPrefix,
  s3StorageUrl,
  type HistoryListing,
  type HistorySource,
  type S3StorageLocation,
} from '../core/history.ts';
import type { Revision } from '../core/model.ts';

export { parseS3StorageUrl, s3StorageUrl, type S3StorageLocation };

/** Keys in a full ListObjectsV2 page (S3's maximum and default). */
const S3_PAGE_KEYS = 1000;

/**
 * Caps on one listing (core/history.ts, DEFAULT_MAX_HISTORY_ENTRIES): a bucket that never stops paginating ends
 * the listing (as incomplete) instead of the run's memory. The pages cap follows the keys cap, one page per
 * 1,000 keys allowed: 10,000 pages of 1,000 keys covers every revision, tag and layer link of a very large
 * registry.
 */
export const DEFAULT_MAX_HISTORY_KEYS = DEFAULT_MAX_HISTORY_ENTRIES;
export const DEFAULT_MAX_HISTORY_PAGES = Math.ceil(DEFAULT_MAX_HISTORY_KEYS / S3_PAGE_KEYS);

export interface S3HistoryOptions {
  /** @default Math.ceil(maxKeys / 1000) */
  readonly maxPages?: number;
  /** @default DEFAULT_MAX_HISTORY_ENTRIES */
  readonly maxKeys?: number;
  /** Keys per ListObjectsV2 page (S3's maximum, 1,000, by default). */
  readonly pageSize?: number;
}

const repositoriesPrefix = s3RepositoriesPrefix;

/**
 * An S3 client from the usual AWS environment (credentials chain, AWS_REGION, and AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL for an S3-compatible store, addressed path-style since those rarely have per-bucket DNS).
 */
export function s3ClientFromEnv(env: NodeJS.ProcessEnv): S3Client {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const config: S3ClientConfig = {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    followRegionRedirects: true,
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  };
  return new S3Client(config);
}

/** What a failed S3 call means for the person running it. */
function explain(err: unknown, location: S3StorageLocation): string {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const where = s3StorageUrl(location);
  if (e.name === 'NoSuchBucket') return `the bucket ${location.bucket} does not exist`;
  if (e.name === 'AccessDenied' || e.$metadata?.httpStatusCode === 403) {
    return (
      `access denied: the credentials need s3:ListBucket on arn:aws:s3:::${location.bucket} for the prefix ` +
      `${repositoriesPrefix(location)} (${errorMessage(err)})`
    );
  }
  if (e.name === 'CredentialsProviderError') {
    return `no AWS credentials for ${where}: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${errorMessage(err)})`;
  }
  return `${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${errorMessage(err)}`;
}

/**
 * Refuse, before anything is read from the registry, a bucket that cannot be listed or a prefix that holds no
 * registry (no key under `<prefix>/docker/registry/v2/repositories/`).
 */
export async function assertS3StorageRoot(client: S3Client, location: S3StorageLocation): Promise<void> {
  const url = s3StorageUrl(location);
  let page: ListObjectsV2CommandOutput;
  try {
    page = await client.send(
      new ListObjectsV2Command({
        Bucket: location.bucket,
        Prefix: repositoriesPrefix(location),
        MaxKeys: 1,
      }),
    );
  } catch (err) {
    throw new ConfigError(`--storage ${url}: cannot list the bucket: ${explain(err, location)}`, {
      cause: err,
    });
  }
  if ((page.KeyCount ?? page.Contents?.length ?? 0) === 0) {
    throw new ConfigError(
      `--storage ${url}: not a registry's storage root: expected to find keys under ` +
        `${repositoriesPrefix(location)} in the bucket. Pass the S3 driver's bucket and rootdirectory ` +
        `(storage.s3.bucket and storage.s3.rootdirectory in the registry's config).`,
    );
  }
}

export function s3History(
  client: S3Client,
  location: S3StorageLocation,
  options: S3HistoryOptions = {},
): HistorySource {
  const source = s3StorageUrl(location);
  return {
    source,
    list: () => listS3History(client, location, options),
    revisionTime: (repository, digest) => s3RevisionTime(client, location, repository, digest),
  };
}

/**
 * The LastModified of one revision link (a HeadObject, which needs s3:GetObject on it), or null when it is gone.
 * Whole seconds (an HTTP date), where a listing has milliseconds: the sweep compares them in whole seconds.
 */
export async function s3RevisionTime(
  client: S3Client,
  location: S3StorageLocation,
  repository: string,
  digest: string,
): Promise<string | null> {
  const key = `${location.prefix ? `${location.prefix}/` : ''}${revisionLinkPath(repository, digest)}`;
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: key }));
    if (head.LastModified === undefined) {
      throw new HistoryError(`s3://${location.bucket}/${key} came back without LastModified`);
    }
    return head.LastModified.toISOString();
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return null;
    if (err instanceof HistoryError) throw err;
    const why =
      e.name === 'AccessDenied' || e.$metadata?.httpStatusCode === 403
        ? `access denied: the credentials need s3:GetObject on arn:aws:s3:::${location.bucket}/${key} (${errorMessage(err)})`
        : explain(err, location);
    throw new HistoryError(`looking up s3://${location.bucket}/${key} failed: ${why}`, { cause: err });
  }
}

/** Every revision link under the prefix, page by page; an incomplete listing throws a HistoryError. */
export async function listS3History(
  client: S3Client,
  location: S3StorageLocation,
  options: S3HistoryOptions = {},
): Promise<HistoryListing> {
  const source = s3StorageUrl(location);
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_HISTORY_KEYS;
  const maxPages = options.maxPages ?? Math.ceil(maxKeys / S3_PAGE_KEYS);
  const top = repositoriesPrefix(location);
  const marker = `/${REVISIONS_PATH}/`;
  const linkSuffix = '/link';
  const repositories = new Map<string, Revision[]>();
  const seen = new Set<string>();
  let token: string | undefined;
  let pages = 0;
  let keys = 0;
  const partial = (why: string): HistoryError =>
    new HistoryError(`listing untagged history in ${source} stopped: ${why}`);
  do {
    if (++pages > maxPages) {
      throw partial(`more than ${maxPages} pages of keys (the cap on one listing); the listing is partial`);
    }
    let page: ListObjectsV2CommandOutput;
    try {
      page = await client.send(
        new ListObjectsV2Command({
          Bucket: location.bucket,
          Prefix: top,
          MaxKeys: options.pageSize ?? 1000,
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
    } catch (err) {
      throw new HistoryError(
        `listing untagged history in ${source} failed after ${pages - 1} page(s): ${explain(err, location)}`,
        { cause: err },
      );
    }
    const contents = page.Contents ?? [];
    keys += contents.length;
    if (keys > maxKeys)
      throw partial(
        `more than ${maxKeys} keys (the cap on one listing, --max-history-entries); the listing is partial`,
      );
    for (const object of contents) {
      const key = object.Key;
      if (key === undefined || !key.endsWith(linkSuffix)) continue;
      const at = key.lastIndexOf(marker);
      if (at <= top.length) continue;
      const hex = key.slice(at + marker.length, key.length - linkSuffix.length);
      if (!REVISION_HEX.test(hex)) continue;
      const name = key.slice(top.length, at);
      // `_layers`, `_uploads` and `_manifests` are distribution's own; a name with such a segment is not a
      // repository.
      if (name.split('/').some((s) => s === '' || s.startsWith(RESERVED_PREFIX))) continue;
      if (object.LastModified === undefined) {
        throw partial(`the key ${key} came back without LastModified, so its push time is unknown`);
      }
      const list = repositories.get(name);
      const revision = { digest: `sha256:${hex}`, pushedAt: object.LastModified.toISOString() };
      if (list) list.push(revision);
      else repositories.set(name, [revision]);
    }
    if (page.IsTruncated === true) {
      token = page.NextContinuationToken;
      if (!token) throw partial('S3 said the listing is truncated but gave no continuation token');
      if (seen.has(token)) throw partial('S3 sent the same continuation token twice');
      seen.add(token);
    } else token = undefined;
  } while (token !== undefined);
  const byDigest = (a: Revision, b: Revision) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0);
  return {
    source,
    repositories: new Map(
      [...repositories]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, revisions]) => [name, revisions.sort(byDigest)]),
    ),
  };
}
