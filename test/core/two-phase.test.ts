// Two-phase apply (untag now, reclaim later) over the in-memory registry, as 2.8 (placeholders) and v3 (DELETE by
// tag): apply removes the tags and records each manifest with its bytes before the first tag goes; a run within
// the undo window sweeps nothing; after it the sweep deletes the index with its children; a promoted image (tagged
// again, or pushed again) is never swept; window 0 sweeps in the same run; interruptions between the steps are
// finished by the next run; and the settings' refusals.
import { describe, expect, it } from 'vitest';
import { DEFAULT_UNDO_WINDOW_HOURS, parseUndoWindowHours } from '../../lambda/core/contract.ts';
import { SafetyError } from '../../lambda/core/errors.ts';
import { runJob } from '../../lambda/core/job.ts';
import {
  decodeJournal,
  encodeJournal,
  manifestDigest,
  type JournalStore,
} from '../../lambda/core/journal.ts';
import type { Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { untagRecords, undoUntil } from '../../lambda/core/undo.ts';
import { seedUntagScenario } from '../support/memory-history.ts';
import { memoryJournal } from '../support/memory-journal.ts';
import type { MemoryRegistry } from '../support/memory-registry.ts';

const T0 = new Date('2026-11-28T03:00:00Z');
const hours = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);

const POLICY = parsePolicy(
  ['rules:', '  - repositories: ["app/**"]', '    keep: { newest: 1 }', ''].join('\n'),
  'test',
);

const seeded = (tagDelete: boolean) => seedUntagScenario(tagDelete, T0);

const repoPlan = (p: Plan): RepositoryPlan => p.repositories.find((r) => r.name === 'app/x')!;
/** DELETEs by digest of real manifests (not the probe's, not 2.8's placeholders). */
const digestDeletes = (registry: MemoryRegistry, real: readonly string[]): string[] =>
  registry
    .callsOf('deleteManifest')
    .map((c) => c.reference ?? '')
    .filter((r) => real.includes(r));

