// The sweep's re-check right before each DELETE by digest (core/executor.ts), over the in-memory registry as 2.8
// and v3: a promotion pushed after the repository's re-check and before the DELETE (it rewrites the revision link)
// keeps its image; a child promoted, or its index pushed again, after the index's DELETE keeps the child; a
// revision already gone is not deleted again; a lookup that fails deletes nothing. Without a point lookup, the
// tags are re-checked before each chunk of DELETEs. Each hook lands a promotion where the repository's re-check
// cannot see it any more.
import { describe, expect, it } from 'vitest';
import type { HistorySource } from '../../lambda/core/history.ts';
import { runJob, type JobStage } from '../../lambda/core/job.ts';
import type { ReportEntry } from '../../lambda/core/model.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { RegistryClient } from '../../lambda/core/ports.ts';
import { seedUntagScenario } from '../support/memory-history.ts';
import { memoryJournal } from '../support/memory-journal.ts';

const T0 = new Date('2026-11-28T03:00:00Z');
const hours = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);

const POLICY = parsePolicy(
  ['rules:', '  - repositories: ["app/**"]', '    keep: { newest: 1, tags: ["release*"] }', ''].join('\n'),
  'test',
);

/** What a run untags at T0 (test/support/memory-history.ts), listed with or without the point lookup. */
const seeded = (tagDelete: boolean, lookup: boolean, lookupFails?: () => boolean) =>
  seedUntagScenario(tagDelete, T0, { lookup, ...(lookupFails ? { lookupFails } : {}) });

type Seeded = ReturnType<typeof seeded>;

/**
 * The registry as the sweep sees it, with a hook: `afterRecheckListing` runs once the first tag listing of the
 * deletes (the repository's re-check) has been answered; `afterDelete` once a DELETE was answered.
 */
