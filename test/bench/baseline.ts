// The bar the planner is measured against: a minimal client that issues exactly the requests an age-ordered
// plan needs (catalog pages, tag lists, one manifest read per tag, one read per index child per repository,
// one config read per distinct config) and the bare DELETEs of a plan, over one keep-alive undici Pool.
// It checks nothing, retries nothing and authenticates nowhere: that is what makes it the bar.
import { Pool } from 'undici';

const ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface BaselineCounts {
  catalog: number;
  tags: number;
  manifestGet: number;
  blobGet: number;
  delete: number;
}

interface Answer {
  status: number;
  link: string | undefined;
  body: Buffer;
}

class MinimalClient {
  public readonly counts: BaselineCounts = { catalog: 0, tags: 0, manifestGet: 0, blobGet: 0, delete: 0 };
  private readonly pool: Pool;

  public constructor(url: string, connections: number) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  public async send(
    kind: keyof BaselineCounts,
    method: 'GET' | 'DELETE',
    path: string,
    accept?: string,
  ): Promise<Answer> {
    this.counts[kind]++;
    const res = await this.pool.request({ method, path, headers: accept ? { accept } : {} });
    const body = Buffer.from(await res.body.arrayBuffer());
    const link = res.headers.link;
    return { status: res.statusCode, link: typeof link === 'string' ? link : undefined, body };
  }

  public async close(): Promise<void> {
    await this.pool.close();
  }
}

function json(ans: Answer, what: string): Record<string, unknown> {
  if (ans.status !== 200)
    throw new Error(`${what} answered ${ans.status}: ${ans.body.toString().slice(0, 200)}`);
  return JSON.parse(ans.body.toString('utf8')) as Record<string, unknown>;
}

/** Read what an age-ordered plan needs and pick the newest `keep` images of every repository. */
export async function baselinePlan(
  url: string,
  connections: number,
  keep: number,
): Promise<{ counts: BaselineCounts; tags: number; repositories: number; deletable: number }> {
  const client = new MinimalClient(url, connections);
  const configs = new Map<string, Promise<number>>();
  const created = (repo: string, digest: string): Promise<number> => {
    let read = configs.get(digest);
    if (!read) {
      read = client
        .send('blobGet', 'GET', `/v2/${repo}/blobs/${digest}`)
        .then((ans) => Date.parse(String(json(ans, `config ${digest}`).created)));
      configs.set(digest, read);
    }
    return read;
  };
  try {
    const repos: string[] = [];
    for (let path: string | undefined = '/v2/_catalog?n=1000'; path !== undefined;) {
      const ans = await client.send('catalog', 'GET', path);
      repos.push(...((json(ans, 'catalog').repositories as string[] | null) ?? []));
      path = /<([^>]+)>/.exec(ans.link ?? '')?.[1];
    }
    let tags = 0;
    let deletable = 0;
    await Promise.all(
      repos.map(async (repo) => {
        const list = (json(await client.send('tags', 'GET', `/v2/${repo}/tags/list`), 'tags').tags ??
          []) as string[];
        tags += list.length;
        const children = new Map<string, Promise<number>>();
        const ageOf = async (ans: Answer): Promise<number> => {
          const doc = json(ans, 'manifest') as {
            config?: { digest: string };
            manifests?: { digest: string }[];
          };
          if (doc.config) return created(repo, doc.config.digest);
          const ages = await Promise.all(
            (doc.manifests ?? []).map((m) => {
              let age = children.get(m.digest);
              if (!age) {
                age = client
                  .send('manifestGet', 'GET', `/v2/${repo}/manifests/${m.digest}`, ACCEPT)
                  .then(ageOf);
                children.set(m.digest, age);
              }
              return age;
            }),
          );
          return Math.max(...ages);
        };
        const ages = await Promise.all(
          list.map(async (tag) =>
            ageOf(await client.send('manifestGet', 'GET', `/v2/${repo}/manifests/${tag}`, ACCEPT)),
          ),
        );
        const order = [...new Set(ages)].sort((a, b) => b - a);
        const threshold = order[Math.min(keep, order.length) - 1] ?? -Infinity;
        deletable += ages.filter((a) => a < threshold).length;
      }),
    );
    return { counts: client.counts, tags, repositories: repos.length, deletable };
  } finally {
    await client.close();
  }
}

/** DELETE the given manifests, repositories concurrently and each repository's levels in order. */
export async function baselineDelete(
  url: string,
  connections: number,
  work: readonly { repository: string; levels: readonly (readonly string[])[] }[],
): Promise<{ counts: BaselineCounts; deleted: number }> {
  const client = new MinimalClient(url, connections);
  let deleted = 0;
  try {
    await Promise.all(
      work.map(async ({ repository, levels }) => {
        for (const level of levels) {
          await Promise.all(
            level.map(async (digest) => {
              const ans = await client.send('delete', 'DELETE', `/v2/${repository}/manifests/${digest}`);
              if (ans.status !== 202)
                throw new Error(`DELETE ${repository}@${digest} answered ${ans.status}`);
              deleted++;
            }),
          );
        }
      }),
    );
    return { counts: client.counts, deleted };
  } finally {
    await client.close();
  }
}
