import { describe, expect, it } from 'vitest';
import { checkGuard, plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import {
  art,
  dg,
  idx,
  img,
  inventory,
  manifest,
  referrerTag,
  type InventorySpec,
} from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

function policy(keep: string): ReturnType<typeof parsePolicy> {
  return parsePolicy(`rules:\n  - repositories: ["**"]\n    keep: ${keep}\n`, 'test');
}

function repoPlan(p: Plan, name = 'app'): RepositoryPlan {
  const r = p.repositories.find((x) => x.name === name);
  if (!r) throw new Error(`no plan for ${name}`);
  return r;
}
const keptTags = (r: RepositoryPlan): string[] => r.kept.map((k) => k.tag).sort();
const deletedTags = (r: RepositoryPlan): string[] => r.deleteTags.map((t) => t.tag).sort();
const deletedDigests = (r: RepositoryPlan): string[] => r.deleteManifests.map((m) => m.digest);

// Five images a day apart (a newest), one tag each, plus aliases.
const fiveImages: InventorySpec = {
  manifests: {
    a: img(daysAgo(1)),
    b: img(daysAgo(2)),
    c: img(daysAgo(3)),
    d: img(daysAgo(10)),
    e: img(daysAgo(20)),
  },
  repos: {
    app: {
      'build-a': 'a',
      'build-b': 'b',
      'build-c': 'c',
      'build-d': 'd',
      'build-e': 'e',
      latest: 'a',
      stable: 'd',
      'v1.2.3': 'e',
    },
  },
};

describe('keep criteria', () => {
  it.each([
    ['newest counts images, and keeps every tag of them', '{ newest: 2 }', ['build-a', 'build-b', 'latest']],
    [
      'youngerThanDays keeps images created within the window',
      '{ youngerThanDays: 5 }',
      ['build-a', 'build-b', 'build-c', 'latest'],
    ],
    [
      'tags globs keep by name',
      '{ tags: ["stable", "build-?"] }',
      ['build-a', 'build-b', 'build-c', 'build-d', 'build-e', 'stable'],
    ],
    [
      'tagsRegex keeps by regular expression',
      '{ tagsRegex: ["^v\\\\d+\\\\.\\\\d+\\\\.\\\\d+$"] }',
      ['v1.2.3'],
    ],
    ['criteria combine with OR', '{ newest: 1, tags: ["stable"] }', ['build-a', 'latest', 'stable']],
    ['newest: 0 keeps nothing by age', '{ newest: 0 }', []],
  ])('%s', (_name, keep, expected) => {
    const p = plan(inventory(fiveImages), policy(keep), NOW);
    expect(keptTags(repoPlan(p))).toEqual(expected);
  });

  it('records each criterion that kept a tag', () => {
    const p = plan(
      inventory(fiveImages),
      policy('{ newest: 1, tags: ["latest"], youngerThanDays: 30 }'),
      NOW,
    );
    const latest = repoPlan(p).kept.find((k) => k.tag === 'latest');
    expect(latest?.reasons).toEqual(['tag:latest', 'younger-than-days', 'newest:1']);
  });

  it('keeps every image tied with the last newest place', () => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), b: img(daysAgo(2)), c: img(daysAgo(2)), d: img(daysAgo(3)) },
      repos: { app: { a: 'a', b: 'b', c: 'c', d: 'd' } },
    };
    expect(keptTags(repoPlan(plan(inventory(spec), policy('{ newest: 2 }'), NOW)))).toEqual(['a', 'b', 'c']);
  });
});

