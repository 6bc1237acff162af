// `--storage`: where untagged history is listed from, a filesystem storage root or the S3 driver's
// s3://bucket/rootdirectory, checked before anything is read from the registry.
import { resolve } from 'node:path';
import { assertStorageRoot, filesystemHistory } from '../adapters/history-fs.ts';
import { ConfigError } from '../core/errors.ts';
import type { HistorySource } from '../core/history.ts';

/**
 * @param maxEntries the most storage entries the listing may read (`--max-history-entries`; default
 *   DEFAULT_MAX_HISTORY_ENTRIES): its own cap, not the catalog's, and the same for both kinds of storage.
 */
export async function storageHistory(
  storage: string,
  env: NodeJS.ProcessEnv,
  maxEntries?: number,
): Promise<HistorySource> {
  if (/^s3:/i.test(storage)) {
    // The AWS SDK is loaded only for S3 storage: a plan without it starts that much sooner.
    const { assertS3StorageRoot, parseS3StorageUrl, s3ClientFromEnv, s3History } =
      await import('../adapters/history-s3.ts');
    const location = parseS3StorageUrl(storage);
    const client = s3ClientFromEnv(env);
    await assertS3StorageRoot(client, location);
    const history = s3History(client, location, maxEntries !== undefined ? { maxKeys: maxEntries } : {});
    // The CLI lists once per run; idle keep-alive sockets would otherwise hold the process open. The sweep's
    // lookups (one HeadObject right before each DELETE) close them once none came for a moment.
    let idle: NodeJS.Timeout | undefined;
    let inFlight = 0;
    const settle = (): void => {
      if (--inFlight === 0) idle = setTimeout(() => client.destroy(), 500).unref();
    };
    return {
      source: history.source,
      list: () => history.list().finally(() => client.destroy()),
      revisionTime: (repository, digest) => {
        clearTimeout(idle);
        inFlight += 1;
        return history.revisionTime!(repository, digest).finally(settle);
      },
    };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(storage)) {
    throw new ConfigError(
      `--storage ${storage}: give the registry's filesystem storage root (e.g. the host side of the ` +
        `container's /var/lib/registry volume) or its S3 storage as s3://bucket/rootdirectory`,
    );
  }
  const root = resolve(env.INIT_CWD ?? process.cwd(), storage);
  await assertStorageRoot(root);
  return filesystemHistory(root, maxEntries !== undefined ? { maxEntries } : {});
}
