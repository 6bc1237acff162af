// The HTML report as a string: escaping of everything the registry says, no reference to anything outside the
// page, the guard as the planner computes it, the chart's grouping and the apply outcome per row.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Report } from '../../lambda/core/model.ts';
import { checkGuard, plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { CHART_BARS, renderHtmlReport } from '../../lambda/core/report-html.ts';
import { formatBytes, short } from '../../lambda/core/report.ts';
import { HOSTILE, hostilePlan } from '../support/hostile-plan.ts';
import { dg, idx, img, inventory, type InventorySpec } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();
const keepNewest = (n: number) =>
  parsePolicy(`rules:\n  - repositories: ["**"]\n    keep: { newest: ${n} }\n`, 'test');

const ELEMENTS = [
  ...['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'footer', 'section', 'div', 'span', 'p'],
  ...['h1', 'h2', 'time', 'code', 'ul', 'li', 'details', 'summary', 'input', 'noscript', 'script'],
  ...['svg', 'a', 'g', 'rect', 'text'],
];
const ATTRIBUTES = [
  ...['lang', 'charset', 'http-equiv', 'content', 'name', 'class', 'id', 'datetime', 'hidden', 'type'],
  ...['placeholder', 'aria-label', 'autocomplete', 'role', 'href', 'data-i', 'data-repo', 'data-bytes'],
  ...['viewBox', 'x', 'y', 'width', 'height', 'rx', 'text-anchor'],
];

interface PageData {
  s: string[];
  outcome: boolean;
  r: { n: string; k: string[][]; d: unknown[][] }[];
}

function pageData(html: string): PageData {
  const m = /<script type="application\/json" id="rj-data">([^<]*)<\/script>/.exec(html);
  if (!m) throw new Error('no data block');
  return JSON.parse(m[1]!) as PageData;
}

describe('HTML report', () => {
  it('escapes every string from the registry: every element and attribute on the page is ours', () => {
    const html = renderHtmlReport(hostilePlan(), { maxDeleteFraction: 0.5 });
    // Our own two script elements; the data block holds JSON, the other our script.
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).not.toContain('\u2028');
    const markup = html
      .replace(/(<style>)[\s\S]*?<\/style>/, '$1</style>')
      .replace(/(<script[^>]*>)[\s\S]*?<\/script>/g, '$1</script>');
    const tags = [...markup.matchAll(/<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:="[^"<]*")?)*)\s*\/?>/g)];
    // Every "<" starts one of the elements below: none comes from a registry string.
    expect(tags).toHaveLength(markup.replace(/^<!doctype html>/, '').split('<').length - 1);
    for (const [, , name, attrs] of tags) {
      expect(ELEMENTS).toContain(name!.toLowerCase());
      for (const [, attr] of attrs!.matchAll(/\s+([\w:-]+)(?:="[^"]*")?/g))
        expect(ATTRIBUTES).toContain(attr);
    }
    // The names are all there, as data and as text.
    const data = pageData(html);
    expect(data.r[0]!.n).toBe(HOSTILE[0]);
    expect([...data.r[0]!.k, ...data.r[0]!.d].map((r) => r[0]).sort()).toEqual([...HOSTILE].sort());
    expect(html).toContain('&#60;script&#62;window.__pwned=1&#60;/script&#62;');
  });

  it('refers to nothing outside the page, and its CSP allows exactly its own script and style', () => {
    const html = renderHtmlReport(hostilePlan(), { maxDeleteFraction: 0.5 });
    for (const [, href] of html.matchAll(/\shref="([^"]*)"/g)) expect(href).toMatch(/^#r-\d+$/);
    expect(html).not.toMatch(/url\(|@import/);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1] ?? '';
    expect(csp).toContain("default-src 'none'");
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(csp).toContain(`script-src ${hash(script)}`);
  });

  const all = (n: number): InventorySpec => ({
    manifests: Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`i${i}`, img(daysAgo(i + 1), [`l${i}`])]),
    ),
    repos: { app: Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, `i${i}`])) },
  });

  it.each([
    ['passes', 0.5, 2, /Within the delete guard/, /passes/],
    ['blocks', 0.5, 0, /apply refuses this plan: the plan deletes 4 of 4 tags/, /blocks/],
    ['passes at a raised guard', 1, 0, /Within the delete guard/, /passes/],
  ])('the delete guard %s as the planner computes it', (_name, max, keep, bannerText, cardText) => {
    const p = plan(inventory(all(4)), keepNewest(keep), NOW);
    const html = renderHtmlReport(p, { maxDeleteFraction: max });
    const guard = checkGuard(p, max);
    expect(html).toMatch(bannerText);
    expect(html).toMatch(new RegExp(`Delete guard</div><div class="value">${cardText.source}`));
    if (!guard.ok) expect(html).toContain(guard.message);
  });

  it('an incomplete plan says it is never applied', () => {
    const p = plan(
      inventory({ ...all(2), errors: [{ repository: 'app', message: 'HTTP 500' }] }),
      keepNewest(1),
      NOW,
    );
    const html = renderHtmlReport(p, { maxDeleteFraction: 1 });
    expect(html).toMatch(/Incomplete plan: 1 read failed/);
    expect(html).toContain('<li class="error">app: HTTP 500</li>');
  });

  it(`charts the biggest repositories first and groups the rest into one bar past ${CHART_BARS}`, () => {
    const count = CHART_BARS + 3;
    const manifests: InventorySpec['manifests'] = {};
    const repos: InventorySpec['repos'] = {};
    for (let r = 0; r < count; r++) {
      // Repository r frees (r + 1) layers of 1000 bytes: one old image with its own layers.
      manifests[`old${r}`] = img(
        daysAgo(30),
        Array.from({ length: r + 1 }, (_, k) => `r${r}-${k}`),
      );
      manifests[`new${r}`] = img(daysAgo(1), [`n${r}`]);
      repos[`repo-${String(r).padStart(2, '0')}`] = { old: `old${r}`, new: `new${r}` };
    }
    repos['untouched'] = { only: 'new0' };
    const p = plan(inventory({ manifests, repos }), keepNewest(1), NOW);
    const html = renderHtmlReport(p, { maxDeleteFraction: 1 });
    const bars = [
      ...html.matchAll(/<rect class="bar( others)?"[^>]*data-repo="([^"]+)" data-bytes="(\d+)"/g),
    ].map((m) => ({ others: m[1] !== undefined, repo: m[2]!, bytes: Number(m[3]) }));
    expect(bars).toHaveLength(CHART_BARS);
    const byBytes = [...p.repositories]
      .filter((r) => r.deleteTags.length > 0)
      .sort((a, b) => b.bytesFreed - a.bytesFreed);
    expect(bars.slice(0, -1).map((b) => b.repo)).toEqual(byBytes.slice(0, CHART_BARS - 1).map((r) => r.name));
    const rest = byBytes.slice(CHART_BARS - 1);
    expect(bars.at(-1)).toEqual({
      others: true,
      repo: `${rest.length} others`,
      bytes: rest.reduce((n, r) => n + r.bytesFreed, 0),
    });
    expect(html).toContain(`>${formatBytes(byBytes[0]!.bytesFreed)}</text>`);
    expect(bars.map((b) => b.repo)).not.toContain('untouched');
  });

  it('shows the apply outcome on each deleted row, and a skipped repository as skipped', () => {
    const spec: InventorySpec = {
      manifests: { a: img(daysAgo(1)), b: img(daysAgo(2)), c: img(daysAgo(3)) },
      repos: { one: { a: 'a', b: 'b', alias: 'a' }, two: { a: 'a', c: 'c' } },
    };
    const p = plan(inventory(spec), keepNewest(1), NOW);
    const report: Report = {
      registry: p.registry,
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      tagsDeleted: 0,
      manifestsDeleted: 0,
      bytesFreedEstimate: 0,
      skippedRepositories: [{ name: 'two', reason: 'the repository changed since planning' }],
      failures: [
        {
          repository: 'one',
          target: 'manifest',
          reference: dg('b'),
          tags: ['b'],
          outcome: 'failed',
          reason: 'HTTP 500',
        },
      ],
      entries: [
        {
          repository: 'one',
          target: 'manifest',
          reference: dg('b'),
          tags: ['b'],
          outcome: 'failed',
          reason: 'HTTP 500',
        },
        {
          repository: 'two',
          target: 'repository',
          reference: '*',
          outcome: 'skipped',
          reason: 'the repository changed since planning',
        },
      ],
    };
    const html = renderHtmlReport(p, { maxDeleteFraction: 1, report });
    const data = pageData(html);
    const outcome = (repo: string, tag: string) => {
      const row = data.r.find((r) => r.n === repo)!.d.find((d) => d[0] === tag)!;
      return data.s[row[4] as number];
    };
    expect(data.outcome).toBe(true);
    expect(outcome('one', 'b')).toBe('failed: HTTP 500|failed');
    expect(outcome('two', 'c')).toBe('skipped: the repository changed since planning|skipped');
    expect(html).toMatch(/Applied with problems/);
    expect(html).toContain('<span class="badge skipped">skipped</span>');
    expect(html).toContain('<span class="badge failed">1 failed</span>');
  });
});

