// The journal kept in a local file (the CLI's), beside the manifest cache or where --journal says. It is held to
// the cache's rules (the user's own file, 0600, in a folder only the user can write; no symbolic link), since
// without a storage listing an untagged manifest it names cannot be told from garbage; and it is replaced whole
// (a temp file renamed over it), so a reader sees the old journal or the new one.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import { decodeJournal, encodeJournal, type JournalEntry, type JournalStore } from '../core/journal.ts';
import { checkedFolder, openTrusted } from './manifest-cache-file.ts';
import { UntrustedCacheError } from './manifest-cache-store.ts';

export interface FileJournalOptions {
  /** The registry the entries are for: a journal for another one is not used. */
  readonly registry: string;
  /** Told about a journal that cannot be used (the run goes on as without one). */
  readonly warn: (message: string) => void;
  /** The user the file and its folder must belong to. @default process.getuid() */
  readonly uid?: number;
}

/** The journal beside a cache file: `<cache>.journal.json`. */
export function journalBesideCache(cachePath: string): string {
  return `${cachePath}.journal.json`;
}

/**
 * Where the CLI keeps the journal when neither --journal nor --cache names a place: one file per registry host
 * under the user's state folder ($XDG_STATE_HOME, else ~/.local/state). Undefined when the environment names
 * neither (then there is no journal unless a flag gives one).
 */
export function defaultJournalPath(
  registryUrl: string,
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const state = env.XDG_STATE_HOME || (env.HOME ? join(env.HOME, '.local', 'state') : undefined);
  if (state === undefined) return undefined;
  const host = new URL(registryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_');
  return join(state, 'registry-janitor', `journal-${host}.json`);
}

export function fileJournal(path: string, options: FileJournalOptions): JournalStore {
  const uid = options.uid ?? process.getuid?.();
  return {
    where: path,
    async load() {
      let text: string;
      try {
        const stream = await openTrusted(path, uid, 'journal');
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
        text = Buffer.concat(chunks).toString('utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        options.warn(
          err instanceof UntrustedCacheError
            ? `journal ${path} is not used: ${err.message}. Leftovers of an interrupted run it names are not finished this run`
            : `journal ${path} could not be read (${errorMessage(err)}); leftovers of an interrupted run it names are not finished this run`,
        );
        return [];
      }
      const decoded = decodeJournal(text, options.registry);
      if (decoded.problem !== undefined) {
        options.warn(`journal ${path} is not used: ${decoded.problem}`);
        return [];
      }
      if (decoded.rejected > 0) {
        options.warn(
          `journal ${path}: ${decoded.rejected} malformed entr${decoded.rejected === 1 ? 'y was' : 'ies were'} ignored`,
        );
      }
      return decoded.entries;
    },
    async save(entries: readonly JournalEntry[]) {
      const folder = dirname(path);
      await mkdir(folder, { recursive: true, mode: 0o700 });
      await checkedFolder(folder, uid, 'journal');
      const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        await writeFile(temp, encodeJournal(options.registry, entries), { flag: 'wx', mode: 0o600 });
        await rename(temp, path);
      } catch (err) {
        await rm(temp, { force: true }).catch(() => undefined);
        throw err;
      }
    },
  };
}
