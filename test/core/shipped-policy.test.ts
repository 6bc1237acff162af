// The retention-policy.yaml the repository ships (the stack's default policy): it parses, and it reclaims
// untagged history with a cautious grace, judged as the planner judges any policy.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy, ruleFor } from '../../lambda/core/policy.ts';
import { dg, img, inventory } from '../support/inventory.ts';

const FILE = fileURLToPath(new URL('../../retention-policy.yaml', import.meta.url));
const text = readFileSync(FILE, 'utf8');
const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

describe('the shipped retention-policy.yaml', () => {
  const policy = parsePolicy(text, 'retention-policy.yaml');

  it('parses, and its catch-all rule deletes untagged history after 14 days', () => {
    const rule = ruleFor(policy, 'any/repository');
    expect(rule?.protect).toBe(false);
    expect(rule?.untagged).toEqual({ deleteAfterDays: 14 });
    // The comments explain the block to whoever edits the file.
    expect(text).toMatch(/^# - `untagged: \{ deleteAfterDays: N \}` deletes untagged history/m);
    expect(text).toMatch(/^ {4}# Untagged history pushed more than 14 days ago/m);
    // Both the Lambda (its stack setting `storage`) and the CLI (--storage) provide the listing.
    expect(text).toMatch(/the Lambda's \(stack setting `storage`/);
    expect(text).toMatch(/the CLI's --storage/);
  });

  it('with a listing, deletes history pushed 20 days ago and keeps history pushed 13 days ago', () => {
    const p = plan(
      inventory({
        manifests: { a: img(daysAgo(1)), old: img(daysAgo(40)), recent: img(daysAgo(40)) },
        repos: { 'ci/app': { main: 'a' } },
        untagged: { 'ci/app': { old: daysAgo(20), recent: daysAgo(13) } },
      }),
      policy,
      NOW,
    );
    const r = p.repositories[0]!;
    expect(r.untagged?.deleted.map((d) => d.digest)).toEqual([dg('old')]);
    expect(r.untagged?.kept.map((d) => [d.digest, d.reason])).toEqual([[dg('recent'), 'young']]);
    expect(r.kept.map((k) => k.tag)).toEqual(['main']);
  });
});