describe('HTML report: untagged history', () => {
  const policy = parsePolicy(
    'rules:\n  - repositories: ["**"]\n    keep: { tags: ["main"] }\n    untagged: { deleteAfterDays: 14 }\n',
    'test',
  );
  // `main` is a multi-arch index (its platform images are untagged revisions); two earlier pushes of `main`
  // are history: one 40 days old goes, one 3 days old stays.
  const spec: InventorySpec = {
    manifests: {
      ix: idx(['c1', 'c2']),
      c1: img(daysAgo(1), ['l1']),
      c2: img(daysAgo(1), ['l2']),
      h1: img(daysAgo(50), ['old-layer']),
      h2: img(daysAgo(10), ['recent-layer']),
    },
    repos: { 'ci/app': { main: 'ix' } },
    untagged: { 'ci/app': { c1: daysAgo(1), c2: daysAgo(1), h1: daysAgo(40), h2: daysAgo(3) } },
  };
  const row = (data: PageData, list: 'k' | 'd', digest: string) => {
    const r = data.r[0]![list].find((x) => x[1] === short(digest));
    return r && [r[0], r[1], r[2], data.s[r[3] as number]];
  };

  it('lists each deleted and kept untagged manifest with its push date and reason, and the totals card', () => {
    const p = plan(inventory(spec), policy, NOW);
    const html = renderHtmlReport(p, { maxDeleteFraction: 1 });
    const data = pageData(html);
    expect(data.r[0]!.n).toBe('ci/app');
    expect(data.r[0]!.d).toHaveLength(1);
    expect(row(data, 'd', dg('h1'))).toEqual([
      '',
      short(dg('h1')),
      daysAgo(40).slice(0, 10),
      'pushed 40 days ago; nothing that stays references it',
    ]);
    expect(row(data, 'k', dg('h2'))).toEqual([
      '',
      short(dg('h2')),
      daysAgo(3).slice(0, 10),
      'pushed 3 days ago',
    ]);
    for (const c of ['c1', 'c2'])
      expect(row(data, 'k', dg(c))).toEqual([
        '',
        short(dg(c)),
        daysAgo(1).slice(0, 10),
        'platform image of main',
      ]);
    expect(html).toContain(
      '<div class="card"><div class="label">Untagged history</div><div class="value">delete 1</div>' +
        '<div class="detail">keep 3 · listed from test</div></div>',
    );
    expect(html).toMatch(new RegExp(`Manifests to delete</div><div class="value">1<`));
  });

  it('says why no untagged manifest is judged when the listing is incomplete, and lists none', () => {
    const p = plan(
      inventory({ ...spec, history: { source: 's3://b/p', complete: false, problem: 'listing truncated' } }),
      policy,
      NOW,
    );
    const html = renderHtmlReport(p, { maxDeleteFraction: 1 });
    expect(html).toContain(
      '<div class="card blocked"><div class="label">Untagged history</div><div class="value">not judged</div>' +
        '<div class="detail">listing truncated</div></div>',
    );
    const data = pageData(html);
    expect(data.r[0]!.d).toEqual([]);
    expect(data.r[0]!.k.map((k) => k[0])).toEqual(['main']);
  });

  it('has no untagged card without a listing', () => {
    const { untagged: _u, ...noListing } = spec;
    const html = renderHtmlReport(plan(inventory(noListing), policy, NOW), { maxDeleteFraction: 1 });
    expect(html).not.toContain('Untagged history');
  });
});

