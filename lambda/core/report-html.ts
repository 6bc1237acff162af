// The HTML report: one self-contained page (it requests nothing, so it opens from disk or a presigned URL) showing a
// plan and, after apply, its outcome. Pure: plan in, text out (whole, or in pieces). Every string from the
// registry is escaped.
import { createHash } from 'node:crypto';
import type { KeepReason, Plan, Report, ReportEntry, RepositoryPlan, ScanProblem } from './model.ts';
import { checkGuard } from './planner.ts';
import { PAGE_CSS, PAGE_SCRIPT } from './report-html-page.ts';
import { restoreRunCommand, restoreRunPayload } from './undo.ts';
import {
  applyMode,
  formatBytes,
  keptInOrder,
  leftoverReason,
  plural,
  short,
  tagDate,
  untaggedReason,
  when,
} from './report.ts';

export interface HtmlReportOptions {
  /** The delete guard the run applies (the CLI's --max-delete-fraction, the Lambda's maxDeleteFraction). */
  readonly maxDeleteFraction: number;
  /** The outcome of applying the plan (`apply --html`); without it the page shows the plan alone. */
  readonly report?: Report;
}

/** Bars in the chart; past this, the smallest repositories share one "N others" bar. */
export const CHART_BARS = 12;

/** A row of a repository's table, as the page script reads it: [tag, digest, date, why, outcome]. */
type Row = [tag: string, digest: string, date: string, why: number, outcome?: number];

interface RepositoryData {
  readonly n: string;
  readonly k: Row[];
  readonly d: Row[];
}

export function renderHtmlReport(plan: Plan, options: HtmlReportOptions): string {
  return [...htmlReportPieces(plan, options)].join('');
}

/**
 * The page a piece at a time, for a writer that sends it on as it goes (at 100,000 tags it is tens of MB): the
 * page's data a repository at a time, each repository's rows made only as its piece is written.
 */
export function* htmlReportPieces(plan: Plan, options: HtmlReportOptions): Generator<string> {
  const { report } = options;
  const title = `${report ? 'Cleanup report' : 'Cleanup plan'} for ${plan.registry}`;
  const body = [
    `<header><h1>${report ? 'Cleanup report' : 'Cleanup plan'}</h1>`,
    `<p class="sub"><span class="mono">${esc(plan.registry)}</span> · planned <time datetime="${esc(plan.generatedAt)}">${esc(plan.generatedAt)}</time>`,
    report ? ` · applied <time datetime="${esc(report.finishedAt)}">${esc(report.finishedAt)}</time>` : '',
    `</p>`,
    banner(plan, options),
    mode(plan, report),
    `</header>`,
    totals(plan, options),
    `<section><h2>Space freed per repository</h2>${chart(plan)}</section>`,
    problems(plan, report),
    repositories(plan, report),
    `<footer>Made by registry-janitor. The JSON plan (<code>plan --json</code>) is the complete record; sizes are `,
    `estimates of what the next garbage-collect frees, counting blobs no kept image uses.</footer>`,
  ].join('');
  const csp =
    `default-src 'none'; script-src '${sha256(PAGE_SCRIPT)}'; style-src '${sha256(PAGE_CSS)}'; ` +
    `img-src data:; base-uri 'none'; form-action 'none'`;
  yield (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark">` +
    `<meta name="referrer" content="no-referrer">` +
    `<title>${esc(title)}</title><style>${PAGE_CSS}</style></head>\n<body>${body}\n`
  );
  // The page's data ({outcome, r: a repository's rows each, s: the strings the rows number}), the strings last:
  // the table fills as the rows are made.
  const strings = new StringTable();
  const outcomes = report ? outcomesByRepository(report) : undefined;
  const now = Date.parse(plan.generatedAt);
  const undoUntil = report?.undo?.undoUntil ?? plan.undo?.until;
  yield `<script type="application/json" id="rj-data">{"outcome":${report !== undefined},"r":[`;
  for (const [i, repo] of plan.repositories.entries()) {
    const data = repositoryData(repo, strings, outcomes?.get(repo.name), now, undoUntil);
    yield (i > 0 ? ',' : '') + scriptJson(data);
  }
  yield `],"s":${scriptJson(strings.list)}}</script>\n<script>${PAGE_SCRIPT}</script></body></html>\n`;
}

