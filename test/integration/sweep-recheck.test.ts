// The sweep's lookup right before each DELETE, on real 2.8 and v3 registries with filesystem storage: a night
// untags (two-phase, window 24 h), the next night (every push and journal time moved 25 h back) sweeps, and a CI
// job promotes two of the images it sweeps where the repository's re-check can no longer see it: one right after
// the re-check's tag listing was answered (before any HEAD or DELETE), and a platform image right after its
// index's DELETE was answered. Both were in the night's plan; both are kept, reported pushed again, and served
// whole after garbage-collect and a restart, while everything nobody promoted is reclaimed and nothing kept is lost.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { fileJournal } from '../../lambda/adapters/journal-file.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import type { HistorySource } from '../../lambda/core/history.ts';
import { runJob, type JobResult } from '../../lambda/core/job.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { notReclaimed, readCandidate, whyNotServed, type Candidate } from '../support/promoter.ts';
import { RACE_POLICY, raceCandidates, seedRaceScenario } from '../support/race-scenario.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { shiftJsonFile, shiftStorage } from '../support/time-shift.ts';

const HOUR = 3_600_000;

describeEachRegistry('the sweep looks each digest up right before its DELETE', ({ kind }) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** A night of the job through the proxy, as the CLI wires it; `onPlan` runs once the plan is made. */
  async function night(
    proxy: FaultProxy,
    dir: string,
    history: HistorySource,
    onPlan?: () => void,
  ): Promise<JobResult> {
    const client = createRegistryClient({ url: proxy.url });
    const warnings: string[] = [];
    try {
      return await runJob({
        client,
        policy: RACE_POLICY,
        history,
        journal: fileJournal(join(dir, 'journal.json'), {
          registry: proxy.url,
          warn: (m) => warnings.push(m),
        }),
        undoWindowHours: 24,
        now: new Date(),
        dryRun: false,
        maxDeleteFraction: 1,
        ...(onPlan ? { onPlan } : {}),
      });
    } finally {
      await client.close();
      expect(warnings).toEqual([]);
    }
  }

  it('keeps an image promoted after its repository was re-checked, and a platform image promoted after its index was deleted; reclaims the rest', async () => {
    const registry = await startRegistry(kind);
    cleanup.push(() => registry.dispose());
    const proxy = await startFaultProxy(registry.url);
    cleanup.push(() => proxy.close());
    const dir = mkdtempSync(join(tmpdir(), 'rj-sweepcheck-'));
    cleanup.push(() => Promise.resolve(rmSync(dir, { recursive: true, force: true })));
    await seedRaceScenario(registry.url, 'sweepcheck');
    shiftStorage(registry.storageDir, 2 * HOUR);
    const fs = filesystemHistory(registry.storageDir);
    const lookups: string[] = [];
    const history: HistorySource = {
      ...fs,
      revisionTime: (repository, digest) => {
        lookups.push(`${repository}@${digest}`);
        return fs.revisionTime!(repository, digest);
      },
    };

    const untagged = await night(proxy, dir, history);
    expect(untagged.report?.undo?.manifests).toBe(4 * 8 + 2 * 3);
    const { candidates, kept } = await raceCandidates(registry.url, untagged.plan);
    // The image promoted after the re-check, and the platform image promoted after its index's DELETE.
    const image = candidates.find((c) => c.repository === 'app/r1')!;
    const multi = untagged.plan.repositories.find((r) => r.name === 'app/multi')!;
    const child = multi.deleteManifests.find((m) => m.role === 'child')!;
    const index = child.after[0]!;
    const platform: Candidate = await readCandidate(registry.url, 'app/multi', child.digest, []);

    shiftStorage(registry.storageDir, 25 * HOUR);
    shiftJsonFile(join(dir, 'journal.json'), 25 * HOUR);
    let planned = false;
    const promoted: { candidate: Candidate; tag: string; status: number }[] = [];
    const promote = async (candidate: Candidate, tag: string): Promise<void> => {
      const res = await fetch(`${registry.url}/v2/${candidate.repository}/manifests/${tag}`, {
        method: 'PUT',
        body: candidate.bytes,
        headers: { 'content-type': candidate.mediaType },
      });
      await res.arrayBuffer();
      promoted.push({ candidate, tag, status: res.status });
    };
    // Held in the proxy: the janitor hears each answer only once the promotion is in.
    proxy.observe({
      response: async (key) => {
        if (!planned) return;
        if (key.startsWith('GET /v2/app/r1/tags/list') && promoted.every((p) => p.candidate !== image))
          await promote(image, 'release-sweep');
        if (key === `DELETE /v2/app/multi/manifests/${index}`) await promote(platform, 'release-arm');
      },
    });
    const from = { seen: proxy.seen.length, lookups: lookups.length };
    const swept = await night(proxy, dir, history, () => void (planned = true));
    proxy.observe(undefined);

    expect(promoted.map((p) => [p.tag, p.status])).toEqual(
      expect.arrayContaining([
        ['release-sweep', 201],
        ['release-arm', 201],
      ]),
    );
    // Both were in the plan (the promotions came after planning) and were stopped by the lookup only.
    const sweepOf = (repo: string): Plan['repositories'][number]['deleteManifests'] =>
      swept.plan.repositories.find((r) => r.name === repo)!.deleteManifests;
    expect(sweepOf('app/r1').map((m) => m.digest)).toContain(image.digest);
    expect(sweepOf('app/multi').map((m) => m.digest)).toEqual(expect.arrayContaining([index, child.digest]));
    const entry = (digest: string) => swept.report!.entries.find((e) => e.reference === digest)!;
    expect(entry(image.digest)).toMatchObject({ outcome: 'skipped' });
    expect(entry(image.digest).reason).toMatch(/^pushed again \(.*\) since it was untagged/);
    expect(entry(index)).toMatchObject({ outcome: 'deleted' });
    expect(entry(child.digest)).toMatchObject({ outcome: 'skipped' });
    expect(entry(child.digest).reason).toMatch(/^pushed again/);
    // One lookup per DELETE by digest, and for each child one more of its index: no registry request.
    const sweeping = swept.plan.repositories.flatMap((r) => r.deleteManifests);
    const inPlan = new Set(sweeping.map((m) => m.digest));
    const digestDeletes = proxy.seen
      .slice(from.seen)
      .filter((k) => k.startsWith('DELETE ') && inPlan.has(k.slice(k.lastIndexOf('/') + 1)));
    const parents = sweeping.reduce((n, m) => n + m.after.length, 0);
    const asked = lookups.length - from.lookups;
    expect(asked).toBeGreaterThanOrEqual(digestDeletes.length);
    expect(asked).toBeLessThanOrEqual(digestDeletes.length + 2 + parents);

    await registry.stop();
    registry.garbageCollect();
    await registry.start();
    for (const p of promoted) expect(await whyNotServed(registry.url, p.candidate, p.tag)).toBeUndefined();
    for (const k of kept) expect(await whyNotServed(registry.url, k.image, k.tag)).toBeUndefined();
    expect(
      await notReclaimed(
        registry.url,
        candidates.filter((c) => c !== image && c.digest !== index),
      ),
    ).toEqual([]);
    // The index went; its other platform image with it (the promoted one stays, with its blobs).
    expect((await fetch(`${registry.url}/v2/app/multi/manifests/${index}`, { method: 'HEAD' })).status).toBe(
      404,
    );
  }, 120_000);
});
