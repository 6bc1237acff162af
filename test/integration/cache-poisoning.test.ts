// A manifest cache can save reads but never change a plan: the two poisonings that once deleted kept images,
// reproduced on a real distribution 2.8 registry through the real scanner, file cache and executor (what
// `registry-janitor apply --cache FILE` runs). The cache file is edited as text, whatever its format.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileCache } from '../../lambda/adapters/manifest-cache-file.ts';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy, type Policy } from '../../lambda/core/policy.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, pushIndex, type Descriptor } from '../../lambda/demo/seed.ts';

const NOW = new Date('2026-03-15T00:00:00Z');

async function status(url: string, repo: string, ref: string): Promise<number> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.oci.image.index.v1+json',
      ].join(', '),
    },
  });
  return res.status;
}

/** Rewrite every entry line of a cache file (gzip'd JSON lines after a header), keeping its mode. */
function rewriteEntries(path: string, edit: (entry: unknown[]) => unknown[]): void {
  const [header, ...lines] = gunzipSync(readFileSync(path)).toString().trim().split('\n');
  const edited = lines.map((l) => JSON.stringify(edit(JSON.parse(l) as unknown[])));
  writeFileSync(path, gzipSync([header, ...edited].join('\n') + '\n'));
}

describe('a poisoned manifest cache changes no plan', () => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;
  let dir: string;

  beforeAll(async () => {
    registry = await startLocalRegistry();
    client = createRegistryClient({ url: registry.url });
    dir = mkdtempSync(join(tmpdir(), 'rj-poison-'));
  });
  afterAll(async () => {
    await client?.close();
    await registry?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** `plan` (and `apply`) with `--cache path`, or without a cache. */
  async function planWith(policy: Policy, repo: string, cachePath?: string): Promise<Plan> {
    const cache =
      cachePath === undefined ? undefined : await openFileCache(cachePath, { warn: () => undefined });
    const inventory = await scanRegistry(client, {
      policy,
      repositories: [repo],
      ...(cache ? { cache } : {}),
    });
    await cache?.save();
    return makePlan(inventory, policy, NOW);
  }

  it('the newest image’s cached `created` set to 2015 in a cache others can write: it is not deleted', async () => {
    const repo = 'app/web';
    const policy = parsePolicy(`rules:\n  - repositories: ["app/**"]\n    keep: { newest: 2 }\n`);
    const image = (created: string, label: string) => ({
      created,
      layers: [{ seed: `web-${label}`, size: 1024 }],
      label,
    });
    const v1 = await pushImage(registry, repo, 'v1', image('2026-01-01T00:00:00Z', 'v1'));
    await pushImage(registry, repo, 'v2', image('2026-02-01T00:00:00Z', 'v2'));
    const v3 = await pushImage(registry, repo, 'v3', image('2026-03-01T00:00:00Z', 'v3'));
    const path = join(dir, 'web', 'cache.gz');
    await planWith(policy, repo, path);

    // Someone else who may write the file rewrites the newest image's age.
    chmodSync(path, 0o666);
    const text = gunzipSync(readFileSync(path)).toString();
    expect(text).toContain('2026-03-01T00:00:00Z');
    writeFileSync(path, gzipSync(text.replaceAll('2026-03-01T00:00:00Z', '2015-01-01T00:00:00Z')));

    const reference = await planWith(policy, repo);
    const poisoned = await planWith(policy, repo, path);
    expect(poisoned.repositories[0]!.deleteManifests.map((m) => m.digest)).toEqual([v1.digest]);
    expect(JSON.stringify(poisoned)).toBe(JSON.stringify(reference));
    const report = await applyPlan(poisoned, client, { maxDeleteFraction: 1 });
    expect(report.failures).toEqual([]);
    expect(await status(registry.url, repo, v3.digest)).toBe(200);
    expect(await status(registry.url, repo, 'v3')).toBe(200);
    expect(await status(registry.url, repo, v1.digest)).toBe(404);
  });

  it('an index’s cached children redirected in the user’s own cache: its untagged child is not deleted', async () => {
    const repo = 'app/multi';
    const policy = parsePolicy(`rules:\n  - repositories: ["app/**"]\n    keep: { tags: ["keep"] }\n`);
    const platform = async (arch: string): Promise<Descriptor> => {
      const img = await pushImage(registry, repo, null, {
        created: '2026-01-01T00:00:00Z',
        layers: [{ seed: `multi-${arch}`, size: 1024 }],
        architecture: arch,
        label: `multi-${arch}`,
      });
      return {
        mediaType: img.mediaType,
        digest: img.digest,
        size: img.size,
        platform: { architecture: arch, os: 'linux' },
      };
    };
    const shared = await platform('amd64');
    const arm = await platform('arm64');
    const kept = await pushIndex(registry, repo, 'keep', [shared, arm]);
    const old = await pushIndex(registry, repo, 'old', [shared]);
    const path = join(dir, 'multi', 'cache.gz');
    const before = await planWith(policy, repo, path);
    expect(before.repositories[0]!.deleteManifests.map((m) => m.digest)).toEqual([old.digest]);

    // The kept index's entry, wherever the cache keeps one, no longer lists the shared child.
    rewriteEntries(path, (entry) =>
      entry.map((value) => {
        const info = value as { digest?: unknown; children?: { digest: string }[] };
        return info?.digest === kept.digest && Array.isArray(info.children)
          ? { ...info, children: info.children.filter((c) => c.digest !== shared.digest) }
          : value;
      }),
    );

    const reference = await planWith(policy, repo);
    const poisoned = await planWith(policy, repo, path);
    expect(poisoned.repositories[0]!.deleteManifests.map((m) => m.digest)).toEqual([old.digest]);
    expect(JSON.stringify(poisoned)).toBe(JSON.stringify(reference));
    const report = await applyPlan(poisoned, client, { maxDeleteFraction: 1 });
    expect(report.failures).toEqual([]);
    expect(await status(registry.url, repo, shared.digest)).toBe(200);
    expect(await status(registry.url, repo, 'keep')).toBe(200);
    expect(await status(registry.url, repo, old.digest)).toBe(404);
  });
});
