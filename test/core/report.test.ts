// The text renderings of a plan and of an apply report (lambda/core/report.ts): which sections appear and when,
// that every deletion is listed with how it goes, the counts and bytes, and that the JSON documents are the whole
// record. The wording of kept-tag counts and dates is in report-text.test.ts; the untagged section in
// report-untagged.test.ts.
import { describe, expect, it } from 'vitest';
import type { Inventory, Plan, Report, ReportEntry } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { formatBytes, formatPlan, formatReport, short } from '../../lambda/core/report.ts';
import { dg, idx, img, inventory, type InventorySpec } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const POLICY = parsePolicy(
  [
    'rules:',
    '  - repositories: ["base/**"]',
    '    protect: true',
    '  - repositories: ["team/**"]',
    '    keep: { newest: 1 }',
    '  - repositories: ["names/**"]',
    '    keep: { tags: ["v*"] }',
  ].join('\n'),
);

const withWarnings = (spec: InventorySpec): Inventory => ({
  ...inventory(spec),
  warnings: [{ repository: 'team/app', reference: 'v2', message: 'config has no created date' }],
});

/**
 * team/app: v3 and its alias kept, v2 and v1 go with their manifests; team/multi: an old index whose two children
 * go with it; names/tool: `dev` (on v1's image) goes as a tag only, x with its manifest; base/os protected; misc/x
 * matches no rule.
 */
const THE_PLAN = plan(
  withWarnings({
    manifests: {
      a1: img(daysAgo(30), ['l1']),
      a2: img(daysAgo(20), ['l2']),
      a3: img(daysAgo(1), ['l3']),
      c1: img(daysAgo(40), ['c1']),
      c2: img(daysAgo(40), ['c2']),
      ix: idx(['c1', 'c2']),
      ixNew: idx(['a3']),
      os: img(daysAgo(100)),
      x: img(daysAgo(100)),
      n1: img(daysAgo(5)),
      n2: img(daysAgo(5)),
    },
    repos: {
      'team/app': { v1: 'a1', v2: 'a2', v3: 'a3', alias: 'a3' },
      'team/multi': { old: 'ix', new: 'ixNew' },
      'base/os': { '12': 'os', '11': 'os' },
      'misc/x': { latest: 'x' },
      'names/tool': { v1: 'n1', dev: 'n1', x: 'n2' },
    },
  }),
  POLICY,
  NOW,
);

const lines = (text: string, re: RegExp): string[] => text.split('\n').filter((l) => re.test(l));
const block = (text: string, repo: string): string =>
  text.split('\n\n').find((b) => b.startsWith(`${repo}:`)) ?? '';