describe('which rule applies', () => {
  const spec: InventorySpec = {
    manifests: { old: img(daysAgo(400)), fresh: img(daysAgo(1)) },
    repos: {
      'legacy/app': { old: 'old' },
      'team1/svc/api': { old: 'old', fresh: 'fresh' },
      'team3/x': { old: 'old' },
    },
  };
  const p = plan(
    inventory(spec),
    parsePolicy(
      `rules:
  - repositories: ["legacy/**"]
    protect: true
  - repositories: ["team1/**", "team2/**"]
    keep: { newest: 1 }
  - repositories: ["team1/svc/api"]
    keep: { newest: 5 }
`,
      'test',
    ),
    NOW,
  );
  it.each([
    ['a protected repository keeps everything', 'legacy/app', 'protected', ['old']],
    ['the first matching rule wins (** spans segments)', 'team1/svc/api', 'cleaned', ['fresh']],
    ['a repository no rule matches is left untouched', 'team3/x', 'untouched', ['old']],
  ])('%s', (_n, name, action, kept) => {
    const r = repoPlan(p, name);
    expect(r.action).toBe(action);
    expect(keptTags(r)).toEqual(kept);
  });
  it('names the rule that matched', () => {
    expect(repoPlan(p, 'team1/svc/api').rule).toBe(1);
    expect(repoPlan(p, 'team3/x').rule).toBeNull();
  });
});

describe('unknown age', () => {
  it.each([
    ['missing', null],
    ['stamped 1970 by a reproducible build', '1970-01-01T00:00:00Z'],
    ['before 2000', '1999-12-31T23:59:59Z'],
    ['unparseable', 'last tuesday'],
    ['not RFC 3339', '2024-01-01 10:00'],
  ])('an image whose creation time is %s is kept by age rules and reported', (_n, created) => {
    const spec: InventorySpec = {
      manifests: { repro: img(created), old: img(daysAgo(100)), newer: img(daysAgo(50)) },
      repos: { app: { repro: 'repro', old: 'old', newer: 'newer' } },
    };
    const p = plan(inventory(spec), policy('{ newest: 1, youngerThanDays: 7 }'), NOW);
    const r = repoPlan(p);
    // It neither takes the one newest place nor is it older than 7 days.
    expect(keptTags(r)).toEqual(['newer', 'repro']);
    expect(r.kept.find((k) => k.tag === 'repro')?.reasons).toEqual(['unknown-age']);
    expect(r.warnings.join()).toMatch(/no usable creation time.*repro/);
    expect(p.warnings.some((w) => w.repository === 'app' && /repro/.test(w.message))).toBe(true);
  });

  it('is judged by name alone when the rule has no age criteria', () => {
    const spec: InventorySpec = {
      manifests: { repro: img(null) },
      repos: { app: { repro: 'repro', keepme: 'repro' } },
    };
    const r = repoPlan(plan(inventory(spec), policy('{ tags: ["keepme"] }'), NOW));
    expect(keptTags(r)).toEqual(['keepme']);
    expect(r.deleteTags).toEqual([expect.objectContaining({ tag: 'repro', method: 'tag-only' })]);
  });
});

