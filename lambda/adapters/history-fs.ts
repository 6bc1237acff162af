// Lists untagged history from a filesystem registry's storage (the folder `storage.filesystem.rootdirectory`
// names, e.g. the host side of the container's /var/lib/registry volume): every revision link and its mtime,
// which is when that manifest was last pushed into that repository. Read-only; the registry keeps running.
import { lstatSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, HistoryError, errorMessage } from '../core/errors.ts';
import {
  DEFAULT_MAX_HISTORY_ENTRIES,
  REPOSITORIES_PATH,
  RESERVED_PREFIX,
  REVISION_HEX,
  REVISIONS_PATH,
  revisionLinkPath,
  type HistoryListing,
  type HistorySource,
} from '../core/history.ts';
import type { Revision } from '../core/model.ts';

/**
 * Revision links stat'ed in one go before yielding to the event loop. A synchronous lstat of a cached inode takes
 * a few microseconds, where the thread pool's round trip for an asynchronous one costs ten times that; yielding
 * between slices keeps the scan's registry requests (running beside the listing) moving.
 */
const STATS_PER_SLICE = 256;

export interface FilesystemHistoryOptions {
  /**
   * The most entries (repository folders and revision entries) one listing reads before it stops as partial.
   * @default DEFAULT_MAX_HISTORY_ENTRIES
   */
  readonly maxEntries?: number;
}

export function filesystemHistory(root: string, options: FilesystemHistoryOptions = {}): HistorySource {
  return {
    source: root,
    list: () => listFilesystemHistory(root, options),
    revisionTime: (repository, digest) => revisionLinkTime(root, repository, digest),
  };
}

/** The mtime of one revision link (a stat), or null when it is gone. */
export async function revisionLinkTime(
  root: string,
  repository: string,
  digest: string,
): Promise<string | null> {
  const link = await lstat(join(root, revisionLinkPath(repository, digest))).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  });
  return link?.isFile() ? link.mtime.toISOString() : null;
}

/** Refuse, before anything is read from the registry, a folder that is not a storage root. */
export async function assertStorageRoot(root: string): Promise<void> {
  const stat = await lstat(join(root, REPOSITORIES_PATH)).catch(() => undefined);
  if (!stat?.isDirectory()) {
    throw new ConfigError(
      `--storage ${root}: not a registry's storage root: expected to find ${REPOSITORIES_PATH} in it. Pass the ` +
        `folder storage.filesystem.rootdirectory names (the one that holds docker/), e.g. the host side of the ` +
        `container's /var/lib/registry volume.`,
    );
  }
}

export async function listFilesystemHistory(
  root: string,
  options: FilesystemHistoryOptions = {},
): Promise<HistoryListing> {
  await assertStorageRoot(root);
  const top = join(root, REPOSITORIES_PATH);
  const repositories = new Map<string, readonly Revision[]>();
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_HISTORY_ENTRIES;
  let read = 0;
  // Counted as each folder is read, before anything is kept of it: a storage past the cap stops the listing.
  const count = (n: number): void => {
    read += n;
    if (read > maxEntries) {
      throw new HistoryError(
        `listing untagged history in ${root} stopped: more than ${maxEntries} entries (the cap on one listing, ` +
          '--max-history-entries); the listing is partial',
      );
    }
  };
  const walk = async (dir: string, name: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    count(entries.length);
    const tasks: Promise<void>[] = [];
    for (const e of entries) {
      // Symbolic links are never followed: a repository is a real folder in the storage.
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(RESERVED_PREFIX)) {
        if (e.name === '_manifests' && name !== '') {
          tasks.push(
            revisionsOf(join(dir, REVISIONS_PATH), count).then((r) => void repositories.set(name, r)),
          );
        }
        continue;
      }
      tasks.push(walk(join(dir, e.name), name === '' ? e.name : `${name}/${e.name}`));
    }
    await Promise.all(tasks);
  };
  try {
    await walk(top, '');
  } catch (err) {
    if (err instanceof HistoryError) throw err;
    throw new HistoryError(`listing untagged history in ${root} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return { source: root, repositories: new Map([...repositories].sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** A repository's revisions: `<hex>/link` files; a folder without its link is a deleted revision. */
async function revisionsOf(dir: string, count: (n: number) => void): Promise<Revision[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    // A repository with layers but no manifest yet (a push in progress) has no revisions folder.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  count(names.length);
  const out: Revision[] = [];
  let stated = 0;
  for (const hex of names.sort()) {
    if (!REVISION_HEX.test(hex)) continue;
    if (++stated % STATS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    // Gone since the readdir (deleted meanwhile): not a revision any more.
    const link = lstatSync(join(dir, hex, 'link'), { throwIfNoEntry: false });
    if (link?.isFile()) out.push({ digest: `sha256:${hex}`, pushedAt: link.mtime.toISOString() });
  }
  return out;
}