function banner(plan: Plan, { maxDeleteFraction, report }: HtmlReportOptions): string {
  if (report) {
    const failed = report.failures.length + report.skippedRepositories.length;
    const untagged = report.undo
      ? `; untagged ${plural(report.undo.manifests, 'manifest')} (about ${formatBytes(report.undo.bytesPending)}), ` +
        `restorable until ${when(report.undo.undoUntil)}`
      : '';
    const what =
      `deleted ${plural(report.tagsDeleted, 'tag')} and ${plural(report.manifestsDeleted, 'manifest')}, about ` +
      `${formatBytes(report.bytesFreedEstimate)} to free on the next garbage-collect${untagged}`;
    return failed === 0
      ? `<p class="banner ok">Applied: ${what}.</p>`
      : `<p class="banner blocked">Applied with problems: ${what}; ${plural(report.failures.length, 'deletion')} ` +
          `failed and ${plural(report.skippedRepositories.length, 'repository', 'repositories')} skipped (listed below). The next run ` +
          `plans them again.</p>`;
  }
  if (!plan.complete) {
    return (
      `<p class="banner blocked">Incomplete plan: ${plural(plan.errors.length, 'read')} failed, so this plan is ` +
      `shown but never applied.</p>`
    );
  }
  const guard = checkGuard(plan, maxDeleteFraction);
  return guard.ok
    ? `<p class="banner ok">Within the delete guard: apply deletes what this page lists and nothing else.</p>`
    : `<p class="banner blocked">apply refuses this plan: ${esc(guard.message)}</p>`;
}

/**
 * How apply carries the plan out (two-phase with its window, or by digest and the race that leaves), and after a
 * two-phase apply the command that undoes it.
 */
function mode(plan: Plan, report: Report | undefined): string {
  const text = applyMode(plan);
  const u = report?.undo;
  const undo =
    u?.runId !== undefined
      ? `<p class="sub">Undo until ${esc(when(u.undoUntil))}: <code>${esc(restoreRunCommand(plan.registry, u.runId))}` +
        `</code> (or the Lambda payload <code>${esc(restoreRunPayload(u.runId))}</code>).</p>`
      : '';
  return (text === undefined ? '' : `<p class="sub mode">${esc(text)}</p>`) + undo;
}

