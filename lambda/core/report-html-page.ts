// The stylesheet and the script of the HTML report (report-html.ts), inlined into every page. The script builds
// a repository's tables from the embedded JSON only when it is opened, so a 10,000-tag page stays small.
// It writes text with textContent only: nothing from the registry is ever parsed as HTML.

export const PAGE_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f7f7f5; --fg: #1d1d1b; --muted: #686864; --card: #ffffff; --line: #e3e2de; --soft: #f0efeb;
  --del: #c2410c; --del-soft: #fdebe1; --keep: #15803d; --keep-soft: #e3f4e8;
  --warn: #92400e; --warn-soft: #fdf3d7; --err: #b91c1c; --err-soft: #fde4e4;
  --bar: #e0662f; --bar-others: #b9b7b0; --accent: #2457c5;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #151515; --fg: #e9e8e4; --muted: #a3a29c; --card: #1f1f1e; --line: #34332f; --soft: #292826;
    --del: #fb8a4c; --del-soft: #3a2317; --keep: #5fd38a; --keep-soft: #17301f;
    --warn: #f4c45c; --warn-soft: #35290f; --err: #ff8a8a; --err-soft: #3d1a1a;
    --bar: #f07b3f; --bar-others: #6b6963; --accent: #8fb0ff;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--fg); }
