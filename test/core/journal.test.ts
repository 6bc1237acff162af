// The journal (core/journal.ts): what a run records before deleting, what the next run finishes and what it never
// does, whatever the journal says (it is an untrusted file), and the whole loop over the in-memory registry: an
// index deleted, its child's delete failed, and the next run finishing the child.
import { describe, expect, it } from 'vitest';
import {
  decodeJournal,
  encodeJournal,
  entriesToRecord,
  journalAfterDeletes,
  journalBeforeDeletes,
  type JournalEntry,
  type JournalStore,
} from '../../lambda/core/journal.ts';
import { runJob } from '../../lambda/core/job.ts';
import { factsOf, liveConflicts } from '../../lambda/core/live-check.ts';
import type { Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { RegistryError } from '../../lambda/core/errors.ts';
import { art, dg, idx, img, inventory, referrerTag, type InventorySpec } from '../support/inventory.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();
const RECORDED = daysAgo(1);

const POLICY = parsePolicy(
  [
    'rules:',
    '  - repositories: ["base/**"]',
    '    protect: true',
    '  - repositories: ["app/**"]',
    '    keep: { newest: 1 }',
    '  - repositories: ["hist/**"]',
    '    keep: { newest: 1 }',
    '    untagged: { deleteAfterDays: 14 }',
    '',
  ].join('\n'),
  'test',
);

const NAMES = ['a', 'old', 'ix', 'c1', 'c2', 'sig', 'left', 'left2', 'parent', 'young-ix'];
const name = (digest: string): string => NAMES.find((n) => dg(n) === digest) ?? digest;
const repoPlan = (p: Plan, repo: string): RepositoryPlan => p.repositories.find((r) => r.name === repo)!;
const decisions = (r: RepositoryPlan): Record<string, string> =>
  Object.fromEntries((r.journal ?? []).map((j) => [name(j.digest), `${j.outcome}: ${j.reason}`]));
const deleted = (r: RepositoryPlan): string[] =>
  r.deleteManifests.map((m) => `${name(m.digest)} (${m.role})`);

/** `latest` is a kept multi-arch index over c1 and c2; `a` a kept image; `left` untagged and unreferenced. */
const BASE: InventorySpec = {
  manifests: {
    a: img(daysAgo(1)),
    ix: idx(['c1', 'c2']),
    c1: img(daysAgo(1)),
    c2: img(daysAgo(1)),
    sig: art('a'),
    left: img(daysAgo(30), ['l1']),
    left2: img(daysAgo(30), ['l2']),
    parent: idx(['left']),
  },
  repos: { 'app/x': { a: 'a', latest: 'ix', [referrerTag('a')]: 'sig' } },
};

const withJournal = (
  repo: string,
  entries: NonNullable<InventorySpec['journal']>[string],
  extra: Partial<InventorySpec> = {},
): Plan =>
  plan(
    inventory({
      ...BASE,
      ...extra,
      repos: {
        ...BASE.repos,
        ...(extra.repos ?? {}),
        [repo]: { ...(BASE.repos[repo] ?? {}), ...(extra.repos?.[repo] ?? {}) },
      },
      journal: { [repo]: entries },
    }),
    POLICY,
    NOW,
  );

describe('the planner and the journal', () => {
  it('finishes a leftover no tag and no staying manifest reaches, after nothing (its index is gone)', () => {
    const r = repoPlan(withJournal('app/x', [{ id: 'left', recordedAt: RECORDED }]), 'app/x');
    expect(deleted(r)).toEqual(['left (leftover)']);
    expect(decisions(r)).toEqual({
      left: 'finish: left by an interrupted run; nothing that stays references it',
    });
    // Its layer counts towards the bytes freed like any deletion's.
    expect(r.bytesFreed).toBeGreaterThan(1000);
  });

  // A tampered journal: every row names something that stays; none of it is deleted.
  it.each([
    ['a kept tag', 'a', 'a tag or a manifest that stays reaches it'],
    ['the index of a kept tag', 'ix', 'a tag or a manifest that stays reaches it'],
    ['the platform image of a kept index', 'c1', 'a tag or a manifest that stays reaches it'],
    ['a referrer of a kept image', 'sig', 'a tag or a manifest that stays reaches it'],
  ])('never deletes %s, whatever the journal says', (_what, id) => {
    const r = repoPlan(withJournal('app/x', [{ id, recordedAt: RECORDED }]), 'app/x');
    expect(r.deleteManifests).toEqual([]);
    expect(decisions(r)[id]).toMatch(/^drop: /);
  });

  it('keeps an untagged referrer whose subject stays (the subject named, not a tag)', () => {
    const p = plan(
      inventory({
        ...BASE,
        manifests: { ...BASE.manifests, sbom: art('a') },
        journal: { 'app/x': [{ id: 'sbom', recordedAt: RECORDED }] },
      }),
      POLICY,
      NOW,
    );
    const r = repoPlan(p, 'app/x');
    expect(r.deleteManifests).toEqual([]);
    expect((r.journal ?? [])[0]).toMatchObject({ outcome: 'drop', reason: `its subject ${dg('a')} stays` });
  });

  it.each([
    ['base/x', 'the repository is protected now'],
    ['other/x', 'no rule of the policy matches the repository now'],
  ])('leaves %s alone: the policy does not clean it', (repo, reason) => {
    const r = repoPlan(
      withJournal(repo, [{ id: 'left', recordedAt: RECORDED }], { repos: { [repo]: { v: 'a' } } }),
      repo,
    );
    expect(r.deleteManifests).toEqual([]);
    expect(decisions(r)).toEqual({ left: `drop: ${reason}` });
  });

  it('drops an entry the registry no longer has, and leaves one it could not read for a later run', () => {
    const r = repoPlan(
      withJournal('app/x', [
        { id: 'left', recordedAt: RECORDED, state: 'gone' },
        { id: 'left2', recordedAt: RECORDED, state: 'unread' },
      ]),
      'app/x',
    );
    expect(r.deleteManifests).toEqual([]);
    expect(decisions(r)).toEqual({
      left: 'drop: already gone',
      left2: 'wait: it could not be read in this run',
    });
  });

  it('waits while what had to go first is still there and not deleted in this run; goes with it otherwise', () => {
    // `parent` (an index over `left`) is present and goes nowhere: `left` waits.
    const waiting = repoPlan(
      withJournal('app/x', [{ id: 'left', recordedAt: RECORDED, waitsFor: ['parent'] }]),
      'app/x',
    );
    expect(waiting.deleteManifests).toEqual([]);
    expect(decisions(waiting).left).toBe(`wait: ${dg('parent')}, which had to go first, is still there`);
    // Both in the journal: the parent goes first, then its child.
    const both = repoPlan(
      withJournal('app/x', [
        { id: 'parent', recordedAt: RECORDED },
        { id: 'left', recordedAt: RECORDED, waitsFor: ['parent'] },
      ]),
      'app/x',
    );
    expect(deleted(both)).toEqual(['parent (leftover)', 'left (leftover)']);
    expect(both.deleteManifests[1]!.after).toEqual([dg('parent')]);
  });

  describe('with a storage listing', () => {
    it('finishes a leftover however young, unless it was pushed again after the journal recorded it', () => {
      const spec = (pushedAt: string): Partial<InventorySpec> => ({
        repos: { 'hist/x': { a: 'a' } },
        untagged: { 'hist/x': { left: pushedAt } },
      });
      const before = repoPlan(
        withJournal('hist/x', [{ id: 'left', recordedAt: RECORDED }], spec(daysAgo(3))),
        'hist/x',
      );
      expect(deleted(before)).toEqual(['left (leftover)']);
      // Pushed again (a promotion, a re-push) after it was recorded: someone's again, judged as history (young).
      const again = repoPlan(
        withJournal('hist/x', [{ id: 'left', recordedAt: RECORDED }], spec(daysAgo(0.5))),
        'hist/x',
      );
      expect(again.deleteManifests).toEqual([]);
      expect(decisions(again).left).toMatch(/^drop: pushed again \(.+\) after the journal recorded it$/);
      expect(again.untagged?.kept.map((k) => [name(k.digest), k.reason])).toEqual([['left', 'young']]);
    });

    it('keeps a leftover a young untagged index references (a multi-arch push in progress)', () => {
      const r = repoPlan(
        withJournal('hist/x', [{ id: 'left', recordedAt: RECORDED }], {
          manifests: { ...BASE.manifests, 'young-ix': idx(['left']) },
          repos: { 'hist/x': { a: 'a' } },
          untagged: { 'hist/x': { left: daysAgo(30), 'young-ix': daysAgo(0.1) } },
        }),
        'hist/x',
      );
      expect(r.deleteManifests).toEqual([]);
      expect(decisions(r).left).toBe('drop: a tag or a manifest that stays reaches it');
    });
  });

  it('the live re-check accepts a leftover, and refuses it once a tag reaches it again', () => {
    const inv = inventory({ ...BASE, journal: { 'app/x': [{ id: 'left', recordedAt: RECORDED }] } });
    const r = repoPlan(plan(inv, POLICY, NOW), 'app/x');
    const facts = factsOf(inv)('app/x');
    const tags = new Map(inv.repositories[0]!.tags.map((t) => [t.tag, t.digest]));
    expect(liveConflicts(r, tags, facts)).toEqual([]);
    // A tag pushed onto it since the plan: it stays.
    expect(liveConflicts(r, new Map([...tags, ['promoted', dg('left')]]), facts)).toEqual([
      `${dg('left')} stays (tag promoted reaches it) but the plan deletes it`,
    ]);
    // A plan deleting it with no journal behind it is refused as before.
    expect(liveConflicts(r, tags, { ...facts, journal: new Set() })[0]).toMatch(
      /is reached by no tag the plan deletes/,
    );
  });
});

describe('what a run records and leaves', () => {
  const p = plan(
    inventory({
      manifests: {
        new: img(daysAgo(1)),
        ix: idx(['c1', 'c2']),
        c1: img(daysAgo(40)),
        c2: img(daysAgo(40)),
        plain: img(daysAgo(50)),
      },
      repos: { 'app/x': { new: 'new', old: 'ix', plainold: 'plain' } },
    }),
    POLICY,
    NOW,
  );

  it('records an index with the children that go after it, not a deletion that stands alone', () => {
    const recorded = entriesToRecord(p, NOW);
    expect(recorded.map((e) => [name(e.digest), e.after.map(name)]).sort()).toEqual([
      ['c1', ['ix']],
      ['c2', ['ix']],
      ['ix', []],
    ]);
    expect(new Set(recorded.map((e) => e.recordedAt))).toEqual(new Set([NOW.toISOString()]));
  });

  it('keeps what may still be left over: not what went, not a repository skipped before any delete', () => {
    const recorded = entriesToRecord(p, NOW);
    const stale: JournalEntry = { repository: 'app/y', digest: dg('left'), after: [], recordedAt: RECORDED };
    expect(journalBeforeDeletes([stale], recorded)).toHaveLength(4);
    const report = (outcomes: Record<string, 'deleted' | 'failed' | 'skipped'>, skipped: string[] = []) => ({
      registry: '',
      startedAt: '',
      finishedAt: '',
      tagsDeleted: 0,
      manifestsDeleted: 0,
      bytesFreedEstimate: 0,
      skippedRepositories: skipped.map((n) => ({ name: n, reason: 'changed' })),
      failures: [],
      entries: Object.entries(outcomes).map(([id, outcome]) => ({
        repository: 'app/x',
        target: 'manifest' as const,
        reference: dg(id),
        outcome,
      })),
    });
    // The index went, c1's delete failed, c2 was skipped: both children stay in the journal, and so does the
    // entry of a repository this run did not read.
    const after = journalAfterDeletes(
      [stale],
      recorded,
      p,
      report({ ix: 'deleted', c1: 'failed', c2: 'skipped' }),
    );
    expect(after.map((e) => name(e.digest)).sort()).toEqual(['c1', 'c2', 'left']);
    expect(
      journalAfterDeletes([], recorded, p, report({ ix: 'deleted', c1: 'deleted', c2: 'deleted' })),
    ).toEqual([]);
    expect(journalAfterDeletes([], recorded, p, report({}, ['app/x']))).toEqual([]);
  });
});

describe('the stored journal', () => {
  const entry: JournalEntry = {
    repository: 'app/x',
    digest: dg('c1'),
    after: [dg('ix')],
    recordedAt: RECORDED,
  };

  it('round-trips, for its own registry only', () => {
    const text = encodeJournal('http://r.test', [entry]);
    expect(decodeJournal(text, 'http://r.test')).toEqual({ entries: [entry], rejected: 0 });
    expect(decodeJournal(text, 'http://other.test').problem).toBe(
      'it is for http://r.test, not http://other.test',
    );
    expect(decodeJournal('{', 'http://r.test').problem).toMatch(/^it is not JSON/);
    expect(decodeJournal('{"format":"x","entries":[]}', 'http://r.test').problem).toBe(
      'it is not a registry-janitor journal',
    );
  });

  it.each([
    ['a repository name distribution would refuse', ['App/X', dg('c1'), [], RECORDED]],
    ['a digest that is not sha256', ['app/x', 'md5:abc', [], RECORDED]],
    ['an after that is not a digest list', ['app/x', dg('c1'), 'ix', RECORDED]],
    ['a time that is not one', ['app/x', dg('c1'), [], 'yesterday']],
    ['a path in the name', ['../etc', dg('c1'), [], RECORDED]],
  ])('drops an entry with %s', (_what, raw) => {
    const text = JSON.stringify({
      format: 'registry-janitor-journal',
      version: 1,
      registry: 'r',
      entries: [raw],
    });
    expect(decodeJournal(text, 'r')).toEqual({ entries: [], rejected: 1 });
  });
});

/** A journal in memory, with every save kept. */
function memoryJournal(
  initial: JournalEntry[] = [],
): JournalStore & { saves: JournalEntry[][]; current: JournalEntry[] } {
  const j = {
    where: 'memory',
    saves: [] as JournalEntry[][],
    current: initial,
    load: () => Promise.resolve(j.current),
    save: (entries: readonly JournalEntry[]) => {
      j.current = [...entries];
      j.saves.push(j.current);
      return Promise.resolve();
    },
  };
  return j;
}

describe('runJob with a journal', () => {
  const layer = (seed: string) => [{ seed, size: 10 }];
  function seeded() {
    const registry = new MemoryRegistry({ tagDelete: true });
    registry.addImage('app/x', 'new', { created: daysAgo(1), layers: layer('n') });
    const c1 = registry.addImage('app/x', null, {
      created: daysAgo(40),
      layers: layer('c1'),
      architecture: 'amd64',
    });
    const c2 = registry.addImage('app/x', null, {
      created: daysAgo(40),
      layers: layer('c2'),
      architecture: 'arm64',
    });
    const ix = registry.addIndex('app/x', 'old', [c1, c2]);
    return { registry, c1, c2, ix };
  }
  const job = (registry: MemoryRegistry, journal: JournalStore, dryRun = false) =>
    runJob({ client: registry, policy: POLICY, now: NOW, dryRun, maxDeleteFraction: 1, journal });

  it('records before the first DELETE, and the next run finishes a child whose delete failed', async () => {
    const { registry, c1, c2, ix } = seeded();
    registry.fail('deleteManifest', new RegistryError('socket hang up'), { reference: c2.digest, times: 1 });
    const journal = memoryJournal();
    const first = await job(registry, journal);
    expect(first.report!.failures.map((f) => f.reference)).toEqual([c2.digest]);
    // Saved before any DELETE: the index and both children.
    expect(journal.saves[0]!.map((e) => e.digest).sort()).toEqual([ix.digest, c1.digest, c2.digest].sort());
    expect(journal.current.map((e) => e.digest)).toEqual([c2.digest]);
    expect(registry.hasManifest('app/x', c2.digest)).toBe(true);

    // The child is untagged now: without the journal nothing would see it. With it, it goes.
    const second = await job(registry, journal);
    expect(repoPlan(second.plan, 'app/x').deleteManifests.map((m) => [m.digest, m.role])).toEqual([
      [c2.digest, 'leftover'],
    ]);
    expect(second.report!.failures).toEqual([]);
    expect(registry.hasManifest('app/x', c2.digest)).toBe(false);
    expect(journal.current).toEqual([]);
    expect(registry.tagsOf('app/x')).toEqual({ new: expect.any(String) });
  });

  it('a dry run reads the journal and writes nothing', async () => {
    const { registry, c2 } = seeded();
    const journal = memoryJournal([
      { repository: 'app/x', digest: c2.digest, after: [], recordedAt: RECORDED },
    ]);
    const result = await job(registry, journal, true);
    // It goes with its index in this plan anyway; a dry run only shows it.
    expect(decisions(repoPlan(result.plan, 'app/x'))).toEqual({
      [c2.digest]: 'finish: left by an interrupted run; nothing that stays references it',
    });
    expect(registry.writes()).toEqual([]);
    expect(journal.saves).toEqual([]);
  });

  it('a tampered journal naming every kept manifest deletes none of them', async () => {
    const registry = new MemoryRegistry({ tagDelete: true });
    const keep = registry.addImage('app/x', 'new', { created: daysAgo(1), layers: layer('n') });
    const c1 = registry.addImage('app/x', null, { created: daysAgo(1), layers: layer('c1') });
    const kix = registry.addIndex('app/x', 'latest', [c1]);
    const other = registry.addImage('base/x', 'v1', { created: daysAgo(400), layers: layer('b') });
    const loose = registry.addImage('base/x', null, { created: daysAgo(400), layers: layer('loose') });
    const forged = [keep, c1, kix].map((m) => ({
      repository: 'app/x',
      digest: m.digest,
      after: [],
      recordedAt: NOW.toISOString(),
    }));
    forged.push(
      { repository: 'base/x', digest: other.digest, after: [], recordedAt: RECORDED },
      { repository: 'base/x', digest: loose.digest, after: [], recordedAt: RECORDED },
    );
    const journal = memoryJournal(forged);
    const result = await job(registry, journal);
    expect(
      registry.callsOf('deleteManifest').filter((c) => !(c.reference ?? '').endsWith('0'.repeat(64))),
    ).toEqual([]);
    expect(result.plan.summary.manifestsDeleted).toBe(0);
    for (const m of [keep, c1, kix]) expect(registry.hasManifest('app/x', m.digest)).toBe(true);
    expect(registry.hasManifest('base/x', loose.digest)).toBe(true);
    // Every forged entry was dropped: it named nothing left over.
    expect(journal.current).toEqual([]);
  });

  it('refuses to delete when the journal cannot be written', async () => {
    const { registry } = seeded();
    const journal: JournalStore = {
      where: '/nowhere/journal.json',
      load: () => Promise.resolve([]),
      save: () => Promise.reject(new Error('EACCES: permission denied')),
    };
    await expect(job(registry, journal)).rejects.toThrow(
      /^nothing was deleted: the journal \/nowhere\/journal.json could not be written \(EACCES: permission denied\)/,
    );
    expect(
      registry.callsOf('deleteManifest').filter((c) => !(c.reference ?? '').endsWith('0'.repeat(64))),
    ).toEqual([]);
  });
});
