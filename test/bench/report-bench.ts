// `npm run bench -- --mode report`: the HTML report of the demo registry and of a synthetic registry of the bench's
// shape (200 × 50 tags + latest = 10,200 by default), rendered, then opened in Debian's chromium: file size, render
// time, time to first paint and to the load event, DOM size, time to filter and to open the biggest repository.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy, validatePolicy } from '../../lambda/core/policy.ts';
import { renderHtmlReport } from '../../lambda/core/report-html.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { launchChromium, type LaunchedBrowser } from '../support/browser.ts';
import { startLocalRegistry } from '../../lambda/demo/local-registry.ts';
import { SCENARIO_POLICY, seedScenario } from '../../lambda/demo/scenario.ts';
import type { SeedShape } from './seed-bench.ts';
import { SyntheticRegistry } from './synthetic-registry.ts';

const GUARD = 0.5;

async function demoPlan(): Promise<Plan> {
  const registry = await startLocalRegistry();
  const client = createRegistryClient({ url: registry.url });
  try {
    await seedScenario(registry, { layerSize: 256 * 1024 });
    const policy = parsePolicy(SCENARIO_POLICY, 'demo policy');
    return makePlan(await scanRegistry(client, { policy }), policy, new Date());
  } finally {
    await client.close();
    await registry.dispose();
  }
}

async function syntheticPlan(shape: SeedShape, keep: number): Promise<Plan> {
  const policy = validatePolicy(
    { rules: [{ repositories: ['**'], keep: { newest: keep } }] },
    'bench policy',
  );
  return makePlan(await scanRegistry(new SyntheticRegistry(shape), { policy }), policy, new Date());
}

interface PageFigures {
  readonly responseEndMs: number;
  readonly domInteractiveMs: number;
  readonly loadEventMs: number;
  readonly firstPaintMs: number;
  readonly firstContentfulPaintMs: number;
  readonly readyMs: number;
  readonly domElements: number;
  readonly filterMs: number;
  readonly filterMatches: string;
  readonly clearFilterMs: number;
  readonly openBiggestMs: number;
  readonly openBiggestRows: number;
}

// Runs in the page. The time of an action is until the frame after it has been painted (rAF, then a task).
const MEASURE = `(async (query, biggest) => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
  const painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const input = document.getElementById('rj-filter');
  const time = async (act) => { const t0 = performance.now(); act(); await painted(); return performance.now() - t0; };
  const filterMs = await time(() => { input.value = query; input.dispatchEvent(new Event('input')); });
  const filterMatches = document.getElementById('rj-status').textContent;
  const clearFilterMs = await time(() => { input.value = ''; input.dispatchEvent(new Event('input')); });
  const d = document.getElementById(biggest);
  const t0 = performance.now();
  d.open = true;
  await new Promise((r) => d.addEventListener('toggle', r, { once: true }));
  await painted();
  return {
    responseEndMs: nav.responseEnd, domInteractiveMs: nav.domInteractive, loadEventMs: nav.loadEventEnd, firstPaintMs: paint['first-paint'], firstContentfulPaintMs: paint['first-contentful-paint'],
    readyMs: Number(document.documentElement.dataset.ready), domElements: document.getElementsByTagName('*').length,
    filterMs, filterMatches, clearFilterMs, openBiggestMs: performance.now() - t0, openBiggestRows: d.querySelectorAll('tbody tr').length,
  };
})`;

async function measurePage(
  browser: LaunchedBrowser,
  file: string,
  query: string,
  biggest: string,
): Promise<PageFigures> {
  const page = await browser.browser.newPage();
  try {
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready]');
    return (await page.evaluate(
      `${MEASURE}(${JSON.stringify(query)}, ${JSON.stringify(biggest)})`,
    )) as PageFigures;
  } finally {
    await page.close();
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

async function measureReport(
  browser: LaunchedBrowser,
  dir: string,
  name: string,
  plan: Plan,
  query: string,
  rounds: number,
): Promise<Record<string, unknown>> {
  const start = performance.now();
  const html = renderHtmlReport(plan, { maxDeleteFraction: GUARD });
  const renderMs = performance.now() - start;
  const file = join(dir, `${name}.html`);
  writeFileSync(file, html);
  const biggest = plan.repositories.reduce(
    (best, r, i) => {
      const rows = r.kept.length + r.deleteTags.length + r.deleteManifests.length;
      return rows > best.rows ? { i, rows } : best;
    },
    { i: 0, rows: -1 },
  );
  // One round first that is not counted: the browser's first page pays for its own start-up.
  await measurePage(browser, file, query, `r-${biggest.i}`);
  const samples: PageFigures[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await measurePage(browser, file, query, `r-${biggest.i}`));
  // The median of each figure over the rounds.
  const median = (k: keyof PageFigures): number => {
    const xs = samples.map((s) => Number(s[k])).sort((a, b) => a - b);
    return round1(xs[Math.floor(xs.length / 2)]!);
  };
  return {
    tags: plan.summary.tags,
    repositories: plan.summary.repositories,
    fileBytes: Buffer.byteLength(html),
    renderMs: round1(renderMs),
    chromium: {
      rounds,
      fileReadMs: median('responseEndMs'),
      parsedMs: median('domInteractiveMs'),
      firstPaintMs: median('firstPaintMs'),
      firstContentfulPaintMs: median('firstContentfulPaintMs'),
      loadEventMs: median('loadEventMs'),
      scriptReadyMs: median('readyMs'),
      domElements: samples[0]!.domElements,
      filter: { query, ms: median('filterMs'), status: samples[0]!.filterMatches },
      clearFilterMs: median('clearFilterMs'),
      openBiggestRepository: {
        name: plan.repositories[biggest.i]!.name,
        rows: samples[0]!.openBiggestRows,
        ms: median('openBiggestMs'),
      },
    },
  };
}

export async function reportMode(
  shape: SeedShape,
  keep: number,
  rounds: number,
  say: (line: string) => void,
): Promise<Record<string, unknown>> {
  say('demo registry: seeding and planning');
  const demo = await demoPlan();
  say(`synthetic registry of ${shape.repos} × ${shape.tags} tags: planning`);
  const big = await syntheticPlan(shape, keep);
  const dir = mkdtempSync(join(tmpdir(), 'rj-report-bench-'));
  const browser = await launchChromium();
  try {
    say('demo report in chromium');
    const demoFigures = await measureReport(browser, dir, 'demo', demo, 'build-', rounds);
    say(`${big.summary.tags}-tag report in chromium`);
    const bigFigures = await measureReport(browser, dir, 'synthetic', big, 'v1.004', rounds);
    return { mode: 'report', shape, keep, demo: demoFigures, synthetic: bigFigures };
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