describe('HTML report: two-phase apply', () => {
  const policy = parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n', 'test');
  const spec: InventorySpec = {
    manifests: {
      a: img(daysAgo(1), ['la']),
      b: img(daysAgo(2), ['lb']),
      ix: idx(['c1']),
      c1: img(daysAgo(3)),
    },
    repos: { app: { a: 'a', b: 'b', multi: 'ix' } },
    untagged: { app: {} },
  };
  const until = new Date(NOW.getTime() + 24 * 3_600_000).toISOString();
  const UNTIL = `${until.slice(0, 10)} ${until.slice(11, 16)} UTC`;
  const rowOf = (data: PageData, key: string) => {
    const r = data.r[0]!.d.find((x) => x[0] === key || x[1] === key)!;
    return { why: data.s[r[3] as number], outcome: r[4] === undefined ? undefined : data.s[r[4] as number] };
  };

  it('the plan says until when each deletion can be undone, and the bytes untagged tonight apart from tonight’s', () => {
    const p = plan(inventory(spec), policy, NOW, { undoWindowHours: 24 });
    const html = renderHtmlReport(p, { maxDeleteFraction: 1 });
    const data = pageData(html);
    expect(rowOf(data, 'b').why).toBe(`no keep rule matches; untagged tonight, reclaimed after ${UNTIL}`);
    expect(rowOf(data, short(dg('c1'))).why).toContain(`untagged tonight, reclaimed after ${UNTIL}`);
    expect(html).toContain(`restorable until ${UNTIL}`);
    expect(html).toContain('<div class="label">Untagged tonight</div>');
    expect(html).toContain('<div class="label">Reclaimed tonight</div>');
    expect(html).not.toContain('<div class="label">Space freed</div>');
    expect(html).toContain(`restore brings them back until ${UNTIL} (24 h)`);
  });

  it('without a listing it states the race of deleting by digest, and promises no undo', () => {
    const { untagged: _u, ...noListing } = spec;
    const html = renderHtmlReport(plan(inventory(noListing), policy, NOW), { maxDeleteFraction: 1 });
    expect(html).toContain('No storage listing: apply deletes by digest');
    expect(html).not.toContain('restorable');
    expect(pageData(html).r[0]!.d.find((x) => x[0] === 'b')).toBeDefined();
    expect(rowOf(pageData(html), 'b').why).toBe('no keep rule matches; deleted with its manifest');
  });

  it('the report marks what was untagged with its deadline and prints the restore command', () => {
    const p = plan(inventory(spec), policy, NOW, { undoWindowHours: 24 });
    const report: Report = {
      registry: p.registry,
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      tagsDeleted: 2,
      manifestsDeleted: 0,
      bytesFreedEstimate: 0,
      undo: { manifests: 3, bytesPending: 4096, undoUntil: until, runId: 'run-<1>' },
      skippedRepositories: [],
      failures: [],
      entries: [
        { repository: 'app', target: 'manifest', reference: dg('b'), tags: ['b'], outcome: 'untagged' },
      ],
    };
    const html = renderHtmlReport(p, { maxDeleteFraction: 1, report });
    expect(rowOf(pageData(html), 'b').outcome).toBe(`untagged, restorable until ${UNTIL}|untagged`);
    expect(html).toContain('untagged 3 manifests (about 4.0 KiB), restorable until');
    expect(html).toContain('<div class="label">Untagged</div><div class="value">3</div>');
    expect(html).toContain(`--run run-&#60;1&#62;</code>`);
    expect(html).toContain('{&#34;restore&#34;:{&#34;run&#34;:&#34;run-&#60;1&#62;&#34;}}');
  });
});
