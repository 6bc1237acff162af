// The text plan a person reads first: counts that add up, dates that say why one is missing, kept tags in a
// natural order, plurals.
import { describe, expect, it } from 'vitest';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { formatPlan, formatReport } from '../../lambda/core/report.ts';
import { img, inventory } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const POLICY = parsePolicy(
  [
    'rules:',
    '  - repositories: ["legacy/**"]',
    '    protect: true',
    '  - repositories: ["names/**"]',
    '    keep: { tags: ["r*"] }',
    '  - repositories: ["team/**"]',
    '    keep: { newest: 2, tags: ["latest"] }',
  ].join('\n'),
);

const thePlanInventory = () =>
  inventory({
    manifests: {
      a: img(daysAgo(1)),
      b: img(daysAgo(2)),
      c: img(daysAgo(3)),
      repro: img('1970-01-01T00:00:00Z'),
      n5: img(null),
      n10: img(null),
      n11: img(null),
      gone: img(null),
      old: img(null),
    },
    repos: {
      'team/app': { latest: 'a', v3: 'a', v2: 'b', v1: 'c', repro: 'repro' },
      'names/tool': { r10: 'n10', r5: 'n5', r11: 'n11', x: 'gone' },
      'legacy/thing': { old: 'old' },
      'misc/other': { one: 'old' },
    },
  });
const thePlan = plan(thePlanInventory(), POLICY, NOW);

const line = (text: string, re: RegExp): string => text.split('\n').find((l) => re.test(l)) ?? '';
const block = (text: string, repo: string): string =>
  text.split('\n\n').find((b) => b.startsWith(`${repo}:`)) ?? '';

describe('the text plan', () => {
  it('counts each kept tag once and lists the reasons apart', () => {
    const text = formatPlan(thePlan);
    // latest is kept both as tag:latest and newest:2: 4 tags, 5 reasons.
    expect(text).toContain('team/app: rule #2; keep 4 tags, delete 1 tag and 1 manifest');
    const why = line(block(text, 'team/app'), /^ {2}keep {4}why/);
    expect(why).toMatch(/^ {2}keep {4}why \(a tag can have several reasons\): /);
    expect(why).toContain('3 × newest:2');
    expect(why).toContain('1 × tag:latest');
    expect(why).not.toMatch(/keep {4}\d+ ×/);
  });

  it('says why a date is missing: not read under a name-only rule or a protected one, or not usable', () => {
    const text = formatPlan(thePlan, { verbose: true });
    expect(line(text, /keep {4}r5 /)).toContain('not read (name-only rule)');
    expect(line(text, /DELETE {2}x /)).toContain('not read (name-only rule)');
    expect(line(text, /keep {4}old /)).toContain('not read (protected)');
    expect(line(text, /keep {4}one /)).toContain('not read (no rule)');
    expect(line(text, /keep {4}repro /)).toContain('no usable date');
    expect(line(text, /keep {4}v3 /)).toContain(daysAgo(1).slice(0, 10));
    expect(text).not.toContain('no date');
  });

  it('lists kept tags newest first, then in natural order', () => {
    const text = formatPlan(thePlan, { verbose: true });
    const kept = (repo: string): string[] =>
      [...block(text, repo).matchAll(/^ {2}keep {4}(\S+)/gm)].map((m) => m[1]!);
    expect(kept('names/tool')).toEqual(['r5', 'r10', 'r11']);
    expect(kept('team/app')).toEqual(['latest', 'v3', 'v2', 'repro']);
  });

  it('gets the plurals right', () => {
    const one = plan(
      inventory({ manifests: { a: img(daysAgo(1)) }, repos: { 'team/app': { v1: 'a' } } }),
      POLICY,
      NOW,
    );
    expect(formatPlan(one)).toContain(
      'Summary: 1 repository, 1 tag: 1 kept, 0 to delete (0.0%), 0 manifests',
    );
    expect(
      formatReport({
        registry: 'http://r',
        startedAt: NOW.toISOString(),
        finishedAt: NOW.toISOString(),
        tagsDeleted: 1,
        manifestsDeleted: 1,
        bytesFreedEstimate: 0,
        entries: [],
        failures: [],
        skippedRepositories: [],
      }),
    ).toMatch(/^Deleted 1 tag and 1 manifest on http:\/\/r/);
  });
});

