// The engine against a real distribution registry: plan, guard, apply, garbage-collect, restart, verify.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { SafetyError } from '../../lambda/core/errors.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { verifyKept } from '../../lambda/core/verify.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { SCENARIO_POLICY, seedScenario, type Scenario } from '../../lambda/demo/scenario.ts';
import { pushImage } from '../../lambda/demo/seed.ts';

const policy = parsePolicy(SCENARIO_POLICY, 'scenario-policy.yaml');

async function tagsOf(url: string, repo: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  const body = (await res.json()) as { tags: string[] | null };
  return (body.tags ?? []).sort();
}

async function snapshot(url: string, repos: string[]): Promise<Record<string, string[]>> {
  return Object.fromEntries(await Promise.all(repos.map(async (r) => [r, await tagsOf(url, r)] as const)));
}

async function planFor(client: RegistryHttpClient): Promise<Plan> {
  return makePlan(await scanRegistry(client, { policy }), policy, new Date());
}

describeEachRegistry('the engine', ({ kind }) => {
  describe('plan and apply on a real registry', () => {
    let registry: LocalRegistry;
    let scenario: Scenario;
    let client: RegistryHttpClient;
    let thePlan: Plan;
    let diskBefore: number;
    const repos = ['legacy/tool', 'misc/untouched', 'team1/api', 'team1/web', 'team2/many', 'team2/repro'];

    beforeAll(async () => {
      registry = await startRegistry(kind);
      scenario = await seedScenario(registry, { manyTags: 260 });
      client = createRegistryClient({ url: registry.url });
      thePlan = await planFor(client);
      diskBefore = registry.diskUsage();
    });
    afterAll(async () => {
      await client?.close();
      await registry?.dispose();
    });

    it('plans exactly the scenario: what stays, what goes', () => {
      expect(thePlan.complete).toBe(true);
      for (const repo of thePlan.repositories) {
        expect([repo.name, repo.kept.map((k) => k.tag).sort()]).toEqual([
          repo.name,
          (scenario.kept[repo.name] ?? []).sort(),
        ]);
        expect([repo.name, repo.deleteTags.map((t) => t.tag).sort()]).toEqual([
          repo.name,
          (scenario.deleted[repo.name] ?? []).sort(),
        ]);
        expect([repo.name, repo.deleteManifests.map((m) => m.digest).sort()]).toEqual([
          repo.name,
          (scenario.deletedDigests[repo.name] ?? []).sort(),
        ]);
      }
      expect(thePlan.repositories.map((r) => r.name)).toEqual(repos);
    });

    it('follows pagination over a repository with more than 250 tags', () => {
      const many = thePlan.repositories.find((r) => r.name === 'team2/many')!;
      expect(many.kept.length + many.deleteTags.length).toBe(273);
    });

    it('keeps the 1970-stamped image and says why', () => {
      const repro = thePlan.repositories.find((r) => r.name === 'team2/repro')!;
      expect(repro.kept.find((k) => k.tag === 'repro')?.reasons).toEqual(['unknown-age']);
      expect(
        thePlan.warnings.some(
          (w) => w.repository === 'team2/repro' && /no usable creation time/.test(w.message),
        ),
      ).toBe(true);
    });

    it('removes tags that share a kept digest as tags only', () => {
      const api = thePlan.repositories.find((r) => r.name === 'team1/api')!;
      const tagOnly = api.deleteTags
        .filter((t) => t.method === 'tag-only')
        .map((t) => t.tag)
        .sort();
      expect(tagOnly).toEqual(['build-1', 'build-2', 'candidate']);
      const web = thePlan.repositories.find((r) => r.name === 'team1/web')!;
      expect(web.deleteTags.find((t) => t.tag === '2.0-amd64')?.method).toBe('tag-only');
    });

    it('refuses to apply past the delete guard, and deletes nothing', async () => {
      expect(thePlan.summary.deleteFraction).toBeGreaterThan(0.5);
      const before = await snapshot(registry.url, repos);
      await expect(applyPlan(thePlan, client)).rejects.toThrow(SafetyError);
      await expect(applyPlan(thePlan, client)).rejects.toThrow(/more than the guard allows \(50\.0%\)/);
      expect(await snapshot(registry.url, repos)).toEqual(before);
    });

    it('applies, garbage-collects, and every kept image survives a restart while deleted ones are gone', async () => {
      const report = await applyPlan(thePlan, client, { maxDeleteFraction: 0.9 });
      expect(report.failures).toEqual([]);
      expect(report.skippedRepositories).toEqual([]);
      expect(report.tagsDeleted).toBe(thePlan.summary.tagsDeleted);
      expect(report.manifestsDeleted).toBe(thePlan.summary.manifestsDeleted);

      for (const repo of repos)
        expect([repo, await tagsOf(registry.url, repo)]).toEqual([repo, (scenario.kept[repo] ?? []).sort()]);

      await registry.stop();
      const gcOutput = registry.garbageCollect();
      expect(gcOutput).toMatch(/\d+ blobs marked, \d+ blobs and \d+ manifests eligible for deletion/);
      await registry.start();

      const inventory = await scanRegistry(client, { policy });
      const verify = await verifyKept(thePlan, inventory, client);
      expect(verify.problems).toEqual([]);
      expect(verify.tagsChecked).toBe(thePlan.summary.tagsKept);
      expect(verify.blobsChecked).toBeGreaterThan(20);

      for (const [repo, digests] of Object.entries(scenario.deletedDigests)) {
        for (const d of digests)
          expect([repo, d, await client.headManifest(repo, d)]).toEqual([repo, d, null]);
      }
      for (const [repo, layers] of Object.entries(scenario.freedLayers)) {
        for (const l of layers) expect([repo, l, await client.headBlob(repo, l)]).toEqual([repo, l, false]);
      }
      expect(registry.diskUsage()).toBeLessThan(diskBefore);
    });
  });

  describe('re-check before deleting', () => {
    it('skips a repository that changed after planning and still cleans the others', async () => {
      const registry = await startRegistry(kind);
      const client = createRegistryClient({ url: registry.url });
      try {
        const scenario = await seedScenario(registry);
        const thePlan = await planFor(client);
        await pushImage(registry, 'team1/api', 'pushed-meanwhile', {
          created: new Date().toISOString(),
          layers: [{ seed: 'late', size: 100 }],
        });
        const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1 });
        expect(report.skippedRepositories).toEqual([
          {
            name: 'team1/api',
            reason: expect.stringMatching(/changed since planning \(new tags pushed-meanwhile\)/),
          },
        ]);
        expect(await tagsOf(registry.url, 'team1/api')).toEqual(
          [...scenario.kept['team1/api']!, ...scenario.deleted['team1/api']!, 'pushed-meanwhile'].sort(),
        );
        expect(await tagsOf(registry.url, 'team2/repro')).toEqual(scenario.kept['team2/repro']!.sort());
      } finally {
        await client.close();
        await registry.dispose();
      }
    });

    it('skips a repository whose kept tag was moved after planning', async () => {
      const registry = await startRegistry(kind);
      const client = createRegistryClient({ url: registry.url });
      try {
        await seedScenario(registry);
        const thePlan = await planFor(client);
        await pushImage(registry, 'team2/repro', 'new', {
          created: new Date().toISOString(),
          layers: [{ seed: 'moved', size: 100 }],
        });
        const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1 });
        expect(report.skippedRepositories.map((s) => [s.name, s.reason])).toEqual([
          ['team2/repro', expect.stringMatching(/tag new now points elsewhere/)],
        ]);
        expect(await tagsOf(registry.url, 'team2/repro')).toContain('old-2');
      } finally {
        await client.close();
        await registry.dispose();
      }
    });
  });

  describe('faults and refusals change nothing', () => {
    let registry: LocalRegistry;
    const repos = ['legacy/tool', 'misc/untouched', 'team1/api', 'team1/web', 'team2/repro'];
    beforeAll(async () => {
      registry = await startRegistry(kind);
      await seedScenario(registry);
    });
    afterAll(async () => {
      await registry?.dispose();
    });

    it('a manifest read that keeps failing makes the plan incomplete; apply refuses and deletes nothing', async () => {
      const proxy = await startFaultProxy(registry.url);
      const client = createRegistryClient({ url: proxy.url, retries: 2, sleep: async () => {} });
      try {
        proxy.fail(/^GET \/v2\/team1\/api\/manifests\/build-3$/, { status: 503 });
        const thePlan = await planFor(client);
        expect(thePlan.complete).toBe(false);
        expect(thePlan.errors).toEqual([
          expect.objectContaining({ repository: 'team1/api', reference: 'build-3' }),
        ]);
        const before = await snapshot(registry.url, repos);
        await expect(applyPlan(thePlan, client, { maxDeleteFraction: 1 })).rejects.toThrow(
          /the plan is incomplete: 1 read failed/,
        );
        expect(proxy.seen.filter((s) => s.startsWith('DELETE'))).toEqual([]);
        expect(await snapshot(registry.url, repos)).toEqual(before);
      } finally {
        await client.close();
        await proxy.close();
      }
    });

    it('transient faults (503, dropped connections) are retried and the plan completes', async () => {
      const proxy = await startFaultProxy(registry.url);
      const client = createRegistryClient({ url: proxy.url, retries: 4, sleep: async () => {} });
      try {
        proxy.fail(/^GET \/v2\/team1\/api\/manifests\/build-3$/, { status: 503, times: 2 });
        proxy.fail(/^GET \/v2\/team2\/repro\/tags\/list/, { reset: true, times: 1 });
        proxy.fail(/^GET \/v2\/_catalog/, { status: 429, times: 1 });
        const thePlan = await planFor(client);
        expect(thePlan.errors).toEqual([]);
        expect(thePlan.complete).toBe(true);
      } finally {
        await client.close();
        await proxy.close();
      }
    });

    it.each([
      [
        'delete disabled',
        { deleteEnabled: false },
        /storage\.delete\.enabled: true.*REGISTRY_STORAGE_DELETE_ENABLED=true/s,
      ],
      ['read-only', { readOnly: true }, /read-only/],
    ])('a registry with %s: apply refuses with the fix, nothing deleted', async (_n, config, message) => {
      const locked = await startRegistry(kind, { ...config, storageDir: registry.storageDir });
      await registry.stop();
      const client = createRegistryClient({ url: locked.url });
      try {
        const thePlan = await planFor(client);
        expect(thePlan.complete).toBe(true);
        const before = await snapshot(locked.url, repos);
        await expect(applyPlan(thePlan, client, { maxDeleteFraction: 1 })).rejects.toThrow(message);
        expect(await snapshot(locked.url, repos)).toEqual(before);
      } finally {
        await client.close();
        await locked.dispose();
        await registry.start();
      }
    });
  });
});
