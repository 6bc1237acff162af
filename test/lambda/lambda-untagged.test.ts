// The Lambda's untagged history, counted apart from the tags: what it logs and publishes when its history source
// lists the storage (an in-memory registry's revisions here; whatever source the function gets, the figures come
// from the plan and the deletes' report), when a delete of history fails, on a dry run, when the listing fails,
// and without a listing.
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../lambda/core/errors.ts';
import { METRICS } from '../../lambda/core/contract.ts';
import { runLambdaJob, type LambdaRunReport } from '../../lambda/lambda-job.ts';
import { configFor, context, memoryHistory, recorder, unusedRunner } from '../support/lambda-job.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const NOW = new Date('2026-03-01T00:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const POLICY = JSON.stringify({
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['team1/**'], keep: { newest: 2 }, untagged: { deleteAfterDays: 14 } },
  ],
});

/**
 * team1/app: v1, v2 and main (newest 2 kept, so v1 goes) and `main` pushed three times: its current image is tagged, an
 * earlier push 40 days ago is expired history (with a layer of its own), one 3 days ago is young. base/img:
 * protected, with old history of its own that must stay.
 */
function seeded() {
  const registry = new MemoryRegistry();
  for (const [i, tag] of ['v1', 'v2'].entries()) {
    registry.addImage('team1/app', tag, {
      created: `2026-01-0${i + 1}T00:00:00Z`,
      layers: [{ seed: `app-${tag}`, size: 3_000 }],
    });
  }
  registry.addImage('team1/app', 'main', { created: '2026-02-27T00:00:00Z' });
  const expired = registry.addImage('team1/app', null, {
    created: '2026-01-20T00:00:00Z',
    label: 'main-push-1',
    layers: [{ seed: 'main-1', size: 7_000 }],
  });
  const young = registry.addImage('team1/app', null, {
    created: '2026-02-25T00:00:00Z',
    label: 'main-push-2',
  });
  registry.addImage('base/img', '1.0', { created: '2025-01-01T00:00:00Z' });
  const baseHistory = registry.addImage('base/img', null, { created: '2024-01-01T00:00:00Z', label: 'b' });
  const pushed = {
    [expired.digest]: daysAgo(40),
    [young.digest]: daysAgo(3),
    [baseHistory.digest]: daysAgo(400),
  };
  return { registry, expired, young, baseHistory, pushed };
}

function run(
  registry: MemoryRegistry,
  options: { history?: ReturnType<typeof memoryHistory>; dryRun?: boolean } = {},
) {
  const rec = recorder();
  const result = runLambdaJob(
    {
      registry,
      runner: unusedRunner,
      logger: rec.logger,
      metrics: rec.metrics,
      now: () => NOW,
      ...(options.history ? { history: options.history } : {}),
    },
    configFor(registry.baseUrl, {
      RETENTION_POLICY: POLICY,
      MAX_DELETE_FRACTION: '1',
      DRY_RUN: options.dryRun ? 'true' : 'false',
    }),
    { trigger: 'manual', skipGc: true },
    context,
  );
  return { rec, result };
}

