// The text plan's untagged section: every deletion with its push date and reason, what stays counted by reason
// (listed with --verbose), and the summary saying how much of it is history.
import { describe, expect, it } from 'vitest';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { formatPlan } from '../../lambda/core/report.ts';
import { dg, idx, img, inventory } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();
const POLICY = parsePolicy(
  'rules:\n  - repositories: ["**"]\n    keep: { tags: ["latest"] }\n    untagged: { deleteAfterDays: 14 }\n',
);
const short = (id: string): string => dg(id).slice(0, 19);

describe('the untagged section of the text plan', () => {
  const p = plan(
    inventory({
      manifests: {
        a: img(daysAgo(1)),
        h1: img(daysAgo(50)),
        h2: img(daysAgo(2)),
        c1: img(daysAgo(90)),
        ix: idx(['c1']),
      },
      repos: { app: { latest: 'ix', old: 'a' } },
      untagged: { app: { h1: daysAgo(40), h2: daysAgo(2), c1: daysAgo(90) } },
    }),
    POLICY,
    NOW,
  );

  it('lists each untagged deletion with its push date and why, and counts what stays', () => {
    const text = formatPlan(p);
    expect(text).toContain(
      `  DELETE  (untagged image)             ${short('h1')}  ${daysAgo(40).slice(0, 10)}  pushed 40 days ago; nothing that stays references it`,
    );
    expect(text).toContain(
      '  untagged: delete 1, keep 2  (1 × platform image of a kept tag, 1 × pushed within the grace; --verbose lists them)',
    );
    expect(text).toContain(
      '2 manifests to delete (1 of them untagged history, about 600 B of the space; 2 untagged kept)',
    );
    expect(text).toContain('Untagged history listed from test.');
  });

  it('counts what stays most common first, then by name, whatever order the digests come in', () => {
    const repo = p.repositories.find((r) => r.name === 'app')!;
    const young = repo.untagged!.kept.find((u) => u.reason === 'young')!;
    const platform = repo.untagged!.kept.find((u) => u.reason === 'referenced')!;
    const withKept = (kept: (typeof young)[]) => ({
      ...p,
      repositories: [{ ...repo, untagged: { ...repo.untagged!, kept } }],
    });
    for (const kept of [
      [platform, young, young, young],
      [young, young, young, platform],
    ]) {
      expect(formatPlan(withKept(kept))).toContain(
        '  untagged: delete 1, keep 4  (3 × pushed within the grace, 1 × platform image of a kept tag; --verbose lists them)',
      );
    }
  });

  it('with --verbose, lists every untagged manifest kept, naming the tag that holds a platform image', () => {
    const text = formatPlan(p, { verbose: true });
    expect(text).toContain(
      `  keep    (untagged image)             ${short('c1')}  ${daysAgo(90).slice(0, 10)}  platform image of latest`,
    );
    expect(text).toContain(
      `  keep    (untagged image)             ${short('h2')}  ${daysAgo(2).slice(0, 10)}  pushed 2 days ago`,
    );
  });

  it('says when the listing failed, and that nothing untagged goes', () => {
    const failed = plan(
      inventory({
        manifests: { a: img(daysAgo(1)) },
        repos: { app: { latest: 'a' } },
        untagged: { app: {} },
        history: { source: '/srv/registry', complete: false, problem: 'permission denied' },
      }),
      POLICY,
      NOW,
    );
    expect(formatPlan(failed)).toContain(
      'Untagged history from /srv/registry could not be listed: permission denied; no untagged manifest is deleted in this run.',
    );
  });
});