describe('the text plan and report, two-phase or by digest', () => {
  const twoPhase = (hours: number) => plan(thePlanInventory(), POLICY, NOW, { undoWindowHours: hours });
  const UNTIL = '2026-11-29 12:00 UTC';

  it('with a window: each deletion says until when it can be undone, and the bytes come apart', () => {
    const p = twoPhase(24);
    const text = formatPlan(p, { verbose: true });
    expect(line(text, /DELETE {2}v1 /)).toContain(`untagged tonight, reclaimed after ${UNTIL}`);
    expect(line(text, /^team\/app:/)).toMatch(new RegExp(`freed tonight, about .+ after ${UNTIL}$`));
    const summary = line(text, /^Summary:/);
    expect(summary).toContain(`untagged tonight, reclaimed after ${UNTIL}; about`);
    expect(summary).toContain('reclaimed tonight (the sweep');
    expect(text).toContain(`restore brings them back until ${UNTIL} (24 h)`);
    expect(text).not.toContain('No storage listing');
  });

  it('window 0: the same run sweeps what it untags', () => {
    expect(formatPlan(twoPhase(0))).toContain(
      'Two-phase, undo window 0: apply removes the tags, then this same run',
    );
  });

  it('without a listing: apply deletes by digest and the plan states the race', () => {
    const text = formatPlan(thePlan);
    expect(text).toContain('No storage listing: apply deletes by digest');
    expect(text).toContain('A promotion pushed between');
    expect(text).toContain('loses its tag');
    expect(line(text, /DELETE {2}v1 /)).toContain('with its manifest');
    expect(text).not.toContain('reclaimed after');
  });

  it('the report shows what is untagged tonight apart from what is reclaimed tonight', () => {
    const text = formatReport({
      registry: 'http://r',
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      tagsDeleted: 3,
      manifestsDeleted: 1,
      bytesFreedEstimate: 2048,
      undo: { manifests: 2, bytesPending: 4096, undoUntil: '2026-11-29T12:00:00.000Z', runId: 'r1' },
      entries: [],
      failures: [],
      skippedRepositories: [],
    });
    expect(text).toContain('(about 2.0 KiB reclaimed tonight, to free on the next garbage-collect)');
    expect(text).toContain(`Untagged tonight, reclaimed after ${UNTIL}: 2 manifests, about 4.0 KiB`);
  });
});

describe('the text plan of the sweep', () => {
  const spec = {
    manifests: { a: img(daysAgo(1)), gone: img(daysAgo(30)), left: img(daysAgo(30)) },
    repos: { app: { latest: 'a' } },
    untagged: { app: { gone: daysAgo(3), left: daysAgo(3) } },
    journal: {
      app: [
        { id: 'gone', recordedAt: daysAgo(2), untagged: true },
        { id: 'left', recordedAt: daysAgo(2) },
      ],
    },
  };
  const keepLatest = parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { tags: [latest] }\n', 'test');

  it('says what an earlier run untagged goes because its window passed, apart from what an interrupted run left', () => {
    const text = formatPlan(plan(inventory(spec), keepLatest, NOW, { undoWindowHours: 24 }));
    expect(line(text, /\(leftover image\)\s+sha256:[0-9a-f]+ +journal: untagged/)).toContain(
      'journal: untagged by an earlier run, its undo window has passed, not pushed again since',
    );
    expect(text).toContain('journal: left by an interrupted run; nothing that stays references it');
    expect(text).toContain('journal (what earlier runs untagged or left): finish 2, drop 0, wait 0');
    // Nothing is untagged tonight: no bytes "after" the window are promised for this repository.
    expect(line(text, /^app:/)).not.toContain(' after ');
  });
});
