// Promotions racing `apply --plan` on real registries, through the CLI: while apply runs, a CI job PUTs the
// manifests of images the plan deletes under new tags (`docker tag old release && docker push`), at many points of
// the janitor's own traffic (test/support/promoter.ts). Then garbage-collect and a restart, and every promotion is
// checked: its manifest by its new tag and every blob it needs. Without a storage listing apply deletes by digest,
// and a DELETE by digest removes every tag on it: a promotion pushed between the repository's re-check and that
// DELETE is lost, which the README's Limits state.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { Plan } from '../../lambda/core/model.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { cli } from '../support/cli.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import {
  Promoter,
  lostPromotions,
  whyNotServed,
  type Candidate,
  type Planned,
  type Promotion,
} from '../support/promoter.ts';
import { RACE_POLICY_YAML, raceCandidates, seedRaceScenario } from '../support/race-scenario.ts';
import { describeEachRegistry, startRegistry, type RegistryKind } from '../support/registry-kind.ts';

const POLICY = RACE_POLICY_YAML;

/** What one round seeded and planned: the candidates (planned deletions) and what stays. */
interface Round {
  readonly registry: LocalRegistry;
  readonly proxy: FaultProxy;
  readonly dir: string;
  readonly plan: Plan;
  readonly candidates: Candidate[];
  /** The kept tags, read as images, each with the tag to pull it by. */
  readonly kept: { readonly image: Candidate; readonly tag: string }[];
}

/**
 * A registry with 4 repositories of 10 builds (a shared base layer, a layer and a config of their own; `latest` on
 * the newest) and one of 4 multi-arch indexes (two platform images each), planned through the proxy: keep the
 * newest 2 and `latest`/`release-*`, so 8 builds per repository and 2 indexes go.
 */
async function seedRound(kind: RegistryKind, round: number, listing: boolean): Promise<Round> {
  const registry = await startRegistry(kind);
  const proxy = await startFaultProxy(registry.url);
  const dir = mkdtempSync(join(tmpdir(), 'rj-race-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  await seedRaceScenario(registry.url, `race-${round}`);
  const planFile = join(dir, 'plan.json');
  const planned = await cli([
    'plan',
    '--registry',
    proxy.url,
    '--policy',
    join(dir, 'policy.yaml'),
    '--out',
    planFile,
    '--max-delete-fraction',
    '1',
    ...(listing ? ['--storage', registry.storageDir] : []),
  ]);
  expect(planned.code, planned.err).toBe(0);
  const plan = JSON.parse(readFileSync(planFile, 'utf8')) as Plan;
  const { candidates, kept } = await raceCandidates(registry.url, plan);
  expect(candidates).toHaveLength(4 * 8 + 2);
  return { registry, proxy, dir, plan, candidates, kept };
}

/** `apply --plan` through the proxy while the promoter pushes at its points; then GC and a restart. */
async function applyRacing(
  r: Round,
  offsets: (candidates: readonly Candidate[]) => Planned[],
  extraArgs: string[] = [],
): Promise<{ promotions: Promotion[]; code: number; out: string; err: string }> {
  const promoter = new Promoter(r.registry.url, r.proxy, offsets(r.candidates));
  await promoter.arm();
  const applied = await cli([
    'apply',
    '--registry',
    r.proxy.url,
    '--plan',
    join(r.dir, 'plan.json'),
    '--journal',
    join(r.dir, 'journal.json'),
    '--max-delete-fraction',
    '1',
    '--yes',
    ...extraArgs,
  ]);
  const promotions = await promoter.finish();
  expect(promotions.every((p) => p.status === 201)).toBe(true);
  return { promotions, ...applied };
}

async function collectGarbage(registry: LocalRegistry): Promise<void> {
  await registry.stop();
  registry.garbageCollect();
  await registry.start();
}

describeEachRegistry('promotions racing apply', ({ kind }) => {
  const rounds: Round[] = [];
  afterEach(async () => {
    for (const r of rounds.splice(0)) {
      await r.proxy.close();
      await r.registry.dispose();
      rmSync(r.dir, { recursive: true, force: true });
    }
  });

  it('without a storage listing (delete by digest): a promotion pushed between the re-check and the DELETE of its digest is lost; before the re-check the repository is skipped, after the DELETE it is served', async () => {
    const r = await seedRound(kind, 0, false);
    rounds.push(r);
    const byRepo = (repo: string) => r.candidates.filter((c) => c.repository === repo);
    // app/r0: promoted at the re-check's tag listing (the second one: the saved plan's re-read is the first).
    // app/r1: each build at the DELETE of its own digest, held until the promotion is answered.
    // app/r2: right after that DELETE was answered. app/r3 and app/multi: not promoted.
    const plan: Planned[] = [
      { candidate: byRepo('app/r0')[3]!, offset: { kind: 'tags-list', n: 2 }, tag: 'release-a' },
      ...byRepo('app/r1').map((candidate, i): Planned => ({
        candidate,
        offset: { kind: 'own-write' },
        tag: `release-b${i}`,
      })),
      ...byRepo('app/r2').map((candidate, i): Planned => ({
        candidate,
        offset: { kind: 'after-own-write' },
        tag: `release-c${i}`,
      })),
      ...byRepo('app/multi').map((candidate, i): Planned => ({
        candidate,
        offset: { kind: 'own-write' },
        tag: `release-m${i}`,
      })),
    ];
    const { promotions, code, out } = await applyRacing(r, () => plan);
    // app/r0 was skipped (a new tag since planning): the run says so and fails.
    expect(code).toBe(1);
    expect(out).toMatch(/app\/r0.*changed since planning/);
    await collectGarbage(r.registry);

    const lost = await lostPromotions(r.registry.url, promotions);
    const lostTags = new Set(lost.map((l) => l.promotion.tag));
    const served = promotions.filter((p) => !lostTags.has(p.tag)).map((p) => p.tag);
    // The race the README's Limits state: every promotion held between the re-check and its DELETE went with it.
    expect([...lostTags].sort()).toEqual(
      promotions
        .filter((p) => p.offset === 'own-write')
        .map((p) => p.tag)
        .sort(),
    );
    expect(lostTags.size).toBe(8 + 2);
    expect(served).toContain('release-a');
    expect(served.filter((t) => t.startsWith('release-c'))).toHaveLength(8);
    // Nothing the policy keeps was lost.
    for (const k of r.kept) expect(await whyNotServed(r.registry.url, k.image, k.tag)).toBeUndefined();
  }, 180_000);
});
