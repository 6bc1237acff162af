// Lists untagged history from a filesystem registry's storage (the folder `storage.filesystem.rootdirectory`
// names, e.g. the host side of the container's /var/lib/registry volume): every revision link and its mtime,
// which is when that manifest was last pushed into that repository. Read-only; the registry keeps running.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { ConfigError, HistoryError, errorMessage } from '../core/errors.ts';
import {
  REPOSITORIES_PATH,
  RESERVED_PREFIX,
  REVISION_HEX,
  REVISIONS_PATH,
  type HistoryListing,
  type HistorySource,
} from '../core/history.ts';
import type { Revision } from '../core/model.ts';

/** lstat calls in flight: enough to hide disk latency, few enough not to exhaust file descriptors. */
const STATS_IN_FLIGHT = 64;

export function filesystemHistory(root: string): HistorySource {
  return { source: root, list: () => listFilesystemHistory(root) };
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

export async function listFilesystemHistory(root: string): Promise<HistoryListing> {
  await assertStorageRoot(root);
  const top = join(root, REPOSITORIES_PATH);
  const limit = pLimit(STATS_IN_FLIGHT);
  const repositories = new Map<string, readonly Revision[]>();
  const walk = async (dir: string, name: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    const tasks: Promise<void>[] = [];
    for (const e of entries) {
      // Symbolic links are never followed: a repository is a real folder in the storage.
      if (!e.isDirectory()) continue;
      if (e.name.startsWith(RESERVED_PREFIX)) {
        if (e.name === '_manifests' && name !== '') {
          tasks.push(
            revisionsOf(join(dir, REVISIONS_PATH), limit).then((r) => void repositories.set(name, r)),
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
    throw new HistoryError(`listing untagged history in ${root} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return { source: root, repositories: new Map([...repositories].sort(([a], [b]) => (a < b ? -1 : 1))) };
}

/** A repository's revisions: `<hex>/link` files; a folder without its link is a deleted revision. */
async function revisionsOf(dir: string, limit: ReturnType<typeof pLimit>): Promise<Revision[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    // A repository with layers but no manifest yet (a push in progress) has no revisions folder.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Revision[] = [];
  await Promise.all(
    names
      .filter((n) => REVISION_HEX.test(n))
      .map((hex) =>
        limit(async () => {
          const link = await lstat(join(dir, hex, 'link')).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return undefined;
            throw err;
          });
          if (link?.isFile()) out.push({ digest: `sha256:${hex}`, pushedAt: link.mtime.toISOString() });
        }),
      ),
  );
  return out.sort((a, b) => (a.digest < b.digest ? -1 : 1));
}
