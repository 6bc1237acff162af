// Untagged history: the port a storage listing comes through, and the layout distribution keeps in every
// storage driver (filesystem and S3 alike), written once for the filesystem and S3 listers.
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
}

/** Below the driver's root directory: one folder (or key prefix) per repository, nested by name. */
export const REPOSITORIES_PATH = 'docker/registry/v2/repositories';

/** Below a repository: one `<hex>/link` per revision ever pushed into it. */
export const REVISIONS_PATH = '_manifests/revisions/sha256';

/** A revision folder's name: the hex of its sha256 digest. */
export const REVISION_HEX = /^[a-f0-9]{64}$/;

/** Folders distribution keeps inside a repository; anything else there is a nested repository. */
export const RESERVED_PREFIX = '_';