body {
  margin: 0 auto; max-width: 1080px; padding: 28px 24px 64px;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
[hidden] { display: none !important; }
h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 17px; margin: 32px 0 12px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); font-weight: 600; }
code, .mono, td.tag, td.digest { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.num { font-variant-numeric: tabular-nums; }
.sub { color: var(--muted); margin: 0; overflow-wrap: anywhere; }
.sub.mode, .sub + .sub { margin-top: 8px; }
.banner { margin: 18px 0 0; padding: 10px 14px; border-radius: 8px; border: 1px solid var(--line); background: var(--card); }
.banner.ok { border-color: var(--keep); background: var(--keep-soft); }
.banner.blocked { border-color: var(--err); background: var(--err-soft); }
.banner.warn { border-color: var(--warn); background: var(--warn-soft); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; margin-top: 18px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.25; margin: 2px 0; }
.card .detail { color: var(--muted); font-size: 13px; }
.card.ok .value { color: var(--keep); }
.card.blocked .value, .card.bad .value { color: var(--err); }
.chart { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 8px; }
.chart svg { display: block; width: 100%; height: auto; }
.chart text { fill: var(--fg); font: 13px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
.chart text.value { fill: var(--muted); font-variant-numeric: tabular-nums; }
.chart rect.bar { fill: var(--bar); }
.chart rect.bar.others { fill: var(--bar-others); }
.chart rect.track { fill: var(--soft); }
.chart a:hover rect.bar, .chart a:focus rect.bar { opacity: 0.8; }
.empty { color: var(--muted); margin: 0; }
ul.problems { margin: 0; padding: 0; list-style: none; }
ul.problems li { padding: 6px 10px; border-left: 3px solid var(--warn); background: var(--warn-soft); margin: 4px 0; border-radius: 0 6px 6px 0; overflow-wrap: anywhere; }
ul.problems li.error { border-color: var(--err); background: var(--err-soft); }
.toolbar { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-bottom: 10px; }
.toolbar input {
  flex: 1 1 260px; font: inherit; padding: 7px 10px; border-radius: 8px; border: 1px solid var(--line);
  background: var(--card); color: var(--fg);
}
.toolbar input:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
.toolbar .status { color: var(--muted); font-size: 13px; }
details.repo { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin: 6px 0; }
details.repo > summary {
  cursor: pointer; padding: 8px 12px; display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; list-style: none;
}
details.repo > summary::-webkit-details-marker { display: none; }
details.repo > summary::before { content: "\\25B8"; color: var(--muted); width: 10px; flex: none; }
details.repo[open] > summary::before { content: "\\25BE"; }
details.repo > summary .name { font-weight: 600; overflow-wrap: anywhere; }
details.repo > summary .counts { color: var(--muted); font-size: 13px; margin-left: auto; font-variant-numeric: tabular-nums; }
details.repo > summary .hits { color: var(--accent); font-size: 13px; }
.badge { font-size: 12px; padding: 1px 8px; border-radius: 999px; border: 1px solid var(--line); color: var(--muted); white-space: nowrap; }
.badge.cleaned { color: var(--del); border-color: var(--del); }
.badge.protected { color: var(--keep); border-color: var(--keep); }
.badge.failed, .badge.skipped { color: var(--err); border-color: var(--err); }
.body { padding: 0 12px 10px; }
.body:empty { display: none; }
.body + ul.problems.repo-notes { padding: 0 12px 10px; margin: 0; }
ul.problems.repo-notes:empty { display: none; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; table-layout: fixed; }
col.c-tag { width: 28%; } col.c-digest { width: 17%; } col.c-date { width: 11%; } col.c-outcome { width: 18%; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
th, td { padding: 4px 10px 4px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
td.tag { overflow-wrap: anywhere; }
td.digest, td.date { white-space: nowrap; color: var(--muted); }
td.untagged { color: var(--muted); font-style: italic; }
tr.del td.tag { color: var(--del); }
td.outcome-failed, td.outcome-skipped { color: var(--err); }
td.outcome-deleted, td.outcome-already-gone { color: var(--keep); }
td.outcome-untagged { color: var(--warn); }
button.more { font: inherit; font-size: 13px; margin-top: 8px; padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--soft); color: var(--fg); cursor: pointer; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; }
@media print {
  :root { color-scheme: light; --bg: #fff; --card: #fff; --fg: #000; --muted: #444; --line: #ccc; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  .toolbar, button.more, noscript { display: none !important; }
  details.repo { break-inside: auto; border: none; border-top: 1px solid var(--line); border-radius: 0; }
  details.repo > summary::before { content: none; }
  .card, .chart, .banner { break-inside: avoid; }
  tr { break-inside: avoid; }
}
`;

export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('rj-data').textContent);
  var S = data.s;
  var LIMIT = 500;
  var repos = Array.prototype.slice.call(document.querySelectorAll('details.repo'));
  var input = document.getElementById('rj-filter');
  var status = document.getElementById('rj-status');
  var none = document.getElementById('rj-none');
  var query = '';
  var lowered = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : many || one + 's'); }
  function tagsOf(i) {
    if (!lowered[i]) {
      var r = data.r[i], list = [], j;
      for (j = 0; j < r.d.length; j++) list.push(r.d[j][0].toLowerCase());
      for (j = 0; j < r.k.length; j++) list.push(r.k[j][0].toLowerCase());
      lowered[i] = list;
    }
    return lowered[i];
  }
  function hits(i) {
    var list = tagsOf(i), n = 0;
    for (var j = 0; j < list.length; j++) if (list[j] !== '' && list[j].indexOf(query) >= 0) n++;
    return n;
  }

  function table(title, rows, deleted, showAll, full) {
    var wrap = el('div', 'rows');
    var shown = [];
    for (var j = 0; j < rows.length; j++) {
      if (showAll || (rows[j][0] !== '' && rows[j][0].toLowerCase().indexOf(query) >= 0)) shown.push(rows[j]);
    }
    var count = shown.length === rows.length ? String(rows.length) : shown.length + ' of ' + rows.length;
    wrap.appendChild(el('h3', null, title + ' (' + count + ')'));
    if (shown.length === 0) { wrap.appendChild(el('p', 'empty', rows.length === 0 ? 'None.' : 'None match the filter.')); return wrap; }
    var t = el('table'), head = el('tr'), group = el('colgroup');
    var cols = ['Tag', 'Digest', 'Date', deleted ? 'Why it goes' : 'Why it stays'];
    var widths = ['c-tag', 'c-digest', 'c-date', 'c-why'];
    if (data.outcome) { cols.push(deleted ? 'Outcome' : ''); widths.push('c-outcome'); }
    for (var c = 0; c < cols.length; c++) { head.appendChild(el('th', null, cols[c])); group.appendChild(el('col', widths[c])); }
    t.appendChild(group);
    var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    var tbody = el('tbody');
    var end = full ? shown.length : Math.min(shown.length, LIMIT);
    for (var k = 0; k < end; k++) {
      var row = shown[k], tr = el('tr', deleted ? 'del' : 'keep');
      tr.appendChild(row[0] === '' ? el('td', 'tag untagged', 'untagged') : el('td', 'tag', row[0]));
      tr.appendChild(el('td', 'digest', row[1]));
      tr.appendChild(el('td', 'date', row[2]));
      tr.appendChild(el('td', 'why', S[row[3]]));
      if (data.outcome) {
        var o = !deleted ? ['', 'kept'] : row[4] === undefined || row[4] < 0 ? ['not attempted', 'none'] : S[row[4]].split('|');
        tr.appendChild(el('td', 'outcome outcome-' + o[1], o[0]));
      }
      tbody.appendChild(tr);
    }
    t.appendChild(tbody);
    wrap.appendChild(t);
    if (end < shown.length) {
      var more = el('button', 'more', 'Show all ' + shown.length);
      more.type = 'button';
      more.addEventListener('click', function () { wrap.parentNode.replaceChild(table(title, rows, deleted, showAll, true), wrap); });
      wrap.appendChild(more);
    }
    return wrap;
  }

  function render(d, full) {
    var i = Number(d.getAttribute('data-i')), r = data.r[i];
    var showAll = query === '' || r.n.toLowerCase().indexOf(query) >= 0;
    var body = d.querySelector('.body');
    body.textContent = '';
    body.appendChild(table('Deleted', r.d, true, showAll, full));
    body.appendChild(table('Kept', r.k, false, showAll, full));
    d.setAttribute('data-q', query);
  }

  function onToggle(e) {
    var d = e.target;
    if (d.open && d.getAttribute('data-q') !== query) render(d, false);
  }
  for (var i = 0; i < repos.length; i++) repos[i].addEventListener('toggle', onToggle);

  function filter() {
    query = input.value.trim().toLowerCase();
    var shown = 0, tags = 0;
    for (var i = 0; i < repos.length; i++) {
      var d = repos[i], r = data.r[i], n = 0, visible = true, label = '';
      if (query !== '') {
        var byName = r.n.toLowerCase().indexOf(query) >= 0;
        n = hits(i);
        visible = byName || n > 0;
        if (!byName && n > 0) label = plural(n, 'matching tag');
      }
      d.querySelector('.hits').textContent = label;
      d.hidden = !visible;
      if (visible) { shown++; tags += n; }
      if (visible && d.open && d.getAttribute('data-q') !== query) render(d, false);
    }
    status.textContent = query === ''
      ? plural(repos.length, 'repository', 'repositories')
      : shown + ' of ' + plural(repos.length, 'repository', 'repositories') + ' match (' + plural(tags, 'tag') + ')';
    none.hidden = shown > 0;
  }
  input.addEventListener('input', filter);

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var d = id ? document.getElementById(id) : null;
    if (d && d.tagName === 'DETAILS') {
      if (d.hidden) { input.value = ''; filter(); }
      d.open = true;
    }
  }
  window.addEventListener('hashchange', openTarget);

  // Printing shows everything: no filter, every repository open, every row.
  window.addEventListener('beforeprint', function () {
    input.value = '';
    query = '';
    for (var i = 0; i < repos.length; i++) {
      repos[i].hidden = false;
      render(repos[i], true);
      repos[i].open = true;
    }
    var all = document.querySelectorAll('details');
    for (var j = 0; j < all.length; j++) all[j].open = true;
  });

  filter();
  openTarget();
  // When the page became usable (ms since navigation), for the tests and the benchmark.
  document.documentElement.setAttribute('data-ready', String(Math.round(performance.now())));
})();
`;