function totals(plan: Plan, { maxDeleteFraction, report }: HtmlReportOptions): string {
  const s = plan.summary;
  const cleaned = plan.repositories.filter((r) => r.action === 'cleaned').length;
  const guard = checkGuard(plan, maxDeleteFraction);
  const guardCard = !plan.complete
    ? card('Delete guard', 'not applied', 'the plan is incomplete', 'blocked')
    : card(
        'Delete guard',
        guard.ok ? 'passes' : 'blocks',
        `deletes ${pct(s.deleteFraction)} of tags; the limit is ${pct(maxDeleteFraction)}`,
        guard.ok ? 'ok' : 'blocked',
      );
  const cards = [
    card(
      'Tags',
      num(s.tags),
      `keep ${num(s.tagsKept)} · delete ${num(s.tagsDeleted)} (${pct(s.deleteFraction)})`,
    ),
    card(
      'Manifests to delete',
      num(s.manifestsDeleted),
      `in ${plural(cleaned, 'cleaned repository', 'cleaned repositories')} of ${num(s.repositories)}`,
    ),
    ...(plan.undo === undefined
      ? [card('Space freed', formatBytes(s.bytesFreed), 'estimate, after garbage-collect')]
      : [
          card(
            'Untagged tonight',
            formatBytes(s.bytesPending ?? 0),
            `${plural(s.manifestsPending ?? 0, 'manifest')}, restorable until ${when(plan.undo.until)}, ` +
              'reclaimed after',
          ),
          card(
            'Reclaimed tonight',
            formatBytes(s.bytesFreed),
            'the sweep of earlier runs, after garbage-collect',
          ),
        ]),
    guardCard,
    ...(plan.history ? [historyCard(plan)] : []),
  ];
  const planCards = `<section class="cards" aria-label="Totals">${cards.join('')}</section>`;
  if (!report) return planCards;
  const failures = report.failures.length;
  const skipped = report.skippedRepositories.length;
  const outcome = [
    card('Tags deleted', num(report.tagsDeleted), `of ${num(s.tagsDeleted)} planned`),
    card('Manifests deleted', num(report.manifestsDeleted), `of ${num(s.manifestsDeleted)} planned`),
    card('Space to free', formatBytes(report.bytesFreedEstimate), 'on the next garbage-collect'),
    ...(report.undo
      ? [
          card(
            'Untagged',
            num(report.undo.manifests),
            `about ${formatBytes(report.undo.bytesPending)}, restorable until ${when(report.undo.undoUntil)}`,
          ),
        ]
      : []),
    card(
      'Problems',
      num(failures + skipped),
      `${plural(failures, 'failure')} · ${plural(skipped, 'repository', 'repositories')} skipped`,
      failures + skipped > 0 ? 'bad' : 'ok',
    ),
  ];
  return `${planCards}<h2>Outcome</h2><section class="cards" aria-label="Outcome">${outcome.join('')}</section>`;
}

/** Untagged history: how much of it goes, or why none of it does this run. */
function historyCard(plan: Plan): string {
  const s = plan.summary;
  const source = plan.history?.source ?? '';
  if (!plan.history?.complete || s.untaggedDeleted === undefined) {
    return card(
      'Untagged history',
      'not judged',
      plan.history?.problem ?? `${source}: listing incomplete`,
      'blocked',
    );
  }
  return card(
    'Untagged history',
    `delete ${num(s.untaggedDeleted)}`,
    `keep ${num(s.untaggedKept ?? 0)} · listed from ${source}`,
  );
}

function card(label: string, value: string, detail: string, cls = ''): string {
  return (
    `<div class="card${cls ? ` ${cls}` : ''}"><div class="label">${esc(label)}</div>` +
    `<div class="value">${esc(value)}</div><div class="detail">${esc(detail)}</div></div>`
  );
}

