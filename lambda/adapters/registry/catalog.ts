// The listing endpoints: the catalog (/v2/_catalog) and tag lists (/v2/<name>/tags/list), following Link
// pagination against the base URL (REGISTRY-FACTS §1).
import { RegistryError } from '../../core/errors.ts';
import { jsonOf, registryError, unexpected } from './errors.ts';
import type { Endpoints } from './http.ts';
import { assertRepositoryName } from './reference.ts';
import { MAX_LIST_BYTES, type Answer } from './transport.ts';

const CATALOG_PAGE = 1000;

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

/** Next page from Link, as a path on our own origin (a proxy may put an internal host in absolute links). */
function nextPath(baseUrl: string, ans: Answer): string | undefined {
  const link = nextLink(ans.headers.link);
  if (link === undefined) return undefined;
  const url = new URL(link, baseUrl + '/');
  if (!url.pathname.startsWith('/v2/')) {
    throw new RegistryError(`${ans.url} sent a next-page Link outside /v2/: ${link}`, { url: ans.url });
  }
  return url.pathname + url.search;
}

function loopError(baseUrl: string, path: string): RegistryError {
  return new RegistryError(`the registry's pagination loops: it sent the next-page link ${path} twice`, {
    url: baseUrl + path,
  });
}

export async function listRepositories(ep: Endpoints): Promise<string[]> {
  const { http } = ep;
  const out: string[] = [];
  let path: string | undefined = `/v2/_catalog?n=${CATALOG_PAGE}`;
  let first = true;
  const seen = new Set<string>();
  while (path !== undefined) {
    if (seen.has(path)) throw loopError(http.baseUrl, path);
    seen.add(path);
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
    for (const name of repos ?? []) {
      assertRepositoryName(name);
      out.push(name);
    }
    path = nextPath(http.baseUrl, ans);
  }
  return out;
}

export async function listTags(ep: Endpoints, repository: string): Promise<string[]> {
  const { http } = ep;
  assertRepositoryName(repository);
  // No `n`: v3.1.0 answers 400 above tags.maxtags, and without it every version sends all tags.
  let path: string | undefined = `/v2/${repository}/tags/list`;
  const tags = new Set<string>();
  const seen = new Set<string>();
  while (path !== undefined) {
    if (seen.has(path)) throw loopError(http.baseUrl, path);
    seen.add(path);
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
    for (const tag of list ?? []) tags.add(tag);
    path = nextPath(http.baseUrl, ans);
  }
  // 2.8 serves tags unsorted; tags are ASCII, so the default (UTF-16) order is code-point order.
  return [...tags].sort();
}
