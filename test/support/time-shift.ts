// Makes a day pass without waiting one: every push time a storage listing reads (the revision links' mtimes) and
// every time a journal recorded are moved the same amount into the past, so their order (pushed before or after
// being untagged) stays what it was and only "now" moves on.
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Every revision link under a filesystem storage root (`<root>/docker/registry/v2/repositories/…`). */
function revisionLinks(storageRoot: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const path = join(dir, e.name);
      if (e.name === '_manifests') {
        const revisions = join(dir, REVISIONS_PATH);
        if (!existsSync(revisions)) continue;
        for (const hex of readdirSync(revisions)) {
          const link = join(revisions, hex, 'link');
          if (existsSync(link)) out.push(link);
        }
      } else if (!e.name.startsWith('_')) walk(path);
    }
  };
  const root = join(storageRoot, REPOSITORIES_PATH);
  if (existsSync(root)) walk(root);
  return out;
}

/** Move every revision link's mtime `ms` into the past. Returns how many it moved. */
export function shiftStorage(storageRoot: string, ms: number): number {
  const links = revisionLinks(storageRoot);
  for (const link of links) {
    const { atime, mtime } = statSync(link);
    utimesSync(link, atime, new Date(mtime.getTime() - ms));
  }
  return links.length;
}

/** Every ISO 8601 time in a JSON document, `ms` earlier. */
export function shiftTimes(text: string, ms: number): string {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string' && ISO.test(v)) return new Date(Date.parse(v) - ms).toISOString();
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return JSON.stringify(walk(JSON.parse(text))) + '\n';
}

/** The same for a JSON file, in place, keeping its mode (a CLI journal must stay 0600). Missing files are left. */
export function shiftJsonFile(path: string, ms: number): void {
  if (!existsSync(path)) return;
  const mode = statSync(path).mode & 0o777;
  writeFileSync(path, shiftTimes(readFileSync(path, 'utf8'), ms), { mode });
}