/** Horizontal bars, biggest first; repositories past CHART_BARS - 1 share the last bar. */
function chart(plan: Plan): string {
  const index = new Map(plan.repositories.map((r, i) => [r.name, i]));
  const deleting = plan.repositories
    .filter((r) => deletes(r))
    .sort((a, b) => b.bytesFreed - a.bytesFreed || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (deleting.length === 0) return `<p class="empty">Nothing is deleted.</p>`;
  interface Bar {
    readonly label: string;
    readonly bytes: number;
    readonly title: string;
    readonly repo?: RepositoryPlan;
  }
  const bars: Bar[] = [];
  const fits = deleting.length <= CHART_BARS;
  for (const r of fits ? deleting : deleting.slice(0, CHART_BARS - 1)) {
    bars.push({
      label: r.name,
      bytes: r.bytesFreed,
      repo: r,
      title:
        `${r.name}: ${formatBytes(r.bytesFreed)}, ${plural(r.deleteTags.length, 'tag')} and ` +
        `${plural(r.deleteManifests.length, 'manifest')} deleted`,
    });
  }
  if (!fits) {
    const rest = deleting.slice(CHART_BARS - 1);
    const bytes = rest.reduce((n, r) => n + r.bytesFreed, 0);
    const names = rest.slice(0, 10).map((r) => r.name);
    bars.push({
      label: `${rest.length} others`,
      bytes,
      title: `${rest.length} others: ${formatBytes(bytes)} (${names.join(', ')}${rest.length > 10 ? ', …' : ''})`,
    });
  }
  const max = Math.max(1, ...bars.map((b) => b.bytes));
  const width = 1000;
  // Room for the longest label shown (about 7.5 units a character at 13 px).
  const labelWidth = Math.min(
    290,
    Math.max(90, 20 + Math.ceil(7.5 * Math.max(...bars.map((b) => shownLabel(b.label).length)))),
  );
  const valueWidth = 96;
  const barSpace = width - labelWidth - valueWidth - 12;
  const row = 30;
  const height = bars.length * row + 8;
  const rows = bars.map((b, i) => {
    const y = 4 + i * row;
    const w = b.bytes === 0 ? 0 : Math.max(2, Math.round((b.bytes / max) * barSpace));
    const shown = shownLabel(b.label);
    const inner =
      `<title>${esc(b.title)}</title>` +
      `<text x="${labelWidth - 10}" y="${y + 18}" text-anchor="end">${esc(shown)}</text>` +
      `<rect class="track" x="${labelWidth}" y="${y + 5}" width="${barSpace}" height="18" rx="3"/>` +
      `<rect class="bar${b.repo ? '' : ' others'}" x="${labelWidth}" y="${y + 5}" width="${w}" height="18" rx="3"` +
      ` data-repo="${esc(b.label)}" data-bytes="${b.bytes}"/>` +
      `<text class="value" x="${labelWidth + barSpace + 10}" y="${y + 18}">${esc(formatBytes(b.bytes))}</text>`;
    return b.repo ? `<a href="#r-${index.get(b.repo.name)}">${inner}</a>` : `<g>${inner}</g>`;
  });
  return (
    `<div class="chart"><svg viewBox="0 0 ${width} ${height}" role="img" aria-label="Bytes freed per repository, ` +
    `biggest first">${rows.join('')}</svg></div>`
  );
}

/** Long names keep their end, which tells repositories of one team apart. */
const shownLabel = (name: string): string => (name.length > 36 ? `…${name.slice(-35)}` : name);

function deletes(r: RepositoryPlan): boolean {
  return (
    r.deleteTags.length > 0 ||
    r.deleteManifests.length > 0 ||
    (r.action === 'cleaned' && (r.dangling?.length ?? 0) > 0)
  );
}

function problems(plan: Plan, report: Report | undefined): string {
  const items: string[] = [];
  for (const e of plan.errors) items.push(li(problemText(e), 'error'));
  for (const s of report?.skippedRepositories ?? [])
    items.push(li(`${s.name}: skipped: ${s.reason}`, 'error'));
  for (const f of report?.failures ?? []) {
    items.push(
      li(
        `${f.repository}: ${f.target === 'tag' ? `tag ${f.reference}` : f.reference}: ${f.reason ?? 'failed'}`,
        'error',
      ),
    );
  }
  for (const w of plan.warnings) items.push(li(problemText(w), 'warning'));
  const errors =
    plan.errors.length + (report ? report.failures.length + report.skippedRepositories.length : 0);
  const heading = `<h2>Warnings and errors</h2>`;
  if (items.length === 0) return `<section>${heading}<p class="empty">None.</p></section>`;
  const list = `<ul class="problems">${items.join('')}</ul>`;
  const counts = `${plural(errors, 'error')}, ${plural(plan.warnings.length, 'warning')}`;
  // A long list would push the repositories off the first screen.
  return items.length <= 20
    ? `<section>${heading}${list}</section>`
    : `<section>${heading}<details class="all-problems"><summary>${counts}</summary>${list}</details></section>`;
}

const problemText = (p: ScanProblem): string =>
  `${p.repository ? `${p.repository}: ` : ''}${p.reference ? `${p.reference}: ` : ''}${p.message}`;
const li = (text: string, cls: string): string => `<li class="${cls}">${esc(text)}</li>`;

function repositories(plan: Plan, report: Report | undefined): string {
  const failed = new Map<string, number>();
  for (const f of report?.failures ?? []) failed.set(f.repository, (failed.get(f.repository) ?? 0) + 1);
  const skipped = new Map((report?.skippedRepositories ?? []).map((s) => [s.name, s.reason]));
  const items = plan.repositories.map((r, i) => {
    const badge =
      r.action === 'cleaned'
        ? `<span class="badge cleaned">rule #${r.rule}</span>`
        : r.action === 'protected'
          ? `<span class="badge protected">protected · rule #${r.rule}</span>`
          : `<span class="badge">no rule</span>`;
    const outcome = skipped.has(r.name)
      ? `<span class="badge skipped">skipped</span>`
      : failed.has(r.name)
        ? `<span class="badge failed">${failed.get(r.name)} failed</span>`
        : '';
    const counts =
      r.action === 'cleaned'
        ? `keep ${num(r.kept.length)} · delete ${plural(r.deleteTags.length, 'tag')}, ` +
          `${plural(r.deleteManifests.length, 'manifest')} · ${formatBytes(r.bytesFreed)}`
        : `${plural(r.kept.length, 'tag')} kept`;
    const notes = [
      ...(skipped.has(r.name) ? [li(`skipped: ${skipped.get(r.name)}`, 'error')] : []),
      ...r.warnings.map((w) => li(w, 'warning')),
    ];
    return (
      `<details class="repo" id="r-${i}" data-i="${i}"><summary><span class="name">${esc(r.name)}</span>` +
      `${badge}${outcome}<span class="hits"></span><span class="counts">${esc(counts)}</span></summary>` +
      `<div class="body"></div><ul class="problems repo-notes">${notes.join('')}</ul></details>`
    );
  });
  return (
    `<section><h2>Repositories</h2><div class="toolbar">` +
    `<input id="rj-filter" type="search" placeholder="Filter repositories and tags" aria-label="Filter repositories and tags" autocomplete="off">` +
    `<span id="rj-status" class="status">${plural(plan.repositories.length, 'repository', 'repositories')}</span></div>` +
    `<noscript><p class="empty">The tables need JavaScript; the JSON plan lists every tag.</p></noscript>` +
    `<p id="rj-none" class="empty" hidden>No repository or tag matches the filter.</p>` +
    `${items.join('\n')}</section>`
  );
}

function repositoryData(
  repo: RepositoryPlan,
  strings: StringTable,
  outcomes: RepositoryOutcomes | undefined,
  now: number,
  undoUntil: string | undefined,
): RepositoryData {
  const outcomeOf = (kind: 'manifest' | 'tag', reference: string): number | undefined => {
    if (!outcomes) return undefined;
    if (outcomes.skipped !== undefined) return strings.id(`skipped: ${outcomes.skipped}|skipped`);
    const e = (kind === 'manifest' ? outcomes.manifests : outcomes.tags).get(reference);
    if (!e) return -1;
    const label =
      e.outcome === 'already-gone'
        ? 'already gone'
        : e.outcome === 'untagged' && undoUntil !== undefined
          ? `untagged, restorable until ${when(undoUntil)}`
          : e.outcome;
    return strings.id(`${label}${e.reason ? `: ${e.reason}` : ''}|${e.outcome}`);
  };
  const row = (tag: string, digest: string, date: string, why: string, outcome: number | undefined): Row => {
    const r: Row = [tag, digest, date, strings.id(why)];
    if (outcome !== undefined) r.push(outcome);
    return r;
  };
  const sharedWith = new Map(repo.kept.map((k) => [k.digest, k.tag]));
  const deferred = new Set(repo.deleteManifests.filter((m) => m.deferred).map((m) => m.digest));
  const later = undoUntil === undefined ? '' : `untagged tonight, reclaimed after ${when(undoUntil)}`;
  const d: Row[] = repo.deleteTags.map((t) =>
    row(
      t.tag,
      short(t.digest),
      tagDate(repo, t.created),
      t.method === 'tag-only'
        ? `tag only: its image stays for ${sharedWith.get(t.digest) ?? 'a kept index that uses it'}`
        : deferred.has(t.digest)
          ? `${t.referrer ? 'referrer of a deleted image' : 'no keep rule matches'}; ${later}`
          : t.referrer
            ? 'referrer of a deleted image'
            : 'no keep rule matches; deleted with its manifest',
      outcomeOf(t.method === 'tag-only' ? 'tag' : 'manifest', t.method === 'tag-only' ? t.tag : t.digest),
    ),
  );
  for (const m of repo.deleteManifests) {
    // Untagged history is listed below with its push date and reason.
    if (m.tags.length > 0 || m.role === 'root' || m.role === 'untagged') continue;
    const why =
      (m.role === 'child'
        ? `${m.kind} in a deleted index`
        : m.role === 'leftover'
          ? `${m.kind}: ${leftoverReason(repo, m.digest)}`
          : `referrer (${m.kind}) of a deleted image`) + (m.deferred && later ? `; ${later}` : '');
    d.push(row('', short(m.digest), '', why, outcomeOf('manifest', m.digest)));
  }
  if (repo.action === 'cleaned') {
    for (const tag of repo.dangling ?? []) {
      d.push(row(tag, '-', '', 'tag only: its manifest is already gone', outcomeOf('tag', tag)));
    }
  }
  for (const u of repo.untagged?.deleted ?? []) {
    d.push(
      row(
        '',
        short(u.digest),
        u.pushedAt.slice(0, 10),
        untaggedReason(u, now),
        outcomeOf('manifest', u.digest),
      ),
    );
  }
  const k: Row[] = keptInOrder(repo.kept).map((t) =>
    row(
      t.tag,
      short(t.digest),
      tagDate(repo, t.created),
      t.reasons.map((x) => keepReason(x, repo)).join('; '),
      undefined,
    ),
  );
  for (const u of repo.untagged?.kept ?? []) {
    k.push(row('', short(u.digest), u.pushedAt.slice(0, 10), untaggedReason(u, now), undefined));
  }
  return { n: repo.name, k, d };
}

/** A keep reason in the policy's words. */
function keepReason(r: KeepReason, repo: RepositoryPlan): string {
  if (r === 'no-rule') return 'no rule matches the repository';
  if (r === 'protected') return `the repository is protected (rule #${repo.rule})`;
  if (r === 'younger-than-days') return 'younger than youngerThanDays';
  if (r === 'unknown-age') return 'age unknown: kept to be safe';
  if (r === 'subject-kept') return 'refers to a kept image';
  if (r === 'referrer-subject-untracked') return 'refers to an image pushed without a tag';
  if (r.startsWith('newest:')) return `among the newest ${r.slice('newest:'.length)}`;
  if (r.startsWith('tag-regex:')) return `matches tagsRegex ${r.slice('tag-regex:'.length)}`;
  if (r.startsWith('tag:')) return `named in tags (${r.slice('tag:'.length)})`;
  return r;
}

interface RepositoryOutcomes {
  readonly skipped?: string;
  readonly manifests: Map<string, ReportEntry>;
  readonly tags: Map<string, ReportEntry>;
}

function outcomesByRepository(report: Report): Map<string, RepositoryOutcomes> {
  const out = new Map<string, RepositoryOutcomes>();
  const get = (name: string): RepositoryOutcomes => {
    let o = out.get(name);
    if (!o) out.set(name, (o = { manifests: new Map(), tags: new Map() }));
    return o;
  };
  for (const e of report.entries) {
    if (e.target === 'repository')
      out.set(e.repository, { ...get(e.repository), skipped: e.reason ?? 'skipped' });
    else (e.target === 'manifest' ? get(e.repository).manifests : get(e.repository).tags).set(e.reference, e);
  }
  return out;
}

/** Strings many rows share (reasons, outcomes), sent once. */
class StringTable {
  public readonly list: string[] = [];
  private readonly ids = new Map<string, number>();
  public id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.list.push(s) - 1;
      this.ids.set(s, i);
    }
    return i;
  }
}

const num = (n: number): string => n.toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Text for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe inside a <script> element: no "</script>", "<!--" or line separators can end or confuse it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const sha256 = (s: string): string => `sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}`;
