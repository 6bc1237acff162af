// The promotion race under two-phase apply, on real 2.8 and v3 registries with filesystem storage: while a saved
// plan is applied with a storage listing (untag now, reclaim after the undo window), a CI job promotes images the
// plan deletes at every point of the janitor's traffic (test/support/promoter.ts). Then the nights after it, a day
// apart (every push time and journal time moved 25 h back: test/support/time-shift.ts), sweep what the window
// let go; then garbage-collect and a restart. Every promotion is served whole, nothing kept is lost, and every
// image nobody promoted is reclaimed. Runs the job as the CLI wires it (its registry client, file journal and
// filesystem listing), with undoWindowHours given as --undo-window-hours would.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { fileJournal } from '../../lambda/adapters/journal-file.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { runJob, type JobResult } from '../../lambda/core/job.ts';
import type { Plan } from '../../lambda/core/model.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import {
  Promoter,
  lostPromotions,
  notReclaimed,
  spreadOffsets,
  whyNotServed,
  type Candidate,
  type Promotion,
} from '../support/promoter.ts';
import { RACE_POLICY, raceCandidates, seedRaceScenario } from '../support/race-scenario.ts';
import { describeEachRegistry, startRegistry, type RegistryKind } from '../support/registry-kind.ts';
import { shiftJsonFile, shiftStorage } from '../support/time-shift.ts';

const POLICY = RACE_POLICY;

const HOUR = 3_600_000;

interface Round {
  readonly registry: LocalRegistry;
  readonly proxy: FaultProxy;
  readonly dir: string;
  readonly plan: Plan;
  readonly candidates: Candidate[];
  readonly kept: { readonly image: Candidate; readonly tag: string }[];
}

/** A run of the job through the proxy, as the CLI builds it (client, file journal, filesystem listing). */
async function job(
  r: Round,
  what: { savedPlan: Plan } | { planFrom: 'policy' },
  undoWindowHours: number,
): Promise<JobResult> {
  const client = createRegistryClient({ url: r.proxy.url });
  const warnings: string[] = [];
  try {
    return await runJob({
      client,
      ...('savedPlan' in what ? { savedPlan: what.savedPlan } : { policy: POLICY }),
      history: filesystemHistory(r.registry.storageDir),
      journal: fileJournal(join(r.dir, 'journal.json'), {
        registry: r.proxy.url,
        warn: (m) => warnings.push(m),
      }),
      undoWindowHours,
      now: new Date(),
      dryRun: false,
      maxDeleteFraction: 1,
    });
  } finally {
    await client.close();
    expect(warnings).toEqual([]);
  }
}

/**
 * 4 repositories of 10 builds (a shared base layer, a layer and a config of their own; `latest` on the newest) and
 * one of 4 multi-arch indexes, pushed "2 hours ago", then planned: keep the newest 2 and `latest`/`release-*`.
 */
async function seedRound(kind: RegistryKind, round: number): Promise<Round> {
  const registry = await startRegistry(kind);
  const proxy = await startFaultProxy(registry.url);
  const dir = mkdtempSync(join(tmpdir(), 'rj-race2-'));
  await seedRaceScenario(registry.url, `race2-${round}`);
  // The builds were pushed a while ago (a push within a minute of the untagging counts as pushed again).
  shiftStorage(registry.storageDir, 2 * HOUR);
  const client = createRegistryClient({ url: proxy.url });
  let plan: Plan;
  try {
    const planned = await runJob({
      client,
      policy: POLICY,
      history: filesystemHistory(registry.storageDir),
      now: new Date(),
      dryRun: true,
      maxDeleteFraction: 1,
    });
    // Saved and read back, as `plan --out` and `apply --plan` do.
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(planned.plan));
    plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan;
  } finally {
    await client.close();
  }
  expect(plan.complete).toBe(true);
  const { candidates, kept } = await raceCandidates(registry.url, plan);
  expect(candidates).toHaveLength(4 * 8 + 2);
  return { registry, proxy, dir, plan, candidates, kept };
}

