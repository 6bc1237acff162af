// The job's steps as the workflow runs them (catalog, batches, an inventory per batch passed as JSON, one plan from
// the parts, apply per batch with its own re-read) against the single run (runJob) over the in-memory registry:
// the same plan and the same deletes, a missing or stopped batch makes the plan incomplete, and a retried apply
// batch deletes nothing more.
import { describe, expect, it } from 'vitest';
import { ManifestCompactor } from '../../lambda/core/compact.ts';
import { checkApplicable, refusal } from '../../lambda/core/executor.ts';
import { runJob } from '../../lambda/core/job.ts';
import type { Inventory, Plan } from '../../lambda/core/model.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import {
  applyStep,
  batchRepositories,
  changedRepositories,
  countTags,
  inventoryFromJson,
  inventoryStep,
  inventoryJsonPieces,
  listSelected,
  mergeInventories,
  mergeReports,
  planFor,
  planStep,
  verifyStep,
} from '../../lambda/core/steps.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

/** A part as the inventory step writes it to the bucket. */
const asText = (inventory: Inventory): string => [...inventoryJsonPieces(inventory)].join('');
const NOW = new Date('2026-03-01T00:00:00Z');
const day = (d: number): string => `2026-01-${String(d).padStart(2, '0')}T00:00:00Z`;
const POLICY = validatePolicy({
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['team*/**'], keep: { newest: 2 } },
  ],
});

/** Eight repositories that share a layer and one image pushed into two of them. */
function seeded(): MemoryRegistry {
  const registry = new MemoryRegistry({ tagDelete: false });
  registry.addImage('base/os', '12', { created: day(1), layers: [{ seed: 'os', size: 900 }] });
  for (const team of ['team1', 'team2']) {
    for (const app of ['api', 'web', 'worker']) {
      for (let n = 1; n <= 5; n += 1) {
        registry.addImage(`${team}/${app}`, `v${n}`, {
          created: day(n + (app === 'web' ? 10 : 0)),
          layers: [
            { seed: 'os', size: 900 },
            { seed: `${team}${app}${n}`, size: 100 },
          ],
        });
      }
    }
  }
  // The same bytes in two repositories of different batches: one stays in team1/api, goes in team2/api.
  registry.addImage('team1/api', 'shared', { created: day(28), layers: [{ seed: 'shared', size: 100 }] });
  registry.addImage('team2/api', 'shared', { created: day(2), layers: [{ seed: 'shared', size: 100 }] });
  return registry;
}

/** The workflow's path: batches, inventory parts through JSON, one plan. */
async function workflowPlan(
  registry: MemoryRegistry,
  options: { failBatch?: number; maxRepositories?: number } = {},
): Promise<{ plan: Plan; batches: string[][]; parts: Inventory[] }> {
  const selection = await listSelected(registry, undefined);
  const batches = batchRepositories(await countTags(registry, selection.names), {
    maxTags: 12,
    maxRepositories: options.maxRepositories ?? 3,
  });
  const parts: Inventory[] = [];
  const missing = [];
  for (const [i, names] of batches.entries()) {
    if (i === options.failBatch) {
      missing.push({ message: `inventory batch ${i} wrote no part` });
      continue;
    }
    const part = await inventoryStep(registry, { policy: POLICY, names });
    parts.push(inventoryFromJson(asText(part)));
  }
  const inventory = mergeInventories(registry.baseUrl, parts, missing);
  return { plan: planStep(inventory, POLICY, NOW, 0.9).plan, batches, parts };
}

const withoutDate = (p: Plan) => ({ ...p, generatedAt: '' });