describe('safety invariants', () => {
  it('1. never deletes a digest a kept tag resolves to, nor what a kept index references', () => {
    const spec: InventorySpec = {
      manifests: {
        amd: img(daysAgo(100)),
        arm: img(daysAgo(100)),
        multi: idx(['amd', 'arm']),
        other: img(daysAgo(100)),
      },
      repos: { app: { multi: 'multi', 'multi-amd64': 'amd', other: 'other' } },
    };
    const r = repoPlan(plan(inventory(spec), policy('{ tags: ["multi"] }'), NOW));
    expect(deletedDigests(r)).toEqual([dg('other')]);
    // The platform tag goes, but only as a tag: the kept index needs its manifest.
    expect(r.deleteTags.find((t) => t.tag === 'multi-amd64')?.method).toBe('tag-only');
  });

  it.each([
    ['a kept tag', { keepme: 'x', dropme: 'x' }, ['dropme']],
    ['two kept tags', { a: 'x', b: 'x', dropme: 'x' }, ['dropme']],
  ])('2. a candidate sharing its digest with %s is removed as a tag only', (_n, tags, expectedTagOnly) => {
    const spec: InventorySpec = { manifests: { x: img(daysAgo(100)) }, repos: { app: tags } };
    const r = repoPlan(plan(inventory(spec), policy('{ tags: ["keepme", "a", "b"] }'), NOW));
    expect(r.deleteTags.filter((t) => t.method === 'tag-only').map((t) => t.tag)).toEqual(expectedTagOnly);
    expect(r.deleteManifests).toEqual([]);
  });

  it('3. deleting an index deletes its children that no kept index references, parents first', () => {
    const spec: InventorySpec = {
      manifests: {
        amd: img(daysAgo(100), ['l1']),
        arm: img(daysAgo(100), ['l2']),
        att: img(null),
        shared: img(daysAgo(100)),
        oldIndex: idx(['amd', 'arm', 'shared'], { attestations: ['att'] }),
        keptIndex: idx(['shared']),
      },
      repos: { app: { old: 'oldIndex', keep: 'keptIndex' } },
    };
    const r = repoPlan(plan(inventory(spec), policy('{ tags: ["keep"] }'), NOW));
    expect(r.deleteManifests.map((m) => [m.digest, m.role])).toEqual([
      [dg('oldIndex'), 'root'],
      ...[dg('amd'), dg('arm'), dg('att')].sort().map((d) => [d, 'child']),
    ]);
    for (const child of r.deleteManifests.slice(1)) expect(child.after).toEqual([dg('oldIndex')]);
    expect(deletedDigests(r)).not.toContain(dg('shared'));
  });

  it('3b. a child missing from the registry is not planned for deletion', () => {
    const spec: InventorySpec = {
      manifests: { amd: img(daysAgo(100)), arm: img(daysAgo(100)), multi: idx(['amd', 'arm']) },
      repos: { app: { multi: 'multi' } },
      missing: { app: ['arm'] },
    };
    const r = repoPlan(plan(inventory(spec), policy('{ newest: 0 }'), NOW));
    expect(deletedDigests(r)).toEqual([dg('multi'), dg('amd')]);
  });

  it('4. any failed read makes the plan incomplete', () => {
    const p = plan(
      inventory({
        ...fiveImages,
        errors: [{ repository: 'app', reference: 'build-a', message: 'HTTP 503' }],
      }),
      policy('{ newest: 1 }'),
      NOW,
    );
    expect(p.complete).toBe(false);
    expect(p.errors).toHaveLength(1);
  });

  it.each([
    [0.5, false],
    [0.74, false],
    [0.75, true],
    [1, true],
  ])('5. the delete guard at %s lets a 75%% plan through: %s', (max, ok) => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), b: img(daysAgo(2)), c: img(daysAgo(3)), d: img(daysAgo(4)) },
      repos: { app: { a: 'a', b: 'b', c: 'c', d: 'd' } },
    };
    const p = plan(inventory(spec), policy('{ newest: 1 }'), NOW);
    expect(p.summary.deleteFraction).toBe(0.75);
    const guard = checkGuard(p, max);
    expect(guard.ok).toBe(ok);
    if (!guard.ok)
      expect(guard.message).toMatch(/deletes 3 of 4 tags \(75\.0%\).*--max-delete-fraction 0\.75/);
  });
});