/** The nights after, a day apart, until one finds nothing to do (at most 3). */
async function laterNights(r: Round): Promise<JobResult[]> {
  const nights: JobResult[] = [];
  for (let night = 0; night < 3; night++) {
    shiftStorage(r.registry.storageDir, 25 * HOUR);
    shiftJsonFile(join(r.dir, 'journal.json'), 25 * HOUR);
    const run = await job(r, { planFrom: 'policy' }, 24);
    nights.push(run);
    const changes = run.plan.repositories.some(
      (p) => p.deleteTags.length > 0 || p.deleteManifests.length > 0,
    );
    if (!changes) break;
  }
  return nights;
}

function describeRun(j: JobResult): string {
  const entries = j.report?.entries ?? [];
  const count = (o: string) => entries.filter((e) => e.outcome === o).length;
  return (
    `${j.outcome}: ${count('untagged')} untagged, ${count('deleted')} deleted, ${count('skipped')} skipped, ` +
    `${count('failed')} failed; skipped repositories: ${JSON.stringify(j.report?.skippedRepositories ?? [])}`
  );
}

describeEachRegistry('promotions racing a two-phase apply', ({ kind }) => {
  const rounds: Round[] = [];
  afterEach(async () => {
    for (const r of rounds.splice(0)) {
      await r.proxy.close();
      await r.registry.dispose();
      rmSync(r.dir, { recursive: true, force: true });
    }
  });

  // Rounds 0 and 1: the saved plan with the default window (24 h), swept the night after. Round 2: window 0,
  // planned and swept in the same run.
  it.each([
    { round: 0, window: 24 },
    { round: 1, window: 24 },
    { round: 2, window: 0 },
  ])(
    'round $round, undo window $window h: every promotion pushed while apply ran is served after the sweep, garbage-collect and a restart; nothing kept is lost; what nobody promoted is reclaimed',
    async ({ round, window }) => {
      const r = await seedRound(kind, round);
      rounds.push(r);
      const promoter = new Promoter(
        r.registry.url,
        r.proxy,
        spreadOffsets(r.candidates, {
          shift: round,
          tagPrefix: `release-${round}-`,
          // Window 0 sweeps in this run: a push between the sweep's re-check and its DELETE is the residual race
          // the README states, so the points counted from the first write (which reach into the sweep) are left out.
          during: window !== 0,
        }),
      );
      await promoter.arm();
      const applied = await job(r, window === 0 ? { planFrom: 'policy' } : { savedPlan: r.plan }, window);
      const promotions: Promotion[] = await promoter.finish();
      expect(promotions.every((p) => p.status === 201)).toBe(true);
      const nights = await laterNights(r);
      await r.registry.stop();
      r.registry.garbageCollect();
      await r.registry.start();

      const lost = (await lostPromotions(r.registry.url, promotions)).map(
        (l) => `${l.promotion.tag} (${l.promotion.offset}, ${l.promotion.at}): ${l.why}`,
      );
      const promoted = new Set(promotions.map((p) => p.digest));
      const left = await notReclaimed(
        r.registry.url,
        r.candidates.filter((c) => !promoted.has(c.digest)),
      );
      const keptLost: string[] = [];
      for (const k of r.kept) {
        const why = await whyNotServed(r.registry.url, k.image, k.tag);
        if (why) keptLost.push(why);
      }
      const runs = [applied, ...nights].map(describeRun).join('\n');
      expect(promotions.length).toBeGreaterThanOrEqual(20);
      // Most were pushed at their point in the janitor's traffic (held there), not after apply.
      const atTheirPoint = promotions.filter((p) => /^(before|after) [A-Z]+ \//.test(p.at));
      expect(
        atTheirPoint.length,
        promotions.map((p) => `${p.offset}: ${p.at}`).join('\n'),
      ).toBeGreaterThanOrEqual(15);
      expect(keptLost, runs).toEqual([]);
      expect(lost, `${lost.length} of ${promotions.length} promotions lost\n${runs}`).toEqual([]);
      expect(left, runs).toEqual([]);
    },
    300_000,
  );
});
