// The live re-check's verdict (core/live-check.ts), one row per way a plan can reach what stays: plans made by the
// planner pass; plans edited to delete what stays are refused with the digest and what holds it.
import { describe, expect, it } from 'vitest';
import { factsOf, liveConflicts } from '../../lambda/core/live-check.ts';
import type { Inventory, ManifestDeletion, RepositoryPlan } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { art, dg, idx, img, inventory, referrerTag } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const OLD = '2025-01-01T00:00:00Z';
const NEW = '2026-11-27T00:00:00Z';
const policy = parsePolicy(
  'rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n    untagged: { deleteAfterDays: 7 }\n',
  'test',
);

/** The repository's plan, its tags as the registry lists them, and what the run read. */
function check(inv: Inventory, edit: (r: RepositoryPlan) => RepositoryPlan = (r) => r): string[] {
  const repo = plan(inv, policy, NOW).repositories[0]!;
  const tags = new Map(inv.repositories[0]!.tags.map((t) => [t.tag, t.digest] as [string, string | null]));
  return liveConflicts(edit(repo), tags, factsOf(inv)(repo.name));
}
const deleting =
  (id: string, role: ManifestDeletion['role'] = 'root') =>
  (r: RepositoryPlan) => ({
    ...r,
    deleteManifests: [
      ...r.deleteManifests,
      { digest: dg(id), role, kind: 'image' as const, tags: [], after: [] },
    ],
  });

const base = {
  manifests: {
    old: img(OLD, ['a']),
    new: img(NEW, ['b']),
    amd: img(NEW, ['c']),
    arm: img(NEW, ['d']),
    multi: idx(['amd', 'arm']),
    sig: art('new'),
    oldsig: art('old'),
  },
};
const repos = { app: { v1: 'old', v2: 'new', multi: 'multi', [referrerTag('new', '.sig')]: 'sig' } };

describe('liveConflicts', () => {
  it("passes the planner's own plans, tags and history alike", () => {
    expect(check(inventory({ ...base, repos }))).toEqual([]);
    const withHistory = inventory({
      ...base,
      repos: { app: { v2: 'new' } },
      untagged: { app: { old: OLD, oldsig: OLD, sig: NEW } },
    });
    expect(
      plan(withHistory, policy, NOW)
        .repositories[0]!.deleteManifests.map((m) => m.digest)
        .sort(),
    ).toEqual([dg('old'), dg('oldsig')].sort());
    expect(check(withHistory)).toEqual([]);
  });

  it.each([
    { what: "a kept tag's digest", id: 'new', message: `${dg('new')} stays (tag v2 reaches it)` },
    { what: "a kept index's child", id: 'arm', message: `${dg('arm')} stays (tag multi reaches it)` },
    {
      what: 'a referrer of a kept image',
      id: 'sig',
      message: `stays (tag ${referrerTag('new', '.sig')} reaches it)`,
    },
  ])('refuses a plan deleting $what', ({ id, message }) => {
    expect(check(inventory({ ...base, repos }), deleting(id)).join('\n')).toContain(message);
  });

  it('refuses an untagged referrer of a kept image, and a tag moved into kept', () => {
    const inv = inventory({
      ...base,
      repos: { app: { v1: 'old', v2: 'new' } },
      untagged: { app: { sig: OLD } },
    });
    expect(check(inv, deleting('sig', 'untagged')).join('\n')).toContain(
      `${dg('sig')} refers to ${dg('new')}, which stays (tag v2)`,
    );
    const moved = check(inv, (r) => ({ ...r, deleteTags: [] }));
    expect(moved).toEqual([`${dg('old')} stays (tag v1 reaches it) but the plan deletes it`]);
  });

  it('with a listing, a young untagged index keeps its children; without one, untagged deletions are refused', () => {
    const inv = inventory({
      manifests: { new: img(NEW), amd: img(OLD), arm: img(OLD), young: idx(['amd', 'arm']) },
      repos: { app: { v2: 'new' } },
      untagged: { app: { amd: OLD, arm: OLD, young: NEW } },
    });
    expect(check(inv)).toEqual([]);
    expect(check(inv, deleting('arm', 'untagged')).join('\n')).toContain(
      `${dg('arm')} stays (untagged ${dg('young')} reaches it)`,
    );
    const noListing = inventory({
      manifests: { new: img(NEW), stray: img(OLD) },
      repos: { app: { v2: 'new' } },
    });
    expect(check(noListing, deleting('stray', 'untagged'))).toEqual([
      `${dg('stray')} is reached by no tag the plan deletes, nor left by an interrupted run (the journal); untagged manifests are deleted only with a storage listing (--storage)`,
    ]);
  });

  it('refuses a repository it could not read again, or that is gone from the catalog', () => {
    const inv = inventory({
      ...base,
      repos,
      errors: [{ repository: 'app', message: 'listing tags failed: 503' }],
    });
    expect(check(inv)).toEqual(['re-reading it failed (listing tags failed: 503)']);
    const repo = plan(inventory({ ...base, repos }), policy, NOW).repositories[0]!;
    const gone = inventory({ ...base, repos: {} });
    expect(liveConflicts(repo, new Map(), factsOf(gone)('app'))).toEqual([
      'it was not read in this run (it is not in the catalog now)',
    ]);
  });
});