function hooked(
  s: Seeded,
  hooks: { afterRecheckListing?: () => void; afterDelete?: (reference: string) => void },
): { client: RegistryClient; onStage: (stage: JobStage) => void } {
  let deletes = false;
  let listed = false;
  const client = new Proxy(s.registry, {
    get(target, key, receiver) {
      if (key === 'listTags') {
        return async (repository: string) => {
          const tags = await target.listTags(repository);
          if (deletes && !listed) {
            listed = true;
            hooks.afterRecheckListing?.();
          }
          return tags;
        };
      }
      if (key === 'deleteManifest') {
        return async (repository: string, reference: string) => {
          const outcome = await target.deleteManifest(repository, reference);
          if (deletes) hooks.afterDelete?.(reference);
          return outcome;
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client, onStage: (stage) => void (deletes ||= stage === 'deletes') };
}

async function night(
  s: Seeded,
  journal: ReturnType<typeof memoryJournal>,
  now: Date,
  hook?: ReturnType<typeof hooked>,
  history: HistorySource = s.history,
) {
  return runJob({
    client: hook?.client ?? s.registry,
    ...(hook ? { onStage: hook.onStage } : {}),
    policy: POLICY,
    now,
    dryRun: false,
    maxDeleteFraction: 1,
    journal,
    history,
    undoWindowHours: 24,
    runId: `run-${now.getTime()}`,
  });
}

/** Untagged at T0; the night after the window, with the hook. */
async function sweepWith(s: Seeded, hook: ReturnType<typeof hooked>) {
  const journal = memoryJournal();
  await night(s, journal, T0);
  expect(Object.keys(s.registry.tagsOf('app/x'))).toEqual(['new']);
  const swept = await night(s, journal, hours(25), hook);
  const byDigest = new Map<string, ReportEntry>(
    (swept.report?.entries ?? []).filter((e) => e.target === 'manifest').map((e) => [e.reference, e]),
  );
  return { swept, byDigest, journal };
}

/** A promotion: the same manifest PUT under a new tag, which rewrites its revision link now. */
function promote(s: Seeded, tag: string, digest: string, at: Date): void {
  s.registry.tag('app/x', tag, digest);
  s.pushed.set(digest, at.toISOString());
}

describe.each([
  ['v3 (DELETE by tag)', true],
  ['2.8 (placeholders)', false],
])('the sweep on %s, looked up right before each DELETE', (_, tagDelete) => {
  it('keeps an image promoted after the repository re-check listed its tags, and says it was pushed again', async () => {
    const s = seeded(tagDelete, true);
    const hook = hooked(s, {
      afterRecheckListing: () => promote(s, 'release-1', s.plain.digest, hours(25)),
    });
    const { byDigest, journal } = await sweepWith(s, hook);
    // The re-check saw the tags as planned (the new tag came after its listing), so only the lookup stops it.
    expect(byDigest.get(s.plain.digest)).toMatchObject({ outcome: 'skipped' });
    expect(byDigest.get(s.plain.digest)!.reason).toMatch(
      /^pushed again \(.*\) since it was untagged .*promoted it/,
    );
    expect(s.registry.tagsOf('app/x')['release-1']).toBe(s.plain.digest);
    expect(s.registry.hasManifest('app/x', s.plain.digest)).toBe(true);
    // The rest is swept.
    for (const d of [s.ix.digest, s.c1.digest, s.c2.digest])
      expect(s.registry.hasManifest('app/x', d)).toBe(false);
    // One lookup per DELETE, and for each child one more of the index deleted before it: 2 + 2 × 2.
    expect(s.history.lookups.sort()).toEqual(
      [s.ix.digest, s.plain.digest, s.c1.digest, s.ix.digest, s.c2.digest, s.ix.digest].sort(),
    );
    // The next night drops it: a tag points at it again.
    await night(s, journal, hours(50));
    expect(s.registry.hasManifest('app/x', s.plain.digest)).toBe(true);
  });

  it('keeps a platform image promoted after its index was deleted, and its sibling goes', async () => {
    const s = seeded(tagDelete, true);
    const hook = hooked(s, {
      afterDelete: (ref) => {
        if (ref === s.ix.digest) promote(s, 'release-arm', s.c1.digest, hours(25));
      },
    });
    const { byDigest } = await sweepWith(s, hook);
    expect(byDigest.get(s.ix.digest)).toMatchObject({ outcome: 'deleted' });
    expect(byDigest.get(s.c1.digest)).toMatchObject({ outcome: 'skipped' });
    expect(byDigest.get(s.c1.digest)!.reason).toMatch(/^pushed again/);
    expect(s.registry.tagsOf('app/x')['release-arm']).toBe(s.c1.digest);
    expect(s.registry.hasManifest('app/x', s.c2.digest)).toBe(false);
  });

  it('keeps the children when their index was pushed again after its DELETE', async () => {
    const s = seeded(tagDelete, true);
    const hook = hooked(s, {
      afterDelete: (ref) => {
        if (ref !== s.ix.digest) return;
        expect(s.registry.addIndex('app/x', 'release-2', [s.c1, s.c2]).digest).toBe(s.ix.digest);
        s.pushed.set(s.ix.digest, hours(25).toISOString());
      },
    });
    const { byDigest } = await sweepWith(s, hook);
    for (const c of [s.c1.digest, s.c2.digest]) {
      expect(byDigest.get(c)).toMatchObject({ outcome: 'skipped' });
      expect(byDigest.get(c)!.reason).toContain(
        `${s.ix.digest}, deleted first in this run, was pushed again`,
      );
      expect(s.registry.hasManifest('app/x', c)).toBe(true);
    }
  });

  it('sends no DELETE for a revision already gone at its lookup', async () => {
    const s = seeded(tagDelete, true);
    const hook = hooked(s, { afterRecheckListing: () => s.registry.dropManifest('app/x', s.plain.digest) });
    const { byDigest } = await sweepWith(s, hook);
    expect(byDigest.get(s.plain.digest)).toMatchObject({ outcome: 'already-gone' });
    expect(s.registry.callsOf('deleteManifest').map((c) => c.reference)).not.toContain(s.plain.digest);
  });

  it('deletes nothing it could not look up, and reports it failed', async () => {
    let failing = false;
    const s = seeded(tagDelete, true, () => failing);
    const hook = hooked(s, { afterRecheckListing: () => void (failing = true) });
    const { byDigest } = await sweepWith(s, hook);
    expect(byDigest.get(s.plain.digest)).toMatchObject({ outcome: 'failed' });
    expect(byDigest.get(s.plain.digest)!.reason).toMatch(/whether it was pushed again failed \(AccessDenied/);
    for (const d of [s.ix.digest, s.plain.digest]) expect(s.registry.hasManifest('app/x', d)).toBe(true);
  });
});

describe.each([
  ['v3 (DELETE by tag)', true],
  ['2.8 (placeholders)', false],
])('the sweep on %s from a listing without a point lookup', (_, tagDelete) => {
  it('re-checks the tags before each chunk: a child promoted after its index went is kept', async () => {
    const s = seeded(tagDelete, false);
    const hook = hooked(s, {
      afterDelete: (ref) => {
        if (ref === s.ix.digest) promote(s, 'release-arm', s.c1.digest, hours(25));
      },
    });
    const lists = () => s.registry.callsOf('listTags').length;
    const { byDigest, swept } = await sweepWith(s, hook);
    expect(swept.report?.manifestsDeleted).toBe(2);
    for (const c of [s.c1.digest, s.c2.digest]) {
      expect(byDigest.get(c)).toMatchObject({ outcome: 'skipped' });
      expect(byDigest.get(c)!.reason).toMatch(
        /^not deleted: re-checked right before its DELETE, the repository changed/,
      );
    }
    expect(s.registry.tagsOf('app/x')['release-arm']).toBe(s.c1.digest);
    expect(lists()).toBeGreaterThan(0);
  });

  it('costs one tag listing and a HEAD of every tag per further chunk, nothing when one chunk holds it all', async () => {
    const s = seeded(tagDelete, false);
    const journal = memoryJournal();
    await night(s, journal, T0);
    const before = {
      lists: s.registry.callsOf('listTags').length,
      heads: s.registry.callsOf('headManifest').length,
    };
    await night(s, journal, hours(25));
    // The scan's listing, the repository's re-check, and one more before the children's level (tags: `new`).
    expect(s.registry.callsOf('listTags').length - before.lists).toBe(3);
    const headsOfTags = s.registry
      .callsOf('headManifest')
      .slice(before.heads)
      .filter((c) => c.reference === 'new');
    expect(headsOfTags).toHaveLength(2);
    for (const d of [s.ix.digest, s.c1.digest, s.c2.digest, s.plain.digest])
      expect(s.registry.hasManifest('app/x', d)).toBe(false);
  });
});
