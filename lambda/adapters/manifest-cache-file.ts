// The manifest cache kept in a local file (the CLI's). What it remembers (config `created` values) decides
// image ages, so it is believed only when nobody but its owner could have written it: the file 0600 in a
// folder 0700, both the user's; a file another user owns or anyone else can write is refused with a warning.
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream, type Stats } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  openStoredCache,
  UntrustedCacheError,
  type ManifestCacheOptions,
  type StoredManifestCache,
} from './manifest-cache-store.ts';

export interface FileCacheOptions extends ManifestCacheOptions {
  /** The user the file and its folder must belong to. @default process.getuid() (no check where there is none) */
  readonly uid?: number;
}

export interface FileManifestCache extends StoredManifestCache {
  readonly path: string;
}

/** Group or others may write. */
const WRITABLE_BY_OTHERS = 0o022;

const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');

/** Why a folder must not hold a trusted cache, or undefined. Root's folders are trusted (root could anyway). */
function folderProblem(folder: string, st: Stats, uid: number | undefined, what: string): string | undefined {
  if (!st.isDirectory()) return `${folder} is not a folder`;
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    return `its folder ${folder} belongs to user ${st.uid}, not to you (${uid}); keep the ${what} in a folder of your own`;
  }
  if ((st.mode & WRITABLE_BY_OTHERS) !== 0) {
    return (
      `its folder ${folder} can be written by others (mode ${octal(st.mode)}), who could replace it; ` +
      `run chmod 700 ${folder}, or keep the ${what} in a folder only you can write (e.g. ~/.cache/registry-janitor)`
    );
  }
  return undefined;
}

function fileProblem(path: string, st: Stats, uid: number | undefined): string | undefined {
  if (!st.isFile()) return `${path} is not a regular file`;
  if (uid !== undefined && st.uid !== uid) {
    return `it belongs to user ${st.uid}, not to you (${uid}); delete it, and this run writes a new one`;
  }
  if ((st.mode & WRITABLE_BY_OTHERS) !== 0) {
    return `it can be written by others (mode ${octal(st.mode)}); delete it, and this run writes a new one (0600)`;
  }
  return undefined;
}

/** Throws UntrustedCacheError unless `folder` is the user's (or root's) and only its owner may write it. */
export async function checkedFolder(folder: string, uid: number | undefined, what = 'cache'): Promise<void> {
  const problem = folderProblem(folder, await stat(folder), uid, what);
  if (problem) throw new UntrustedCacheError(problem);
}

/** The file for reading, refused unless only its owner (the user) could have written it and its folder. */
export async function openTrusted(path: string, uid: number | undefined, what = 'cache'): Promise<Readable> {
  await checkedFolder(dirname(path), uid, what);
  let handle;
  try {
    // No symlinks: the file checked must be the file read.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new UntrustedCacheError(`${path} is a symbolic link; give the path of the file itself`);
    }
    throw err;
  }
  const problem = fileProblem(path, await handle.stat(), uid);
  if (problem) {
    await handle.close();
    throw new UntrustedCacheError(problem);
  }
  return handle.createReadStream();
}

/**
 * Open the cache at `path`. A missing file starts an empty cache quietly; an untrusted, unreadable, corrupt or
 * other-version file starts an empty one with a warning. Never throws. Saving creates the folder 0700 if it is
 * missing, writes a 0600 temp file and renames it over the old one, so a reader sees the old cache or the new
 * one; it refuses a folder others can write.
 */
export async function openFileCache(
  path: string,
  options: FileCacheOptions = {},
): Promise<FileManifestCache> {
  const uid = options.uid ?? process.getuid?.();
  const cache = await openStoredCache(
    {
      where: path,
      open: () => openTrusted(path, uid),
      isMissing: (err) => (err as NodeJS.ErrnoException).code === 'ENOENT',
      write: async (store) => {
        const folder = dirname(path);
        await mkdir(folder, { recursive: true, mode: 0o700 });
        await checkedFolder(folder, uid);
        const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        try {
          await pipeline(store.encode(), createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
          await rename(temp, path);
        } catch (err) {
          await rm(temp, { force: true }).catch(() => undefined);
          throw err;
        }
      },
      writeHint: 'Check that the folder exists, is yours, and only you can write it.',
    },
    options,
  );
  return Object.assign(cache, { path });
}