describe('referrers', () => {
  const spec: InventorySpec = {
    manifests: {
      keep: img(daysAgo(1)),
      drop: img(daysAgo(100)),
      sigKeep: art('keep'),
      sigDrop: art('drop'),
      sbomDrop: art('drop', ['sbom']),
      sigOfSbom: art('sbomDrop'),
      orphan: art('gone'),
      untrackedSig: art('untagged'),
    },
    repos: {
      app: {
        v2: 'keep',
        v1: 'drop',
        [referrerTag('keep', '.sig')]: 'sigKeep',
        [referrerTag('drop', '.sig')]: 'sigDrop',
        [referrerTag('drop')]: 'sbomDrop',
        [referrerTag('sbomDrop', '.sig')]: 'sigOfSbom',
        [referrerTag('gone', '.att')]: 'orphan',
        [referrerTag('untagged', '.sig')]: 'untrackedSig',
      },
    },
    untaggedSubjects: { app: ['untagged'] },
  };
  const r = repoPlan(plan(inventory(spec), policy('{ newest: 1 }'), NOW));

  it.each([
    ['is kept when its subject is kept', referrerTag('keep', '.sig'), 'subject-kept'],
    [
      'is kept when its subject exists untagged',
      referrerTag('untagged', '.sig'),
      'referrer-subject-untracked',
    ],
  ])('a referrer tag %s', (_n, tag, reason) => {
    expect(r.kept.find((k) => k.tag === tag)?.reasons).toEqual([reason]);
  });

  it('never counts towards newest (the one newest place goes to an image)', () => {
    expect(r.kept.find((k) => k.tag === 'v2')?.reasons).toEqual(['newest:1']);
  });

  it('deletes referrers of a deleted subject, and of deleted referrers, after their subject', () => {
    expect(deletedTags(r)).toEqual(
      [
        'v1',
        referrerTag('drop', '.sig'),
        referrerTag('drop'),
        referrerTag('sbomDrop', '.sig'),
        referrerTag('gone', '.att'),
      ].sort(),
    );
    const order = r.deleteManifests.map((m) => m.digest);
    expect(order[0]).toBe(dg('drop'));
    const sig = r.deleteManifests.find((m) => m.digest === dg('sigDrop'));
    expect(sig?.role).toBe('referrer');
    expect(sig?.after).toEqual([dg('drop')]);
    expect(r.deleteManifests.find((m) => m.digest === dg('sigOfSbom'))?.after).toEqual([dg('sbomDrop')]);
  });
});

// Found by the planner's property tests: a manifest with a `subject` under an ordinary tag (a signature pushed
// as `app:signed`, an index with a subject) was judged by its tag alone and deleted while its subject stayed,
// which the live re-check then refused on every run.
describe('a manifest with a subject under an ordinary tag', () => {
  const spec: InventorySpec = {
    manifests: {
      keep: img(daysAgo(1)),
      drop: img(daysAgo(30)),
      sigOfKept: art('keep'),
      old: img(daysAgo(40)),
      sigOfDropped: art('old'),
      indexOnKept: idx(['drop'], { subject: 'keep' }),
    },
    repos: {
      app: {
        v2: 'keep',
        v1: 'drop',
        v0: 'old',
        'signed-v2': 'sigOfKept',
        'signed-v1': 'sigOfDropped',
        bundle: 'indexOnKept',
      },
    },
  };
  const r = repoPlan(plan(inventory(spec), policy('{ tags: ["v2"] }'), NOW));

  it.each([
    ['a signature of a kept image', 'signed-v2'],
    ['an index whose subject is kept', 'bundle'],
  ])('stays with its subject: %s', (_n, tag) => {
    expect(r.kept.find((k) => k.tag === tag)?.reasons).toEqual(['subject-kept']);
  });

  it('keeps what such a manifest reaches, and goes with a deleted subject', () => {
    expect(deletedTags(r)).toEqual(['signed-v1', 'v0', 'v1']);
    // The kept index reaches `drop`: its tag goes, its manifest stays. `old` goes, and its signature after it.
    expect(deletedDigests(r).sort()).toEqual([dg('old'), dg('sigOfDropped')].sort());
    expect(r.deleteManifests.find((m) => m.digest === dg('sigOfDropped'))?.after).toEqual([dg('old')]);
  });
});

describe('leftovers of an interrupted run', () => {
  it('removes a tag still pointing at a 2.8 placeholder, whatever the keep criteria say', () => {
    const inv = inventory({ manifests: { a: img(daysAgo(1)) }, repos: { app: { a: 'a', 'build-9': 'a' } } });
    const placeholder = { ...manifest('ph', idx([])), placeholder: true };
    const manifests = new Map(inv.manifests).set(placeholder.digest, placeholder);
    const tags = [...inv.repositories[0]!.tags, { tag: 'latest', digest: placeholder.digest }];
    const r = repoPlan(
      plan(
        { ...inv, manifests, repositories: [{ ...inv.repositories[0]!, tags }] },
        policy('{ newest: 5, tags: ["latest"] }'),
        NOW,
      ),
    );
    expect(r.deleteTags).toEqual([{ tag: 'latest', digest: placeholder.digest, method: 'manifest' }]);
    expect(r.warnings.join()).toMatch(
      /^1 tag still points at a placeholder left by an interrupted run and is removed: latest/,
    );
  });
});

