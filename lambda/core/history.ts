// Untagged history: the port a storage listing comes through, and the layout distribution keeps in every
// storage driver (filesystem and S3 alike), written once for the filesystem and S3 listers.
import { ConfigError } from './errors.ts';
import type { Revision } from './model.ts';

/** Every revision each repository holds, as the registry's storage lists it. */
export interface HistoryListing {
  /** Where it came from, for the plan (e.g. `/var/lib/registry`, `s3://bucket/prefix`). */
  readonly source: string;
  /** repository → its revisions (tagged or not), sorted by digest. */
  readonly repositories: ReadonlyMap<string, readonly Revision[]>;
}

/** Lists untagged history. `list` throws a `HistoryError` when it cannot list all of it. */
export interface HistorySource {
  readonly source: string;
  list(): Promise<HistoryListing>;
  /**
   * One revision link's time now (filesystem mtime, S3 LastModified), or null when the link is gone: what the
   * sweep asks right before each DELETE by digest, since any PUT of that manifest (a promotion by a new tag
   * included) rewrites the link. Left out by a source without a cheap point lookup (the container listing, which
   * runs a command on the host); the executor then re-checks the tags before each chunk of DELETEs instead.
   */
  readonly revisionTime?: RevisionTime;
}

/** A point lookup of revision links (HistorySource.revisionTime), as the executor takes it. */
export type RevisionTime = (repository: string, digest: string) => Promise<string | null>;

/** Below the driver's root directory: one folder (or key prefix) per repository, nested by name. */
export const REPOSITORIES_PATH = 'docker/registry/v2/repositories';

/** Below a repository: one `<hex>/link` per revision ever pushed into it. */
export const REVISIONS_PATH = '_manifests/revisions/sha256';

/** A revision folder's name: the hex of its sha256 digest. */
export const REVISION_HEX = /^[a-f0-9]{64}$/;

/**
 * Where one revision's link lives below the storage root (filesystem path or S3 key after the rootdirectory).
 * Refuses anything but a `sha256:` digest and a repository name without empty, `.` or `..` segments, so a lookup
 * never leaves the repositories folder.
 */
export function revisionLinkPath(repository: string, digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : '';
  if (!REVISION_HEX.test(hex)) throw new ConfigError(`not a sha256 digest: ${digest}`);
  if (
    repository.split('/').some((s) => s === '' || s === '.' || s === '..' || s.startsWith(RESERVED_PREFIX))
  ) {
    throw new ConfigError(`not a repository name: ${repository}`);
  }
  return `${REPOSITORIES_PATH}/${repository}/${REVISIONS_PATH}/${hex}/link`;
}

/** Folders distribution keeps inside a repository; anything else there is a nested repository. */
export const RESERVED_PREFIX = '_';

/**
 * The most storage entries one listing may read before it stops as partial (then no untagged manifest is
 * deleted that run): S3 keys, or a filesystem's repository folders and revision entries. A storage that never
 * ends, or a root far wider than a registry's, ends the listing instead of the run's memory. Its own cap, not the
 * catalog's: `--max-list-entries` bounds one catalog or tag list of the API, while a storage holds every revision
 * of every repository (and on S3 their tag and layer links as well). 10 million is a hundred times the largest
 * registry the bench lists (100,000 revisions).
 */
export const DEFAULT_MAX_HISTORY_ENTRIES = 10_000_000;

/** Where a registry's S3 storage lives: the bucket and the driver's `rootdirectory` (no leading or trailing /). */
export interface S3StorageLocation {
  readonly bucket: string;
  readonly prefix: string;
}

// Bucket names as S3 allows them for new buckets (3–63 of a-z 0-9 . -, starting and ending alphanumeric).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
// A prefix segment: anything printable but a slash (the driver takes any rootdirectory); no empty segments.
const PREFIX_SEGMENT = /^[^\s/\\?#]+$/;

export const S3_STORAGE_USAGE =
  'give the S3 driver\'s bucket and rootdirectory as s3://BUCKET/ROOTDIRECTORY (e.g. s3://registry-data/registry, or s3://registry-data when rootdirectory is "/")';

/** What is wrong with an `s3://bucket/prefix` URL (phrased to follow it), or its location. */
export function s3StorageUrlProblem(
  url: string,
): { readonly location: S3StorageLocation } | { readonly problem: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(url);
  if (!m) return { problem: 'not an s3:// URL' };
  const bucket = m[1]!;
  if (bucket === '') return { problem: 'the bucket name is missing' };
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    return { problem: `"${bucket}" is not a valid bucket name (3 to 63 of a-z, 0-9, "." and "-")` };
  }
  const rest = (m[2] ?? '').replace(/\/+$/, '');
  if (rest === '') return { location: { bucket, prefix: '' } };
  const segments = rest.split('/');
  for (const s of segments) {
    if (!PREFIX_SEGMENT.test(s)) {
      return {
        problem:
          s === ''
            ? 'the prefix has an empty segment ("//")'
            : `the prefix segment "${s}" has a space, "?", "#" or "\\" in it`,
      };
    }
  }
  return { location: { bucket, prefix: segments.join('/') } };
}

/** Parse `s3://bucket/prefix` (the CLI's `--storage`); anything else is refused with what was wrong. */
export function parseS3StorageUrl(url: string, source = '--storage'): S3StorageLocation {
  const parsed = s3StorageUrlProblem(url);
  if ('problem' in parsed) throw new ConfigError(`${source} ${url}: ${parsed.problem}; ${S3_STORAGE_USAGE}`);
  return parsed.location;
}

export function s3StorageUrl(location: S3StorageLocation): string {
  return `s3://${location.bucket}${location.prefix ? `/${location.prefix}` : ''}`;
}

/** The key prefix every repository sits under in an S3 storage (what s3:ListBucket is granted on). */
export function s3RepositoriesPrefix(location: S3StorageLocation): string {
  return `${location.prefix ? `${location.prefix}/` : ''}${REPOSITORIES_PATH}/`;
}