describe('formatPlan', () => {
  const text = formatPlan(THE_PLAN);

  it('heads the plan with the registry and its date, and marks no complete plan as incomplete', () => {
    expect(text.split('\n')[0]).toBe(`Plan for ${THE_PLAN.registry} at ${THE_PLAN.generatedAt}`);
    expect(text).not.toContain('INCOMPLETE');
  });

  it('has one section per repository, in plan order, saying what its rule does', () => {
    const heads = text.split('\n\n').map((b) => b.split('\n')[0]!.split(':')[0]);
    expect(heads.slice(1, 6)).toEqual(THE_PLAN.repositories.map((r) => r.name));
    expect(block(text, 'base/os')).toMatch(/^base\/os: protected by rule #0; 2 tags kept/);
    expect(block(text, 'misc/x')).toMatch(/^misc\/x: no rule matches; 1 tag left untouched/);
    expect(block(text, 'team/app')).toMatch(/^team\/app: rule #1; .*delete 2 tags and 2 manifests, about /);
  });

  it('lists every tag it deletes, with how it goes, and the children of a deleted index', () => {
    const app = block(text, 'team/app');
    expect(lines(app, /^ {2}DELETE /)).toHaveLength(2);
    expect(lines(app, /DELETE {2}v1 /)[0]).toContain(short(dg('a1')));
    expect(lines(app, /DELETE {2}v1 /)[0]).toMatch(/with its manifest$/);
    expect(lines(app, /DELETE {2}v2 /)[0]).toMatch(/with its manifest$/);
    expect(app).not.toMatch(/DELETE {2}(v3|alias) /);

    const names = block(text, 'names/tool');
    expect(lines(names, /^ {2}DELETE /)).toHaveLength(2);
    expect(lines(names, /DELETE {2}dev /)[0]).toMatch(/tag only: its image stays for v1$/);
    expect(lines(names, /DELETE {2}x /)[0]).toMatch(/with its manifest$/);

    const multi = block(text, 'team/multi');
    expect(lines(multi, /DELETE {2}old /)[0]).toMatch(/with its manifest$/);
    const children = lines(multi, /DELETE {2}\(child image\)/).map((l) => l.trim().split(/\s+/).pop());
    expect(children.sort()).toEqual([short(dg('c1')), short(dg('c2'))].sort());
  });

  it('lists nothing to delete for protected and unmatched repositories', () => {
    expect(block(text, 'base/os')).not.toContain('DELETE');
    expect(block(text, 'misc/x')).not.toContain('DELETE');
  });

  it('sums up tags, manifests, the deleted share and the bytes', () => {
    const s = THE_PLAN.summary;
    expect(s).toMatchObject({ repositories: 5, tags: 12, tagsDeleted: 5, manifestsDeleted: 6 });
    expect(text).toContain(
      `Summary: 5 repositories, 12 tags: 7 kept, 5 to delete (41.7%), 6 manifests to delete, about ` +
        `${formatBytes(s.bytesFreed)} freed after garbage-collect.`,
    );
    expect(s.bytesFreed).toBeGreaterThan(0);
  });

  it('lists warnings with their repository and reference', () => {
    expect(text).toContain('\nWarnings (1):\n  team/app: v2: config has no created date\n');
    expect(text).not.toContain('Errors (');
  });

  it('marks an incomplete plan and lists its errors', () => {
    const incomplete = plan(
      inventory({
        manifests: { a: img(daysAgo(1)) },
        repos: { 'team/app': { v1: 'a' } },
        errors: [
          { repository: 'team/web', reference: 'v9', message: 'GET answered 500' },
          { message: 'catalog page 2 timed out' },
        ],
      }),
      POLICY,
      NOW,
    );
    const t = formatPlan(incomplete);
    expect(t.split('\n')[0]).toContain('[INCOMPLETE: will not be applied]');
    expect(t).toContain('Errors (2): the plan is incomplete and will not be applied:');
    expect(t).toContain('\n  team/web: v9: GET answered 500\n');
    expect(t).toContain('\n  catalog page 2 timed out\n');
  });

  it('says the registry could not be read when nothing was listed', () => {
    const unread = plan(
      inventory({ manifests: {}, repos: {}, errors: [{ message: 'GET /v2/_catalog: connection refused' }] }),
      POLICY,
      NOW,
    );
    const t = formatPlan(unread);
    expect(t).toContain(`No plan for ${unread.registry}: the registry could not be read.`);
    expect(t).toContain('  GET /v2/_catalog: connection refused');
    expect(t).not.toContain('Summary:');
  });

  it('is the same plan as its JSON document, which round-trips unchanged', () => {
    const json = JSON.parse(JSON.stringify(THE_PLAN)) as Plan;
    expect(json).toEqual(THE_PLAN);
    expect(formatPlan(json)).toBe(text);
  });
});

describe('formatReport', () => {
  const entry = (e: Partial<ReportEntry>): ReportEntry => ({
    repository: 'team/app',
    target: 'manifest',
    reference: dg('a1'),
    outcome: 'deleted',
    ...e,
  });
  const report = (r: Partial<Report> = {}): Report => ({
    registry: 'https://registry.internal:5000',
    startedAt: NOW.toISOString(),
    finishedAt: NOW.toISOString(),
    tagsDeleted: 7,
    manifestsDeleted: 3,
    bytesFreedEstimate: 3 * 1024 * 1024,
    skippedRepositories: [],
    failures: [],
    entries: [],
    ...r,
  });

  it('says what was deleted and what garbage-collect will free', () => {
    expect(formatReport(report())).toBe(
      'Deleted 7 tags and 3 manifests on https://registry.internal:5000 (about 3.0 MiB to free on the next ' +
        'garbage-collect).\n',
    );
  });

  it('lists skipped repositories, failures (tag or manifest) and skipped manifests, each with its reason', () => {
    const failedTag = entry({
      target: 'tag',
      reference: 'v2',
      outcome: 'failed',
      reason: '500 from the registry',
    });
    const failedManifest = entry({ reference: dg('a2'), outcome: 'failed', reason: 'timed out' });
    const skippedManifest = entry({
      repository: 'team/multi',
      reference: dg('c1'),
      outcome: 'skipped',
      reason: 'its index could not be deleted',
    });
    const skippedRepo = entry({
      repository: 'team/web',
      target: 'repository',
      reference: '*',
      outcome: 'skipped',
      reason: 'changed since the plan',
    });
    const text = formatReport(
      report({
        skippedRepositories: [{ name: 'team/web', reason: 'changed since the plan' }],
        failures: [failedTag, failedManifest],
        entries: [entry({}), failedTag, failedManifest, skippedManifest, skippedRepo],
      }),
    );
    expect(text.split('\n').slice(1)).toEqual([
      '  skipped team/web: changed since the plan',
      '  FAILED  team/app tag v2: 500 from the registry',
      `  FAILED  team/app ${dg('a2')}: timed out`,
      `  skipped team/multi ${dg('c1')}: its index could not be deleted`,
      '',
    ]);
  });
});

describe('formatBytes and short digests', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
    [3 * 1024 ** 5, '3072.0 TiB'],
  ])('%i bytes is %s', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });

  it('shortens a sha256 digest to 12 hex digits and leaves anything else alone', () => {
    expect(short(dg('a1'))).toBe(dg('a1').slice(0, 19));
    expect(short('v1.2')).toBe('v1.2');
  });
});
