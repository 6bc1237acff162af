// The promotion race under two-phase apply from the real CLI process, on real 2.8 and v3 registries with
// filesystem storage: `apply --plan FILE --storage DIR --journal F --undo-window-hours 24` runs as a user runs it
// (its own node process), through the fault proxy (where a CI job promotes images the plan deletes at every point
// of the janitor's traffic: test/support/promoter.ts) and a delay proxy that spreads the apply. Then the nights
// after, a day apart (push and journal times moved 25 h back), `apply --policy` from the CLI again sweeps what the
// window let go; then garbage-collect and a restart. Over the rounds: no promotion lost, nothing kept lost, every
// image nobody promoted reclaimed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import type { Plan, Report } from '../../lambda/core/model.ts';
import { startDelayProxy } from '../bench/delay-proxy.ts';
import { runCli, type Finished } from '../support/cli-process.ts';
import { Promoter, spreadOffsets, type Promotion } from '../support/promoter.ts';
import { RACE_POLICY_YAML } from '../support/race-scenario.ts';
import { changesAnything, laterNights, raceVerdict, seedRound, type Round } from '../support/race-rounds.ts';
import { describeEachRegistry } from '../support/registry-kind.ts';

const STATE_DIR = mkdtempSync(join(tmpdir(), 'rj-race-cli-state-'));
afterAll(() => rmSync(STATE_DIR, { recursive: true, force: true }));

/** The CLI's apply on the round's registry (through both proxies), two-phase with the default window. */
function apply(r: Round, what: string[]): Promise<Finished> {
  return runCli(
    [
      'apply',
      '--registry',
      r.proxy.url,
      ...what,
      '--storage',
      r.registry.storageDir,
      '--journal',
      r.journalFile,
      '--undo-window-hours',
      '24',
      '--max-delete-fraction',
      '1',
      '--yes',
      '--json',
    ],
    STATE_DIR,
  );
}

function outcome(run: Finished): { plan: Plan; report?: Report } {
  // 0: applied; 1: applied with a repository skipped (a promotion before its re-check changed it).
  expect([0, 1], run.stderr).toContain(run.code);
  return JSON.parse(run.stdout) as { plan: Plan; report?: Report };
}

describeEachRegistry('promotions racing a two-phase apply from the CLI process', ({ kind }) => {
  const rounds: Round[] = [];
  afterEach(async () => {
    for (const r of rounds.splice(0)) await r.dispose();
  });

  it.each([0, 1, 2])(
    'round %i: every promotion pushed while the CLI applied is served after the nights, garbage-collect and a restart; nothing kept is lost; what nobody promoted is reclaimed',
    async (round) => {
      const r = await seedRound(kind, `race-cli-${round}`, (registry) =>
        startDelayProxy(Number(new URL(registry.url).port), 2),
      );
      rounds.push(r);
      const policyFile = join(r.dir, 'policy.yaml');
      writeFileSync(policyFile, RACE_POLICY_YAML);
      const promoter = new Promoter(
        r.registry.url,
        r.proxy,
        spreadOffsets(r.candidates, { shift: round, tagPrefix: `release-cli-${round}-` }),
      );
      await promoter.arm();
      const applied = outcome(await apply(r, ['--plan', r.planFile]));
      const promotions: Promotion[] = await promoter.finish();
      expect(promotions.every((p) => p.status === 201)).toBe(true);
      expect(applied.report?.undo?.manifests ?? 0).toBeGreaterThan(0);
      const nights = await laterNights(r, async () => {
        const night = outcome(await apply(r, ['--policy', policyFile]));
        return { result: night, changes: changesAnything(night.plan) };
      });
      // The first night after the window swept what nobody promoted.
      expect(nights[0]!.report?.manifestsDeleted ?? 0).toBeGreaterThan(0);
      const { lost, keptLost, left } = await raceVerdict(r, promotions);
      const at = promotions.map((p) => `${p.offset}: ${p.at}`).join('\n');
      expect(promotions.length).toBeGreaterThanOrEqual(20);
      // Most were pushed at their point in the janitor's traffic (held there), not after apply.
      expect(
        promotions.filter((p) => /^(before|after) [A-Z]+ \//.test(p.at)).length,
        at,
      ).toBeGreaterThanOrEqual(15);
      expect(keptLost).toEqual([]);
      expect(lost, `${lost.length} of ${promotions.length} promotions lost\n${at}`).toEqual([]);
      expect(left).toEqual([]);
    },
    150_000,
  );
});
