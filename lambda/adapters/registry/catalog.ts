// The listing endpoints: the catalog (/v2/_catalog) and tag lists (/v2/<name>/tags/list), following Link
// pagination against the base URL (REGISTRY-FACTS §1), within caps on pages and entries, and only forward.
import { RegistryError } from '../../core/errors.ts';
import { jsonOf, registryError, unexpected } from './errors.ts';
import type { Endpoints, ListLimits } from './http.ts';
import { assertRepositoryName } from './reference.ts';
import { MAX_LIST_BYTES, type Answer } from './transport.ts';

const CATALOG_PAGE = 1000;

/** Pages one listing may take: 10,000 catalog pages of 1,000 is ten million repositories. */
export const DEFAULT_MAX_LIST_PAGES = 10_000;
/** Entries one listing may hold (repositories in the catalog, or tags of one repository). */
export const DEFAULT_MAX_LIST_ENTRIES = 1_000_000;

/** `Link: <url>; rel="next"` → the URL, or undefined. */
export function nextLink(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const re = /<([^>]*)>((?:\s*;\s*[^;,]+)*)/g;
  for (let m = re.exec(header); m; m = re.exec(header)) {
    const params = m[2] ?? '';
    if (/;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(params)) return m[1];
  }
  return undefined;
}

/** Distribution's catalog order (lessPath): component-wise, so "/" sorts before every other character. */
function pageKey(last: string): string {
  return last.replaceAll('/', '\u0000');
}

/**
 * One listing's walk through its pages: each next page must be new, on our origin under /v2/, and move
 * `last` forward; the pages and the entries are capped, so a hostile registry cannot keep a run going forever.
 */
class Pages {
  private readonly seen = new Set<string>();
  private pages = 0;
  private entries = 0;

  public constructor(
    private readonly what: string,
    private readonly baseUrl: string,
    private readonly limits: ListLimits,
  ) {}

  /** Call before fetching `path`. */
  public visit(path: string): void {
    if (this.seen.has(path)) {
      throw new RegistryError(`the registry's pagination loops: it sent the next-page link ${path} twice`, {
        code: 'PAGINATION_LOOP',
        url: this.baseUrl + path,
      });
    }
    this.seen.add(path);
    if (++this.pages > this.limits.maxPages) {
      throw this.cap(
        `more than ${this.limits.maxPages} pages`,
        '--max-list-pages',
        'maxListPages',
        'MAX_LIST_PAGES',
      );
    }
  }

  /** Call with the number of entries a page brought. */
  public count(n: number): void {
    this.entries += n;
    if (this.entries > this.limits.maxEntries) {
      throw this.cap(
        `more than ${this.limits.maxEntries} entries`,
        '--max-list-entries',
        'maxListEntries',
        'MAX_LIST_ENTRIES',
      );
    }
  }

  /** The next page from Link, as a path on our own origin (a proxy may put an internal host in absolute links). */
  public next(ans: Answer, current: string): string | undefined {
    const link = nextLink(ans.headers.link);
    if (link === undefined) return undefined;
    const url = new URL(link, this.baseUrl + '/');
    if (!url.pathname.startsWith('/v2/')) {
      throw new RegistryError(`${ans.url} sent a next-page Link outside /v2/: ${link}`, { url: ans.url });
    }
    const path = url.pathname + url.search;
    const before = new URL(current, this.baseUrl).searchParams.get('last');
    const after = url.searchParams.get('last');
    if (before !== null && (after === null || pageKey(after) <= pageKey(before))) {
      throw new RegistryError(
        `the registry's pagination of ${this.what} does not advance: after last=${before} it sent the next-page ` +
          `link ${path}, which would list entries again (or forever); is a proxy rewriting Link headers?`,
        { code: 'PAGINATION_LOOP', url: ans.url },
      );
    }
    return path;
  }

  private cap(what: string, flag: string, option: string, env: string): RegistryError {
    return new RegistryError(
      `stopped listing ${this.what}: it runs to ${what}, so either the registry is that large or its pagination ` +
        `never ends. If it really is that large, raise the cap with ${flag} N (client option ${option}, ${env})`,
      { code: 'LIST_TOO_LONG', url: this.baseUrl },
    );
  }
}

export async function listRepositories(ep: Endpoints): Promise<string[]> {
  const { http } = ep;
  const out: string[] = [];
  let path: string | undefined = `/v2/_catalog?n=${CATALOG_PAGE}`;
  let first = true;
  const pages = new Pages(`the catalog of ${http.baseUrl}`, http.baseUrl, ep.limits);
  while (path !== undefined) {
    pages.visit(path);
    const ans = await http.call('catalog', 'GET', path, {
      scope: 'registry:catalog:*',
      accept: 'application/json',
      maxBytes: MAX_LIST_BYTES,
    });
    if (first && ans.status === 400 && registryError(ans)?.code === 'PAGINATION_NUMBER_INVALID') {
      // catalog.maxentries is below our page size: let the registry pick its own page size.
      first = false;
      path = '/v2/_catalog';
      continue;
    }
    first = false;
    if (ans.status === 404) {
      throw new RegistryError(
        `${ans.url} answered 404: the registry does not serve the catalog API. Point the janitor at the ` +
          'registry itself (not a proxy or mirror that hides /v2/_catalog)',
        { status: 404, code: registryError(ans)?.code, url: ans.url },
      );
    }
    if (ans.status !== 200) throw unexpected('GET', ans);
    const doc = jsonOf(ans) as { repositories?: unknown };
    const repos = doc.repositories ?? null;
    if (repos !== null && !(Array.isArray(repos) && repos.every((r) => typeof r === 'string'))) {
      throw new RegistryError(`${ans.url} answered a catalog whose "repositories" is not a list of names`, {
        status: ans.status,
        url: ans.url,
      });
    }
    pages.count(repos?.length ?? 0);
    for (const name of repos ?? []) {
      assertRepositoryName(name);
      out.push(name);
    }
    path = pages.next(ans, path);
  }
  return out;
}

export async function listTags(ep: Endpoints, repository: string): Promise<string[]> {
  const { http } = ep;
  assertRepositoryName(repository);
  // No `n`: v3.1.0 answers 400 above tags.maxtags, and without it every version sends all tags.
  let path: string | undefined = `/v2/${repository}/tags/list`;
  const tags = new Set<string>();
  const pages = new Pages(`the tags of ${repository}`, http.baseUrl, ep.limits);
  while (path !== undefined) {
    pages.visit(path);
    const ans = await http.call('tags', 'GET', path, {
      scope: ep.scopeFor(repository, 'pull'),
      accept: 'application/json',
      maxBytes: MAX_LIST_BYTES,
    });
    if (ans.status === 404 && registryError(ans)?.code === 'NAME_UNKNOWN') break;
    if (ans.status !== 200) throw unexpected('GET', ans);
    const doc = jsonOf(ans) as { tags?: unknown };
    const list = doc.tags ?? null;
    if (list !== null && !(Array.isArray(list) && list.every((t) => typeof t === 'string'))) {
      throw new RegistryError(`${ans.url} answered a tag list whose "tags" is not a list of names`, {
        status: ans.status,
        url: ans.url,
      });
    }
    pages.count(list?.length ?? 0);
    for (const tag of list ?? []) tags.add(tag);
    path = pages.next(ans, path);
  }
  // 2.8 serves tags unsorted; tags are ASCII, so the default (UTF-16) order is code-point order.
  return [...tags].sort();
}
