// Properties of the planner over random inventories × random policies (test/support/planner-arbitraries.ts):
// nothing that stays, or that what stays reaches, is planned for deletion; the plan is deterministic; and applying
// it, then planning again with the same `now`, deletes nothing more. A few hundred cases here; `npm run
// test:properties` runs many more (PROPERTY_RUNS_SCALE).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { factsOf, liveConflicts } from '../../lambda/core/live-check.ts';
import type { Inventory, Plan } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { applyInMemory, arbPolicy, arbWorld, inventoryOf, NOW } from '../support/planner-arbitraries.ts';
import { deletedButStaying } from '../support/planner-oracle.ts';
import { propertyRuns } from '../support/properties.ts';

const runs = (n: number) => ({ numRuns: propertyRuns(n) });

/** The same inventory with every map and list in another order. */
function reordered(inv: Inventory): Inventory {
  return {
    ...inv,
    manifests: new Map([...inv.manifests].reverse()),
    repositories: inv.repositories.map((r) => ({ ...r })),
  };
}

const deletions = (p: Plan) =>
  p.repositories.flatMap((r) => [
    ...r.deleteManifests.map((m) => `${r.name}@${m.digest}`),
    ...r.deleteTags.map((t) => `${r.name}:${t.tag}`),
  ]);

describe('planner properties', () => {
  it('never plans to delete what stays or anything it reaches', () => {
    fc.assert(
      fc.property(arbWorld, arbPolicy, (world, policy) => {
        const inv = inventoryOf(world);
        const p = plan(inv, policy, NOW);
        expect(deletedButStaying(inv, p)).toEqual([]);
        // The live re-check agrees: a plan made from the registry as it is passes it.
        for (const r of p.repositories) {
          const repo = inv.repositories.find((x) => x.name === r.name)!;
          const tags = new Map<string, string | null>(repo.tags.map((t) => [t.tag, t.digest]));
          for (const t of repo.dangling ?? []) tags.set(t, null);
          expect([r.name, liveConflicts(r, tags, factsOf(inv)(r.name))]).toEqual([r.name, []]);
        }
      }),
      runs(300),
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(arbWorld, arbPolicy, (world, policy) => {
        const inv = inventoryOf(world);
        const first = JSON.stringify(plan(inv, policy, NOW));
        expect(JSON.stringify(plan(inv, policy, NOW))).toBe(first);
        expect(JSON.stringify(plan(reordered(inv), policy, NOW))).toBe(first);
      }),
      runs(200),
    );
  });

  it('deletes nothing more when planned again after being applied', () => {
    fc.assert(
      fc.property(arbWorld, arbPolicy, (world, policy) => {
        const first = plan(inventoryOf(world), policy, NOW);
        const again = plan(inventoryOf(applyInMemory(world, first)), policy, NOW);
        expect(deletions(again)).toEqual([]);
      }),
      runs(300),
    );
  });
});