describe('dangling tags (listed, their manifest gone)', () => {
  const base = inventory({
    manifests: { a: img(daysAgo(1)), b: img(daysAgo(50)) },
    repos: { app: { a: 'a', b: 'b' } },
  });
  const withDangling = {
    ...base,
    repositories: [{ ...base.repositories[0]!, dangling: ['gone-1', 'gone-2'] }],
  };

  it('are neither kept nor deleted nor counted, and a cleaned repository lists them for removal', () => {
    const p = plan(withDangling, policy('{ newest: 1 }'), NOW);
    const r = repoPlan(p);
    expect(r.dangling).toEqual(['gone-1', 'gone-2']);
    expect(keptTags(r)).toEqual(['a']);
    expect(deletedTags(r)).toEqual(['b']);
    expect(p.summary).toMatchObject({ tags: 2, tagsDeleted: 1, deleteFraction: 0.5 });
    expect(r.warnings.join()).toMatch(/2 tags whose manifest is already gone are removed: gone-1, gone-2/);
  });

  it('are carried, without a removal warning, by protected and unmatched repositories', () => {
    for (const rules of [
      'rules:\n  - repositories: ["app"]\n    protect: true\n',
      'rules:\n  - repositories: ["x"]\n    protect: true\n',
    ]) {
      const r = repoPlan(plan(withDangling, parsePolicy(rules, 'test'), NOW));
      expect(r.action).not.toBe('cleaned');
      expect(r.dangling).toEqual(['gone-1', 'gone-2']);
      expect(r.warnings).toEqual([]);
    }
  });

  it('leave the plan as it was when there are none', () => {
    expect(repoPlan(plan(base, policy('{ newest: 1 }'), NOW))).not.toHaveProperty('dangling');
  });
});

describe('bytes freed', () => {
  it('counts a blob only if no kept manifest anywhere in the registry references it', () => {
    const spec: InventorySpec = {
      manifests: {
        old: img(daysAgo(100), ['base', 'unique-old']),
        new: img(daysAgo(1), ['base', 'unique-new']),
        otherRepo: img(daysAgo(100), ['shared-with-other-repo']),
        oldToo: img(daysAgo(100), ['shared-with-other-repo', 'unique-too']),
      },
      repos: { app: { old: 'old', new: 'new', too: 'oldToo' }, 'other/svc': { x: 'otherRepo' } },
    };
    const p = plan(
      inventory(spec),
      parsePolicy('rules:\n  - repositories: ["app"]\n    keep: { newest: 1 }\n', 'test'),
      NOW,
    );
    // Freed: old and oldToo manifests (500 each), their configs (100 each), unique-old and unique-too (1000 each).
    expect(repoPlan(p).bytesFreed).toBe(2 * 500 + 2 * 100 + 2 * 1000);
    expect(p.summary.bytesFreed).toBe(3200);
  });
});

describe('the plan document', () => {
  it('is deterministic: the same inputs in another order give the same plan', () => {
    const a = plan(inventory(fiveImages), policy('{ newest: 2 }'), NOW);
    const reversed = {
      ...fiveImages,
      repos: { app: Object.fromEntries(Object.entries(fiveImages.repos.app!).reverse()) },
    };
    const b = plan(inventory(reversed), policy('{ newest: 2 }'), NOW);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('summarises tags, deletions and the delete fraction', () => {
    const p = plan(inventory(fiveImages), policy('{ newest: 2 }'), NOW);
    expect(p.summary).toMatchObject({
      repositories: 1,
      tags: 8,
      tagsKept: 3,
      tagsDeleted: 5,
      manifestsDeleted: 3,
    });
    expect(p.summary.deleteFraction).toBe(5 / 8);
    expect(p.complete).toBe(true);
  });
});
