// A tag left pointing at a 2.8 placeholder by an interrupted run is removed by the next run, also under age
// rules: through the real scan (parser, compactor) of a real distribution 2.8 registry, with the placeholder
// written by the real executor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { RegistryClient } from '../../lambda/core/ports.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';

// Age criteria: an image of unknown age is kept, which is what kept the placeholder forever.
const policy = parsePolicy(
  `rules:
  - repositories: ["app/**"]
    keep:
      tags: ["keep"]
      youngerThanDays: 30
`,
  'policy.yaml',
);

async function tagsOf(url: string, repo: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/${repo}/tags/list`);
  const body = (await res.json()) as { tags: string[] | null };
  return (body.tags ?? []).sort();
}

async function manifestAt(
  url: string,
  repo: string,
  ref: string,
): Promise<{ status: number; digest: string | null }> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.oci.image.index.v1+json',
      ].join(', '),
    },
  });
  return { status: res.status, digest: res.headers.get('docker-content-digest') };
}

describe('a placeholder left by an interrupted tag removal on distribution 2.8', () => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;

  beforeAll(async () => {
    registry = await startLocalRegistry();
    client = createRegistryClient({ url: registry.url });
  });
  afterAll(async () => {
    await client?.close();
    await registry?.dispose();
  });

  const planNow = async (repo: string) =>
    makePlan(await scanRegistry(client, { policy, repositories: [repo] }), policy, new Date());

  it('is planned for removal by the next run, and removing it leaves the image', async () => {
    const repo = 'app/interrupted';
    const image = {
      created: '2020-01-01T00:00:00Z',
      layers: [{ seed: 'interrupted', size: 2048 }],
      label: 'i',
    };
    const pushed = await pushImage(registry, repo, 'keep', image);
    await pushImage(registry, repo, 'old-alias', image);

    const first = await planNow(repo);
    expect(first.repositories[0]!.deleteTags).toEqual([
      expect.objectContaining({ tag: 'old-alias', method: 'tag-only' }),
    ]);
    // The run stops after pointing the tag at its placeholder, before deleting it (killed, or its connection
    // dropped): the executor reports it and leaves the placeholder.
    const interrupted = Object.create(client) as RegistryClient;
    interrupted.deleteManifest = () => Promise.reject(new Error('socket hang up'));
    const report = await applyPlan(first, interrupted, { maxDeleteFraction: 1 });
    expect(report.failures).toEqual([
      expect.objectContaining({
        reference: 'old-alias',
        reason: expect.stringMatching(/placeholder .*next run/),
      }),
    ]);
    const left = await manifestAt(registry.url, repo, 'old-alias');
    expect(left.status).toBe(200);
    expect(left.digest).not.toBe(pushed.digest);

    const next = await planNow(repo);
    const rp = next.repositories[0]!;
    expect(next.complete).toBe(true);
    expect(rp.kept.map((t) => t.tag)).toEqual(['keep']);
    expect(rp.deleteTags).toEqual([
      expect.objectContaining({ tag: 'old-alias', digest: left.digest, method: 'manifest' }),
    ]);
    expect(rp.deleteManifests.map((m) => m.digest)).toEqual([left.digest]);
    expect(rp.warnings.join('\n')).toMatch(/placeholder left by an interrupted run .*old-alias/);

    const finish = await applyPlan(next, client, { maxDeleteFraction: 1 });
    expect(finish.failures).toEqual([]);
    expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
    expect((await manifestAt(registry.url, repo, pushed.digest)).status).toBe(200);
    expect((await planNow(repo)).summary.tagsDeleted).toBe(0);
  });
});