describe('the Lambda reports untagged history apart from the tags', () => {
  it('logs each untagged deletion with its push time, and publishes planned, deleted, failed and bytes', async () => {
    const { registry, expired, young, baseHistory, pushed } = seeded();
    const { rec, result } = run(registry, { history: memoryHistory(registry, pushed) });
    const report: LambdaRunReport = await result;

    // The expired push went, by digest; the young one and the protected repository's history stayed.
    expect(registry.hasManifest('team1/app', expired.digest)).toBe(false);
    expect(registry.hasManifest('team1/app', young.digest)).toBe(true);
    expect(registry.hasManifest('base/img', baseHistory.digest)).toBe(true);
    expect(Object.keys(registry.tagsOf('team1/app'))).toEqual(['main', 'v2']);

    const plan = rec.logs.find((l) => l.message === 'plan')!.attributes.plan;
    expect(plan).toMatchObject({
      tagsDeleted: 1,
      manifestsDeleted: 2,
      untaggedDeleted: 1,
      untaggedKept: 2,
      history: { source: 'memory:/var/lib/registry', complete: true },
    });
    const bytes = (plan as { untaggedBytesFreed: number }).untaggedBytesFreed;
    // The expired image's own layer (7,000 bytes), its config and its manifest; nothing of v1's.
    expect(bytes).toBeGreaterThan(7_000);
    expect(bytes).toBeLessThan(8_000);

    const repoEntry = rec.logs.find(
      (l) => l.message === 'plan: repository' && l.attributes.repository === 'team1/app',
    )!.attributes;
    expect(repoEntry).toMatchObject({
      deleteTags: [{ tag: 'v1', method: 'manifest' }],
      deleteUntagged: [{ digest: expired.digest, kind: 'image', pushedAt: daysAgo(40) }],
      untagged: { deleted: 1, kept: 1, bytesFreed: bytes },
      childrenAndReferrers: [],
    });
    const deletedEntry = rec.logs.find((l) => l.message === 'deleted: repository')!.attributes;
    expect(deletedEntry.entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ reference: expired.digest, outcome: 'deleted', untagged: true }),
        expect.objectContaining({ tags: ['v1'], outcome: 'deleted' }),
      ]),
    );
    expect(
      (deletedEntry.entries as { tags?: string[]; untagged?: boolean }[]).find((e) => e.tags?.[0] === 'v1'),
    ).not.toHaveProperty('untagged');

    expect(report.deletions).toMatchObject({
      tagsDeleted: 1,
      manifestsDeleted: 2,
      untagged: {
        planned: 1,
        deleted: 1,
        failed: 0,
        skipped: 0,
        bytesFreedEstimate: bytes,
        plannedBytes: bytes,
      },
    });
    expect(rec.metric(METRICS.untaggedPlanned)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedDeleted)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedFailures)).toEqual([0]);
    expect(rec.metric(METRICS.untaggedBytesFreed)).toEqual([bytes]);
    expect(rec.metric(METRICS.historyListingFailures)).toEqual([0]);
    // The totals still count everything, history included.
    expect(rec.metric(METRICS.manifestsDeleted)).toEqual([2]);
    expect(rec.metric(METRICS.tagsDeleted)).toEqual([1]);
  });

  it('counts a failed delete of history as a failure, frees none of its bytes, and fails the run', async () => {
    const { registry, expired, pushed } = seeded();
    registry.fail('deleteManifest', new RegistryError('DELETE answered 500', { status: 500 }), {
      reference: expired.digest,
    });
    const { rec, result } = run(registry, { history: memoryHistory(registry, pushed) });
    await expect(result).rejects.toThrow(/1 deletion failed, e\.g\. team1\/app sha256:/);
    expect(registry.hasManifest('team1/app', expired.digest)).toBe(true);
    const failed = rec.logs.find((l) => l.message.startsWith('run failed'))!.attributes.report;
    expect(failed).toMatchObject({
      deletions: { untagged: { planned: 1, deleted: 0, failed: 1, bytesFreedEstimate: 0 } },
    });
    expect(rec.metric(METRICS.untaggedPlanned)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedDeleted)).toEqual([0]);
    expect(rec.metric(METRICS.untaggedFailures)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedBytesFreed)).toEqual([0]);
  });

  it('a dry run publishes what it would delete of the history, and zeros for what it deleted', async () => {
    const { registry, pushed } = seeded();
    const { rec, result } = run(registry, { history: memoryHistory(registry, pushed), dryRun: true });
    await expect(result).resolves.toMatchObject({ dryRun: true, deletions: null });
    expect(registry.writes()).toEqual([]);
    expect(rec.metric(METRICS.untaggedPlanned)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedDeleted)).toEqual([0]);
    expect(rec.metric(METRICS.untaggedBytesFreed)).toEqual([0]);
  });

  it('a failed listing is published and logged; the tags are cleaned as without one and no history goes', async () => {
    const { registry, expired, pushed } = seeded();
    const history = memoryHistory(registry, pushed, { fail: 'ssm: the listing command timed out' });
    const { rec, result } = run(registry, { history });
    await expect(result).resolves.toMatchObject({ deletions: { tagsDeleted: 1, manifestsDeleted: 1 } });
    expect(registry.hasManifest('team1/app', expired.digest)).toBe(true);
    expect(rec.logs.find((l) => l.message === 'plan')!.attributes.plan).toMatchObject({
      history: { complete: false, problem: 'ssm: the listing command timed out' },
    });
    expect(rec.metric(METRICS.historyListingFailures)).toEqual([1]);
    expect(rec.metric(METRICS.untaggedPlanned)).toEqual([0]);
    expect(rec.metric(METRICS.untaggedDeleted)).toEqual([0]);
  });

  it('without a listing publishes no untagged metric and leaves history alone', async () => {
    const { registry, expired } = seeded();
    const { rec, result } = run(registry);
    await expect(result).resolves.toMatchObject({ deletions: { tagsDeleted: 1, manifestsDeleted: 1 } });
    expect(registry.hasManifest('team1/app', expired.digest)).toBe(true);
    for (const name of [
      METRICS.untaggedPlanned,
      METRICS.untaggedDeleted,
      METRICS.untaggedFailures,
      METRICS.untaggedBytesFreed,
      METRICS.historyListingFailures,
    ])
      expect(rec.metric(name)).toEqual([]);
    expect(rec.logs.find((l) => l.message === 'plan')!.attributes.plan).not.toHaveProperty('history');
  });
});