describe('the steps as the workflow runs them', () => {
  it('batches by tags and repositories, never splitting one, in order', () => {
    const counts = [
      { name: 'a', tags: 5 },
      { name: 'b', tags: 5 },
      { name: 'c', tags: 30 },
      { name: 'd', tags: undefined },
      { name: 'e', tags: 1 },
    ];
    expect(batchRepositories(counts, { maxTags: 10, maxRepositories: 2 })).toEqual([
      ['a', 'b'],
      ['c'],
      ['d', 'e'],
    ]);
    expect(batchRepositories([], { maxTags: 10, maxRepositories: 2 })).toEqual([]);
  });

  it('reads a part back as the scan stored it: the same facts, layers shared across parts, no copies', async () => {
    const registry = seeded();
    const part = await inventoryStep(registry, { policy: POLICY, names: ['team1/api', 'team2/api'] });
    const back = inventoryFromJson(asText(part));
    expect(back).toEqual(part);
    // Two parts read with one compactor share the layer both repositories' images are built on.
    const compactor = new ManifestCompactor();
    const one = inventoryFromJson(
      asText(await inventoryStep(registry, { policy: POLICY, names: ['team1/api'] })),
      compactor,
    );
    const two = inventoryFromJson(
      asText(await inventoryStep(registry, { policy: POLICY, names: ['team2/api'] })),
      compactor,
    );
    const layerOf = (inv: Inventory, repo: string, tag: string) => {
      const digest = inv.repositories.find((r) => r.name === repo)!.tags.find((t) => t.tag === tag)!.digest;
      return inv.manifests.get(digest)!.layers[0]!;
    };
    expect(layerOf(one, 'team1/api', 'shared')).toBe(layerOf(two, 'team2/api', 'shared'));
    expect(() => inventoryFromJson('{"registry":"r"}')).toThrow(TypeError);
  });

  it('plans from batched parts exactly what one inventory plans', async () => {
    const registry = seeded();
    const { plan, batches } = await workflowPlan(registry);
    expect(batches.length).toBeGreaterThan(2);
    const single = await runJob({
      client: seeded(),
      policy: POLICY,
      now: NOW,
      dryRun: true,
      maxDeleteFraction: 0.9,
    });
    expect(withoutDate(plan)).toEqual(withoutDate(single.plan));
    expect(plan.complete).toBe(true);
    expect(plan.summary.tagsDeleted).toBeGreaterThan(0);
  });

  it('applies batch by batch, each re-read live, what the single run deletes, and a retry deletes nothing more', async () => {
    const registry = seeded();
    const { plan, batches } = await workflowPlan(registry);
    const reports = [];
    for (const names of batches) {
      const part = planFor(plan, names);
      const work = changedRepositories(part);
      const probe = work.length > 0 ? await registry.probe(work[0]!) : undefined;
      reports.push((await applyStep(registry, part, probe ? { probe } : {})).report);
    }
    const merged = mergeReports(registry.baseUrl, reports, NOW.toISOString());

    const other = seeded();
    const single = await runJob({
      client: other,
      policy: POLICY,
      now: NOW,
      dryRun: false,
      maxDeleteFraction: 0.9,
    });
    expect(merged.manifestsDeleted).toBe(single.report!.manifestsDeleted);
    expect(merged.tagsDeleted).toBe(single.report!.tagsDeleted);
    expect(merged.failures).toEqual([]);
    for (const repo of plan.repositories) {
      expect(Object.keys(registry.tagsOf(repo.name)).sort(), repo.name).toEqual(
        Object.keys(other.tagsOf(repo.name)).sort(),
      );
    }
    // The same bytes kept in team1/api and deleted from team2/api (batches of their own): each repository's own.
    expect(registry.tagsOf('team2/api')).not.toHaveProperty('shared');
    expect(await registry.headManifest('team1/api', 'shared')).not.toBeNull();

    // A retried batch (the invocation died after its deletes): the re-read sees the tags gone, so each repository
    // is skipped with the reason, and no DELETE is sent.
    const before = registry.callsOf('deleteManifest').length;
    const retried = planFor(plan, batches[1]!);
    const again = await applyStep(registry, retried, {});
    expect(again.report.skippedRepositories.map((s) => s.name)).toEqual(changedRepositories(retried));
    expect(again.report.skippedRepositories[0]!.reason).toMatch(/changed since planning/);
    expect(registry.callsOf('deleteManifest').length).toBe(before);

    // Verify, batch by batch, over each batch's part.
    for (const names of batches) {
      const v = await verifyStep(
        registry,
        planFor(plan, names),
        (await applyStep(registry, { ...plan, repositories: [] })).live,
        {
          repositories: names,
          attempts: 1,
        },
      );
      expect(v.status, names.join(',')).toBe('ok');
    }
  });

  it('a batch that wrote no part leaves the plan incomplete, and applying it is refused before any DELETE', async () => {
    const registry = seeded();
    const { plan } = await workflowPlan(registry, { failBatch: 1 });
    expect(plan.complete).toBe(false);
    expect(plan.errors).toContainEqual({ message: 'inventory batch 1 wrote no part' });
    expect(refusal(plan, checkApplicable(plan, 0.9))).toMatch(/^the plan is incomplete/);
  });

  it('a batch stopped near its time budget records what it did not read: the part is incomplete', async () => {
    const registry = seeded();
    const stop = new AbortController();
    stop.abort('the invocation was about to time out');
    const part = await inventoryStep(registry, {
      policy: POLICY,
      names: ['team1/api', 'team1/web'],
      signal: stop.signal,
    });
    expect(part.errors).toEqual([
      { repository: 'team1/api', message: 'not read: the invocation was about to time out' },
      { repository: 'team1/web', message: 'not read: the invocation was about to time out' },
    ]);
    expect(planStep(mergeInventories(registry.baseUrl, [part]), POLICY, NOW, 0.9).plan.complete).toBe(false);
  });

  it('the catalog that cannot be listed is an error to carry, not an empty registry', async () => {
    const registry = seeded();
    registry.listRepositories = () => Promise.reject(new Error('503 Service Unavailable'));
    const selection = await listSelected(registry, undefined);
    expect(selection).toEqual({ names: [], error: 'listing repositories failed: 503 Service Unavailable' });
  });
});
