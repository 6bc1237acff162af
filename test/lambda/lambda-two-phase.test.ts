// The Lambda two-phase (a storage listing and the journal): the first run untags what the plan deletes and says
// until when it can be restored (the run id, the deadline, the restore payload) and counts ManifestsUntagged and
// BytesPendingSweep from the deletes' report; a run inside the undo window sweeps nothing; a run past it sweeps
// (ManifestsSwept); storage none, or no journal, deletes by digest and publishes none of the three.
import { describe, expect, it } from 'vitest';
import { METRICS } from '../../lambda/core/contract.ts';
import { runLambdaJob } from '../../lambda/lambda-job.ts';
import { configFor, context, memoryHistory, recorder, unusedRunner } from '../support/lambda-job.ts';
import { memoryJournal } from '../support/memory-journal.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const T0 = new Date('2026-11-28T03:00:00Z');
const hours = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);
const daysAgo = (n: number): string => new Date(T0.getTime() - n * 86_400_000).toISOString();

/** team1/app: v3 and v2 kept (newest 2), v1 (an index with its child) goes; base/img is protected. */
function seeded(tagDelete: boolean) {
  const registry = new MemoryRegistry({ tagDelete });
  registry.addImage('team1/app', 'v3', { created: daysAgo(1), layers: [{ seed: 'v3', size: 1_000 }] });
  registry.addImage('team1/app', 'v2', { created: daysAgo(2), layers: [{ seed: 'v2', size: 1_000 }] });
  const child = registry.addImage('team1/app', null, {
    created: daysAgo(30),
    architecture: 'amd64',
    layers: [{ seed: 'v1', size: 5_000 }],
  });
  const v1 = registry.addIndex('team1/app', 'v1', [child]);
  registry.addImage('base/img', '1.0', { created: daysAgo(400) });
  return { registry, v1, child };
}

function runAt(
  registry: MemoryRegistry,
  now: Date,
  options: { journal?: ReturnType<typeof memoryJournal>; env?: Record<string, string> } = {},
) {
  const rec = recorder();
  const result = runLambdaJob(
    {
      registry,
      runner: unusedRunner,
      logger: rec.logger,
      metrics: rec.metrics,
      now: () => now,
      history: memoryHistory(registry, {}, { otherwise: daysAgo(60) }),
      ...(options.journal ? { journal: () => options.journal! } : {}),
    },
    configFor(registry.baseUrl, { MAX_DELETE_FRACTION: '1', ...options.env }),
    { trigger: 'manual', skipGc: true },
    context,
  );
  return { rec, result };
}

describe.each([
  ['2.8 (placeholder)', false],
  ['v3 (DELETE by tag)', true],
])('the Lambda two-phase on %s', (_kind, tagDelete) => {
  it('untags tonight, says until when it can be restored, and sweeps after the window', async () => {
    const { registry, v1, child } = seeded(tagDelete);
    const journal = memoryJournal();

    const first = runAt(registry, T0, { journal });
    const report = await first.result;
    expect(registry.tagsOf('team1/app')).not.toHaveProperty('v1');
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(true);
    expect(registry.hasManifest('team1/app', child.digest)).toBe(true);
    const undo = report.deletions?.undo;
    // The index and the child that goes with it.
    expect(undo).toMatchObject({ manifests: 2, undoUntil: hours(24).toISOString() });
    expect(undo!.bytesPending).toBeGreaterThan(5_000);
    expect(first.rec.metric(METRICS.manifestsUntagged)).toEqual([2]);
    expect(first.rec.metric(METRICS.bytesPending)).toEqual([undo!.bytesPending]);
    expect(first.rec.metric(METRICS.manifestsSwept)).toEqual([0]);
    // The log says which run, until when, and the payload that undoes it.
    const line = first.rec.logs.find((l) => l.message.includes('restorable until'));
    expect(line?.message).toBe(`untagged 2 manifests: restorable until ${hours(24).toISOString()}`);
    const logged = line?.attributes.undo as Record<string, unknown>;
    expect(logged.runId).toBe(undo!.runId);
    expect(logged.restorePayload).toBe(JSON.stringify({ restore: { run: undo!.runId } }));
    expect(journal.current.filter((e) => e.untag?.runId === undo!.runId).map((e) => e.digest)).toEqual([
      v1.digest,
    ]);

    // Inside the window: nothing swept.
    const within = runAt(registry, hours(23), { journal });
    await within.result;
    expect(within.rec.metric(METRICS.manifestsSwept)).toEqual([0]);
    expect(within.rec.metric(METRICS.manifestsUntagged)).toEqual([0]);
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(true);

    // Past it: the index goes with its child, and the sweep counts both.
    const after = runAt(registry, hours(25), { journal });
    const swept = await after.result;
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(false);
    expect(registry.hasManifest('team1/app', child.digest)).toBe(false);
    expect(after.rec.metric(METRICS.manifestsSwept)).toEqual([2]);
    expect(after.rec.metric(METRICS.manifestsDeleted)).toEqual([2]);
    expect(after.rec.metric(METRICS.manifestsUntagged)).toEqual([0]);
    expect(swept.deletions?.undo).toBeUndefined();
    expect(Object.keys(registry.tagsOf('team1/app')).sort()).toEqual(['v2', 'v3']);
  });

  it('honours UNDO_WINDOW_HOURS: 0 sweeps in the same run', async () => {
    const { registry, v1, child } = seeded(tagDelete);
    const run = runAt(registry, T0, { journal: memoryJournal(), env: { UNDO_WINDOW_HOURS: '0' } });
    await run.result;
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(false);
    expect(registry.hasManifest('team1/app', child.digest)).toBe(false);
    expect(run.rec.metric(METRICS.manifestsUntagged)).toEqual([2]);
    expect(run.rec.metric(METRICS.manifestsSwept)).toEqual([2]);
  });
});

describe('the Lambda deletes by digest', () => {
  it('with storage none: no untagging, none of the two-phase metrics', async () => {
    const { registry, v1 } = seeded(true);
    const run = runAt(registry, T0, { journal: memoryJournal(), env: { HISTORY_STORAGE: 'none' } });
    const report = await run.result;
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(false);
    expect(report.deletions?.undo).toBeUndefined();
    for (const name of [METRICS.manifestsUntagged, METRICS.bytesPending, METRICS.manifestsSwept])
      expect(run.rec.metric(name)).toEqual([]);
  });

  it('without the journal, and says why two-phase is off and how to fix it', async () => {
    const { registry, v1 } = seeded(true);
    const run = runAt(registry, T0);
    await run.result;
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(false);
    expect(run.rec.metric(METRICS.manifestsUntagged)).toEqual([]);
    expect(run.rec.logs.filter((l) => l.level === 'warn').map((l) => l.message)).toContainEqual(
      expect.stringContaining('two-phase apply is off: it records what it untags in the journal'),
    );
  });

  it('on a dry run, publishing zeros for the two-phase metrics', async () => {
    const { registry, v1 } = seeded(true);
    const run = runAt(registry, T0, { journal: memoryJournal(), env: { DRY_RUN: 'true' } });
    await run.result;
    expect(registry.hasManifest('team1/app', v1.digest)).toBe(true);
    expect(registry.tagsOf('team1/app')).toHaveProperty('v1');
    for (const name of [METRICS.manifestsUntagged, METRICS.bytesPending, METRICS.manifestsSwept])
      expect(run.rec.metric(name)).toEqual([0]);
  });
});