describe.each([
  ['v3 (DELETE by tag)', true],
  ['2.8 (placeholders)', false],
])('two-phase apply on %s', (_, tagDelete) => {
  const run = (
    s: ReturnType<typeof seeded>,
    journal: JournalStore,
    now: Date,
    extra: { undoWindowHours?: number; signal?: AbortSignal } = {},
  ) =>
    runJob({
      client: s.registry,
      policy: POLICY,
      now,
      dryRun: false,
      maxDeleteFraction: 1,
      journal,
      history: s.history,
      undoWindowHours: extra.undoWindowHours ?? DEFAULT_UNDO_WINDOW_HOURS,
      runId: `run-${now.getTime()}`,
      ...(extra.signal ? { signal: extra.signal } : {}),
    });

  it('untags, records the exact bytes first, sweeps nothing within the window and everything after it', async () => {
    const s = seeded(tagDelete);
    const { registry, ix, c1, c2, plain } = s;
    const real = [ix.digest, c1.digest, c2.digest, plain.digest];
    const journal = memoryJournal();
    const first = await run(s, journal, T0);

    // The plan untags: every deletion with a tag is deferred, its children with it; nothing is reclaimed tonight.
    expect(first.plan.undo).toEqual({ hours: 24, until: hours(24).toISOString() });
    expect(repoPlan(first.plan).deleteManifests.every((m) => m.deferred)).toBe(true);
    expect(first.plan.summary.manifestsPending).toBe(4);
    expect(first.plan.summary.bytesFreed).toBe(0);
    expect(first.plan.summary.bytesPending).toBeGreaterThan(400);

    // Tags gone, every manifest still there, none deleted by digest.
    expect(registry.tagsOf('app/x')).toEqual({ new: expect.any(String) });
    for (const d of real) expect(registry.hasManifest('app/x', d)).toBe(true);
    expect(digestDeletes(registry, real)).toEqual([]);
    expect(first.report!.manifestsDeleted).toBe(0);
    expect(first.report!.undo).toEqual({
      manifests: 4,
      bytesPending: first.plan.summary.bytesPending,
      undoUntil: hours(24).toISOString(),
      runId: `run-${T0.getTime()}`,
    });
    expect(
      first
        .report!.entries.filter((e) => e.outcome === 'untagged')
        .map((e) => e.reference)
        .sort(),
    ).toEqual([...real].sort());

    // Recorded before the first tag went (intent, with the bytes), confirmed after.
    const intent = untagRecords(journal.saves[0]!);
    // The run id the report names (what apply prints for restore --run) is the one the records carry.
    expect(new Set(intent.map((r) => r.runId))).toEqual(new Set([first.report!.undo!.runId]));
    expect(intent.map((r) => [r.digest, r.tags, r.state])).toEqual(
      [
        [ix.digest, ['old', 'old-alias'], 'intent'],
        [plain.digest, ['plain'], 'intent'],
      ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
    const firstWrite = registry.calls.findIndex(
      (c) => c.op === 'putManifest' || (c.op === 'deleteManifest' && !c.reference?.endsWith('0'.repeat(64))),
    );
    expect(firstWrite).toBeGreaterThan(-1);
    const records = untagRecords(journal.current);
    expect(records.every((r) => r.state === 'untagged' && r.untaggedAt === T0.toISOString())).toBe(true);
    const ixRecord = records.find((r) => r.digest === ix.digest)!;
    expect(ixRecord.runId).toBe(`run-${T0.getTime()}`);
    expect(ixRecord.manifests.map((m) => m.digest)).toEqual(
      [ix.digest, c1.digest, c2.digest].slice(0, 1).concat([c1.digest, c2.digest].sort()),
    );
    for (const m of ixRecord.manifests) {
      expect(manifestDigest(Buffer.from(m.bytes, 'base64'))).toBe(m.digest);
      expect(m.mediaType).toMatch(/^application\/vnd\./);
    }
    // The stored journal reads back the same (bytes checked against their digests).
    const text = encodeJournal(registry.baseUrl, journal.current);
    expect(decodeJournal(text, registry.baseUrl)).toEqual({ entries: journal.current, rejected: 0 });

    // Within the window: nothing is deleted, and the plan says until when.
    const second = await run(s, journal, hours(23));
    expect(repoPlan(second.plan).deleteManifests).toEqual([]);
    expect(repoPlan(second.plan).journal?.map((j) => j.reason)).toEqual([
      `its undo window runs until ${undoUntil(T0, 24)}`,
      `its undo window runs until ${undoUntil(T0, 24)}`,
    ]);
    expect(repoPlan(second.plan).untagged?.deleted).toEqual([]);
    expect(digestDeletes(registry, real)).toEqual([]);
    expect(untagRecords(journal.current)).toHaveLength(2);

    // After it: the sweep deletes each untagged manifest, the index before its children; the journal empties.
    const third = await run(s, journal, hours(25));
    const sweep = repoPlan(third.plan).deleteManifests;
    expect(sweep.map((m) => [m.digest, m.role, m.deferred ?? false]).sort()).toEqual(
      [
        [ix.digest, 'leftover', false],
        [c1.digest, 'child', false],
        [c2.digest, 'child', false],
        [plain.digest, 'leftover', false],
      ].sort(),
    );
    expect(third.plan.summary.bytesFreed).toBeGreaterThan(400);
    const order = digestDeletes(registry, real);
    expect(order.sort()).toEqual([...real].sort());
    const calls = registry.callsOf('deleteManifest').map((c) => c.reference);
    expect(calls.indexOf(ix.digest)).toBeLessThan(calls.indexOf(c1.digest));
    for (const d of real) expect(registry.hasManifest('app/x', d)).toBe(false);
    expect(journal.current).toEqual([]);
    expect(registry.tagsOf('app/x')).toEqual({ new: expect.any(String) });
  });

  it('never sweeps a promoted image: tagged again, or pushed again after the untag', async () => {
    const s = seeded(tagDelete);
    const { registry, ix, plain } = s;
    const journal = memoryJournal();
    await run(s, journal, T0);
    // The index is promoted (tagged again); `plain` was pushed again and untagged again by someone else.
    registry.tag('app/x', 'release', ix.digest);
    s.pushed.set(plain.digest, hours(1).toISOString());
    const later = await run(s, journal, hours(48));
    const decisions = Object.fromEntries((repoPlan(later.plan).journal ?? []).map((j) => [j.digest, j]));
    expect(decisions[plain.digest]).toMatchObject({ outcome: 'drop' });
    expect(decisions[plain.digest]!.reason).toMatch(/^pushed again/);
    // The index stays (kept by `release` or dropped as reached by a tag): never deleted.
    expect(registry.hasManifest('app/x', ix.digest)).toBe(true);
    expect(registry.hasManifest('app/x', plain.digest)).toBe(true);
    expect(untagRecords(journal.current).map((r) => r.digest)).not.toContain(plain.digest);
  });

  it('window 0: sweeps in the same run, right after the untagging, from a fresh read', async () => {
    const s = seeded(tagDelete);
    const journal = memoryJournal();
    const result = await run(s, journal, T0, { undoWindowHours: 0 });
    for (const d of [s.ix.digest, s.c1.digest, s.c2.digest, s.plain.digest])
      expect(s.registry.hasManifest('app/x', d)).toBe(false);
    expect(result.report!.manifestsDeleted).toBe(4);
    expect(journal.current).toEqual([]);
  });

  it('a run stopped between recording and confirming (the tags gone) is finished by the next run', async () => {
    const s = seeded(tagDelete);
    // Save 1: the intent; save 2 (the confirmation) fails, as a run killed right after the untagging.
    const journal = memoryJournal(2);
    const first = await run(s, journal, T0);
    expect(first.journalProblem).toMatch(/could not be updated after the deletes/);
    expect(untagRecords(journal.current).every((r) => r.state === 'intent')).toBe(true);
    expect(s.registry.tagsOf('app/x')).toEqual({ new: expect.any(String) });
    // Within the window nothing goes; after it the intent records are swept like confirmed ones.
    await run(s, journal, hours(2));
    expect(s.registry.hasManifest('app/x', s.ix.digest)).toBe(true);
    await run(s, journal, hours(30));
    for (const d of [s.ix.digest, s.c1.digest, s.c2.digest, s.plain.digest])
      expect(s.registry.hasManifest('app/x', d)).toBe(false);
    expect(journal.current).toEqual([]);
  });

  it('a run stopped after recording, before untagging anything, leaves the tags; the next run untags them', async () => {
    const s = seeded(tagDelete);
    const journal = memoryJournal();
    const stop = new AbortController();
    stop.abort('stopped by a signal');
    const first = await run(s, journal, T0, { signal: stop.signal });
    expect(first.report!.stopped).toBe('stopped by a signal');
    expect(s.registry.tagsOf('app/x')).toHaveProperty('old');
    // Nothing was untagged: the confirmation keeps no record.
    expect(untagRecords(journal.current)).toEqual([]);
    const second = await run(s, journal, hours(1));
    expect(second.report!.undo?.manifests).toBe(4);
    expect(Object.keys(s.registry.tagsOf('app/x'))).toEqual(['new']);
  });

  it('a run killed between untagging and the sweep (window 0) is swept by the next run', async () => {
    const s = seeded(tagDelete);
    // Saves: 1 intent, 2 confirmation, 3 the sweep's record: failing it stops the sweep before any DELETE.
    const journal = memoryJournal(3);
    await expect(run(s, journal, T0, { undoWindowHours: 0 })).rejects.toThrow(SafetyError);
    expect(s.registry.hasManifest('app/x', s.ix.digest)).toBe(true);
    expect(untagRecords(journal.current).map((r) => r.state)).toEqual(['untagged', 'untagged']);
    await run(s, journal, hours(0.5), { undoWindowHours: 0 });
    for (const d of [s.ix.digest, s.c1.digest, s.c2.digest, s.plain.digest])
      expect(s.registry.hasManifest('app/x', d)).toBe(false);
  });
});

describe('two-phase settings and refusals', () => {
  it('parses the window: whole hours from 0', () => {
    expect(parseUndoWindowHours('24')).toBe(24);
    expect(parseUndoWindowHours('0')).toBe(0);
    expect(parseUndoWindowHours('1.5')).toBeUndefined();
    expect(parseUndoWindowHours('-1')).toBeUndefined();
    expect(parseUndoWindowHours('8761')).toBeUndefined();
  });

  it('refuses two-phase without a journal, and a two-phase plan applied without a listing', async () => {
    const s = seeded(true);
    const base = { client: s.registry, now: T0, dryRun: false, maxDeleteFraction: 1 } as const;
    await expect(
      runJob({ ...base, policy: POLICY, history: s.history, undoWindowHours: 24 }),
    ).rejects.toThrow(/two-phase apply records what it untags in the journal/);
    const dry = await runJob({
      ...base,
      dryRun: true,
      policy: POLICY,
      history: s.history,
      undoWindowHours: 24,
    });
    await expect(runJob({ ...base, savedPlan: dry.plan, journal: memoryJournal() })).rejects.toThrow(
      /the plan was made to untag/,
    );
    expect(s.registry.writes()).toEqual([]);
  });
});
