// One round of the promotion race under two-phase apply, for the in-process test and the CLI one: a registry
// seeded with the race scenario (pushed "2 hours ago") behind a fault proxy, planned with the storage listing and
// saved as `plan --out` writes it; the nights after it, a day apart (every push and journal time moved 25 h back);
// and the verdict after garbage-collect: promotions lost, kept images lost, candidates nobody promoted left.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { runJob } from '../../lambda/core/job.ts';
import type { Plan } from '../../lambda/core/model.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { startFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { lostPromotions, notReclaimed, whyNotServed, type Candidate, type Promotion } from './promoter.ts';
import { RACE_POLICY, raceCandidates, seedRaceScenario } from './race-scenario.ts';
import { startRegistry, type RegistryKind } from './registry-kind.ts';
import { shiftJsonFile, shiftStorage } from './time-shift.ts';

export const HOUR = 3_600_000;

export interface Round {
  readonly registry: LocalRegistry;
  readonly proxy: FaultProxy;
  readonly dir: string;
  /** The saved plan (`plan --out`), and its file. */
  readonly plan: Plan;
  readonly planFile: string;
  readonly journalFile: string;
  readonly candidates: Candidate[];
  readonly kept: { readonly image: Candidate; readonly tag: string }[];
  /** Stops the proxy and the registry and removes the round's files. */
  dispose(): Promise<void>;
}

/**
 * 4 repositories of 10 builds and one of 4 multi-arch indexes, pushed "2 hours ago", planned: keep the newest 2
 * and `latest`/`release-*`. `upstream` is what the fault proxy forwards to (the registry, or a delay proxy in
 * front of it).
 */
export async function seedRound(
  kind: RegistryKind,
  seed: string,
  upstream?: (registry: LocalRegistry) => Promise<{ url: string; close(): Promise<void> }>,
): Promise<Round> {
  const registry = await startRegistry(kind);
  const between = upstream ? await upstream(registry) : undefined;
  const proxy = await startFaultProxy(between?.url ?? registry.url);
  const dir = mkdtempSync(join(tmpdir(), 'rj-race2-'));
  await seedRaceScenario(registry.url, seed);
  // The builds were pushed a while ago (a push within a minute of the untagging counts as pushed again).
  shiftStorage(registry.storageDir, 2 * HOUR);
  const client = createRegistryClient({ url: proxy.url });
  let plan: Plan;
  const planFile = join(dir, 'plan.json');
  try {
    const planned = await runJob({
      client,
      policy: RACE_POLICY,
      history: filesystemHistory(registry.storageDir),
      now: new Date(),
      dryRun: true,
      maxDeleteFraction: 1,
    });
    // Saved and read back, as `plan --out` and `apply --plan` do.
    writeFileSync(planFile, JSON.stringify(planned.plan));
    plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  } finally {
    await client.close();
  }
  expect(plan.complete).toBe(true);
  const { candidates, kept } = await raceCandidates(registry.url, plan);
  expect(candidates).toHaveLength(4 * 8 + 2);
  return {
    registry,
    proxy,
    dir,
    plan,
    planFile,
    journalFile: join(dir, 'journal.json'),
    candidates,
    kept,
    dispose: async () => {
      await proxy.close();
      await between?.close();
      await registry.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The nights after, a day apart, until one changes nothing (at most 3): before each, every push time and
 * journal time moves 25 h back. `night` runs one and says whether its plan changed anything.
 */
export async function laterNights<T>(
  r: Round,
  night: () => Promise<{ result: T; changes: boolean }>,
): Promise<T[]> {
  const nights: T[] = [];
  for (let n = 0; n < 3; n++) {
    shiftStorage(r.registry.storageDir, 25 * HOUR);
    shiftJsonFile(r.journalFile, 25 * HOUR);
    const { result, changes } = await night();
    nights.push(result);
    if (!changes) break;
  }
  return nights;
}

/** Whether a plan deletes or untags anything. */
export const changesAnything = (plan: Plan): boolean =>
  plan.repositories.some((p) => p.deleteTags.length > 0 || p.deleteManifests.length > 0);

/**
 * After the nights: garbage-collect (registry stopped) and a restart, then what was lost: accepted promotions not
 * served whole, kept tags not served whole, and candidates nobody promoted that are still there.
 */
export async function raceVerdict(
  r: Round,
  promotions: readonly Promotion[],
): Promise<{ lost: string[]; keptLost: string[]; left: string[] }> {
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
  return { lost, keptLost, left };
}
