// Untagged history in the planner: what a storage listing lets it delete, and everything that keeps a
// revision. One row per rule of the untagged-history safety model.
import { describe, expect, it } from 'vitest';
import type { Plan, RepositoryPlan, UntaggedDecision } from '../../lambda/core/model.ts';
import { checkGuard, plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { art, dg, idx, img, inventory, referrerTag, type InventorySpec } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

/** `app/**` keeps the newest image and deletes history older than 14 days; everything else has its own rule. */
const POLICY = parsePolicy(
  [
    'rules:',
    '  - repositories: ["base/**"]',
    '    protect: true',
    '  - repositories: ["keep-history/**"]',
    '    keep: { newest: 1 }',
    '  - repositories: ["app/**"]',
    '    keep: { newest: 1 }',
    '    untagged: { deleteAfterDays: 14 }',
    '',
  ].join('\n'),
  'test',
);

function repoPlan(p: Plan, name: string): RepositoryPlan {
  const r = p.repositories.find((x) => x.name === name);
  if (!r) throw new Error(`no plan for ${name}`);
  return r;
}
const ids = (list: readonly { digest: string }[], names: readonly string[]): string[] => {
  const byDigest = new Map(names.map((n) => [dg(n), n]));
  return list.map((d) => byDigest.get(d.digest) ?? d.digest);
};
const NAMES = ['a', 'b', 'c', 'h1', 'h2', 'h3', 'ix', 'c1', 'c2', 'sig', 'sbom', 'young-ix', 'old-ix'];
const deleted = (r: RepositoryPlan): string[] => ids(r.deleteManifests, NAMES);
const untaggedDeleted = (r: RepositoryPlan): string[] => ids(r.untagged?.deleted ?? [], NAMES);
const keptReasons = (r: RepositoryPlan): Record<string, string> =>
  Object.fromEntries(
    (r.untagged?.kept ?? []).map((k: UntaggedDecision) => [
      ids([k], NAMES)[0]!,
      k.by === undefined ? k.reason : `${k.reason} by ${ids([{ digest: k.by }], NAMES)[0]}`,
    ]),
  );

// `main` pushed three times: the last push is tagged, two earlier ones are history.
const mainPushedThrice = (repo: string, olderPushes: [number, number]): InventorySpec => ({
  manifests: { a: img(daysAgo(1)), h1: img(daysAgo(40)), h2: img(daysAgo(30)) },
  repos: { [repo]: { main: 'a' } },
  untagged: { [repo]: { h1: daysAgo(olderPushes[0]), h2: daysAgo(olderPushes[1]) } },
});

describe('untagged history', () => {
  it('deletes history pushed longer ago than the grace, and keeps what was pushed within it', () => {
    const p = plan(inventory(mainPushedThrice('app/web', [40, 3])), POLICY, NOW);
    const r = repoPlan(p, 'app/web');
    expect(untaggedDeleted(r)).toEqual(['h1']);
    expect(keptReasons(r)).toEqual({ h2: 'young' });
    expect(r.deleteManifests).toEqual([
      { digest: dg('h1'), role: 'untagged', kind: 'image', tags: [], after: [] },
    ]);
    expect(r.kept.map((k) => k.tag)).toEqual(['main']);
    expect(p.summary).toMatchObject({
      untaggedDeleted: 1,
      untaggedKept: 1,
      manifestsDeleted: 1,
      tagsDeleted: 0,
    });
  });

  it('judges age by push time, never by build time: an old build pushed today stays', () => {
    // h1 was built 40 days ago (its created) but pushed into the repository an hour ago.
    const p = plan(inventory(mainPushedThrice('app/web', [0.04, 30])), POLICY, NOW);
    const r = repoPlan(p, 'app/web');
    expect(untaggedDeleted(r)).toEqual(['h2']);
    expect(keptReasons(r)).toEqual({ h1: 'young' });
  });

  it.each([
    ['a protected repository', 'base/os', 'protected'],
    ['a repository no rule matches', 'other/x', 'no-rule'],
    ['a rule without an untagged block', 'keep-history/x', 'no-untagged-rule'],
  ])('%s never loses an untagged manifest', (_n, repo, reason) => {
    const p = plan(inventory(mainPushedThrice(repo, [400, 300])), POLICY, NOW);
    const r = repoPlan(p, repo);
    expect(r.deleteManifests).toEqual([]);
    expect(untaggedDeleted(r)).toEqual([]);
    expect(keptReasons(r)).toEqual({ h1: reason, h2: reason });
  });

  it('keeps the platform images of a kept index, listed as held by its tag', () => {
    const spec: InventorySpec = {
      manifests: { c1: img(daysAgo(1), ['l1']), c2: img(daysAgo(1), ['l2']), ix: idx(['c1', 'c2']) },
      repos: { 'app/web': { latest: 'ix' } },
      // On 2.8 the children of a tagged index are untagged revisions, pushed long ago.
      untagged: { 'app/web': { c1: daysAgo(100), c2: daysAgo(100) } },
    };
    const r = repoPlan(plan(inventory(spec), POLICY, NOW), 'app/web');
    expect(r.deleteManifests).toEqual([]);
    expect(keptReasons(r)).toEqual({ c1: 'referenced by latest', c2: 'referenced by latest' });
  });

  it('keeps the old children of a young untagged index: a multi-arch push in progress', () => {
    const spec: InventorySpec = {
      manifests: {
        a: img(daysAgo(1)),
        c1: img(daysAgo(50)),
        c2: img(daysAgo(50)),
        'young-ix': idx(['c1', 'c2']),
      },
      repos: { 'app/web': { main: 'a' } },
      untagged: { 'app/web': { c1: daysAgo(60), c2: daysAgo(60), 'young-ix': daysAgo(0) } },
    };
    const r = repoPlan(plan(inventory(spec), POLICY, NOW), 'app/web');
    expect(r.deleteManifests).toEqual([]);
    expect(keptReasons(r)).toEqual({
      c1: 'referenced by young-ix',
      c2: 'referenced by young-ix',
      'young-ix': 'young',
    });
  });

  it('the tag planner respects the listing: a tagged image a staying untagged index uses loses only its tag', () => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), b: img(daysAgo(30)), 'young-ix': idx(['b']) },
      repos: { 'app/web': { main: 'a', old: 'b' } },
      untagged: { 'app/web': { 'young-ix': daysAgo(1) } },
    };
    const withListing = repoPlan(plan(inventory(spec), POLICY, NOW), 'app/web');
    expect(withListing.deleteTags).toEqual([
      { tag: 'old', digest: dg('b'), method: 'tag-only', created: daysAgo(30) },
    ]);
    expect(withListing.deleteManifests).toEqual([]);
    // Without a listing the same tag takes its image with it (nothing here can see the untagged index).
    const { untagged: _u, ...blind } = spec;
    const without = repoPlan(plan(inventory(blind), POLICY, NOW), 'app/web');
    expect(without.deleteTags[0]!.method).toBe('manifest');
  });

  it('keeps an untagged referrer of a kept image, and deletes one whose subject goes, after its subject', () => {
    const spec: InventorySpec = {
      manifests: {
        a: img(daysAgo(1)),
        h1: img(daysAgo(90)),
        sig: art('a'),
        sbom: art('h1'),
      },
      repos: { 'app/web': { main: 'a' } },
      untagged: { 'app/web': { h1: daysAgo(90), sig: daysAgo(90), sbom: daysAgo(90) } },
    };
    const r = repoPlan(plan(inventory(spec), POLICY, NOW), 'app/web');
    expect(keptReasons(r)).toEqual({ sig: 'subject-kept by main' });
    expect(deleted(r)).toEqual(['h1', 'sbom']);
    expect(r.deleteManifests.find((m) => m.digest === dg('sbom'))!.after).toEqual([dg('h1')]);
  });

  it('a referrer tag follows an untagged subject: kept while it stays, deleted once it expires', () => {
    const spec = (pushed: number): InventorySpec => ({
      manifests: { a: img(daysAgo(1)), h1: img(daysAgo(90)), sig: art('h1') },
      repos: { 'app/web': { main: 'a', [referrerTag('h1', '.sig')]: 'sig' } },
      untagged: { 'app/web': { h1: daysAgo(pushed) } },
      untaggedSubjects: { 'app/web': ['h1'] },
    });
    const young = repoPlan(plan(inventory(spec(2)), POLICY, NOW), 'app/web');
    expect(young.kept.map((k) => [k.tag, k.reasons])).toContainEqual([
      referrerTag('h1', '.sig'),
      ['subject-kept'],
    ]);
    expect(young.deleteManifests).toEqual([]);
    const old = repoPlan(plan(inventory(spec(90)), POLICY, NOW), 'app/web');
    expect(old.deleteTags.map((t) => t.tag)).toEqual([referrerTag('h1', '.sig')]);
    expect(deleted(old)).toEqual(['h1', 'sig']);
    expect(old.deleteManifests.find((m) => m.digest === dg('sig'))!.after).toEqual([dg('h1')]);
  });

  it('deletes an expired untagged index before its children', () => {
    const spec: InventorySpec = {
      manifests: {
        a: img(daysAgo(1)),
        c1: img(daysAgo(90)),
        c2: img(daysAgo(90)),
        'old-ix': idx(['c1', 'c2']),
      },
      repos: { 'app/web': { main: 'a' } },
      untagged: { 'app/web': { c1: daysAgo(90), c2: daysAgo(90), 'old-ix': daysAgo(90) } },
    };
    const r = repoPlan(plan(inventory(spec), POLICY, NOW), 'app/web');
    expect(deleted(r)[0]).toBe('old-ix');
    expect(new Set(deleted(r))).toEqual(new Set(['old-ix', 'c1', 'c2']));
    for (const child of ['c1', 'c2'])
      expect(r.deleteManifests.find((m) => m.digest === dg(child))!.after).toEqual([dg('old-ix')]);
  });

  it('an incomplete listing deletes no untagged manifest, says why, and plans tags as without one', () => {
    const base = mainPushedThrice('app/web', [90, 90]);
    const partial = { ...base, history: { source: 'test', complete: false, problem: 'listing timed out' } };
    const p = plan(inventory(partial), POLICY, NOW);
    const { untagged: _u, ...blind } = base;
    const without = plan(inventory(blind), POLICY, NOW);
    expect(p.repositories).toEqual(without.repositories);
    expect(p.summary).toEqual(without.summary);
    expect(p.warnings.map((w) => w.message)).toContainEqual(expect.stringContaining('listing timed out'));
    expect(p.history).toEqual({ source: 'test', complete: false, problem: 'listing timed out' });
  });

  it('without a listing, the plan has no untagged section at all', () => {
    const { untagged: _u, ...blind } = mainPushedThrice('app/web', [90, 90]);
    const p = plan(inventory(blind), POLICY, NOW);
    expect(repoPlan(p, 'app/web').untagged).toBeUndefined();
    expect(p.summary).not.toHaveProperty('untaggedDeleted');
    expect(p.history).toBeUndefined();
  });

  it('counts the bytes only deleted history holds, and not a layer a staying manifest elsewhere still uses', () => {
    const spec: InventorySpec = {
      manifests: {
        a: img(daysAgo(1), ['base']),
        h1: img(daysAgo(90), ['own', 'shared']),
        h2: img(daysAgo(90), ['shared']),
      },
      repos: { 'app/web': { main: 'a' }, 'keep-history/x': {} },
      untagged: { 'app/web': { h1: daysAgo(90) }, 'keep-history/x': { h2: daysAgo(90) } },
    };
    const p = plan(inventory(spec), POLICY, NOW);
    // h1's manifest (500) + config (100) + its own layer (1000); `shared` is still used by h2, which stays.
    expect(repoPlan(p, 'app/web').bytesFreed).toBe(1600);
    expect(keptReasons(repoPlan(p, 'keep-history/x'))).toEqual({ h2: 'no-untagged-rule' });
  });

  it('counts the bytes history frees apart from the tags: a layer a deleted tag and deleted history share is the tag’s', () => {
    const spec: InventorySpec = {
      manifests: {
        a: img(daysAgo(1), ['base']),
        b: img(daysAgo(2), ['old', 'shared']),
        h1: img(daysAgo(90), ['own', 'shared']),
      },
      // newest: 1 keeps main (a) and deletes old (b); h1 is expired history.
      repos: { 'app/web': { main: 'a', old: 'b' } },
      untagged: { 'app/web': { h1: daysAgo(90) } },
    };
    const p = plan(inventory(spec), POLICY, NOW);
    const r = repoPlan(p, 'app/web');
    expect(deleted(r)).toEqual(['b', 'h1']);
    // b: 500 + 100 + old 1000 + shared 1000; h1 on top: 500 + 100 + own 1000 (shared already counted with b).
    expect(r.bytesFreed).toBe(2600 + 1600);
    expect(r.untagged?.bytesFreed).toBe(1600);
    expect(p.summary).toMatchObject({ bytesFreed: 4200, untaggedBytesFreed: 1600, untaggedDeleted: 1 });
    // Without a listing there is nothing to split.
    const { untagged: _u, ...blind } = spec;
    expect(plan(inventory(blind), POLICY, NOW).summary.untaggedBytesFreed).toBeUndefined();
  });

  it.each([
    // Two history revisions of three manifests expire and no tag goes: the tag count alone (0%) lets it through.
    [[40, 30] as [number, number], 0.5, 'the plan deletes 2 of 3 manifests (66.7%)', '0.67'],
    [[40, 30] as [number, number], 0.67, undefined, ''],
    [[40, 3] as [number, number], 0.5, undefined, ''],
    [[40, 3] as [number, number], 0.3, 'the plan deletes 1 of 3 manifests (33.3%)', '0.34'],
  ])(
    'the delete guard counts manifests too: history pushed %j days ago, limit %s',
    (pushes, max, refused, raise) => {
      const p = plan(inventory(mainPushedThrice('app/web', pushes)), POLICY, NOW);
      expect(p.summary).toMatchObject({ tagsDeleted: 0, manifests: 3 });
      const guard = checkGuard(p, max);
      if (refused === undefined) expect(guard).toEqual({ ok: true });
      else {
        expect(guard.ok).toBe(false);
        expect(!guard.ok && guard.message).toContain(refused);
        expect(!guard.ok && guard.message).toContain(`--max-delete-fraction ${raise} `);
      }
    },
  );

  it('the delete guard names the larger share when both tags and manifests exceed it', () => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), b: img(daysAgo(50)), h1: img(daysAgo(40)), h2: img(daysAgo(30)) },
      repos: { 'app/web': { main: 'a', old: 'b' } },
      untagged: { 'app/web': { h1: daysAgo(40), h2: daysAgo(30) } },
    };
    const p = plan(inventory(spec), POLICY, NOW);
    expect(p.summary).toMatchObject({ tags: 2, tagsDeleted: 1, manifests: 4, manifestsDeleted: 3 });
    const guard = checkGuard(p, 0.4);
    expect(!guard.ok && guard.message).toMatch(
      /deletes 3 of 4 manifests \(75\.0%\).*--max-delete-fraction 0\.75 /,
    );
  });

  it('counts the manifests of protected repositories and the platform images of a kept index', () => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), c1: img(daysAgo(1)), c2: img(daysAgo(1)), ix: idx(['c1', 'c2']) },
      repos: { 'app/web': { main: 'ix' }, 'base/os': { v1: 'a' } },
      untagged: { 'app/web': { c1: daysAgo(40), c2: daysAgo(40) }, 'base/os': { h1: daysAgo(40) } },
    };
    const p = plan(
      inventory({ ...spec, manifests: { ...spec.manifests, h1: img(daysAgo(40)) } }),
      POLICY,
      NOW,
    );
    expect(p.summary).toMatchObject({ manifests: 5, manifestsDeleted: 0 });
  });
});
