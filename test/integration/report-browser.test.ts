// The HTML report in a real browser (Debian's chromium under puppeteer-core): the demo registry's plan and apply
// report render with no console error and no request but the page itself; the chart, the filter and printing work;
// a hostile registry's names stay text. Screenshots go to test-output/ for a person to look at.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { renderHtmlReport } from '../../lambda/core/report-html.ts';
import { formatBytes } from '../../lambda/core/report.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { launchChromium, type LaunchedBrowser } from '../support/browser.ts';
import { HOSTILE, hostilePlan } from '../support/hostile-plan.ts';
import {
  assertRegistryBinary,
  startLocalRegistry,
  type LocalRegistry,
} from '../../lambda/demo/local-registry.ts';
import { SCENARIO_POLICY, seedScenario } from '../../lambda/demo/scenario.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OUTPUT = join(ROOT, 'test-output');
/** Set to write the screenshot the README shows (test/report-screenshot.png) as well. */
const UPDATE_README_SCREENSHOT = process.env.UPDATE_REPORT_SCREENSHOT === '1';
const GUARD = 0.5;

interface Opened {
  readonly page: Page;
  readonly errors: string[];
  readonly requests: string[];
}

describe('HTML report in chromium', () => {
  let registry: LocalRegistry;
  let browser: LaunchedBrowser;
  let plan: Plan;
  const dir = mkdtempSync(join(tmpdir(), 'rj-report-'));
  const policy = parsePolicy(SCENARIO_POLICY, 'demo policy');

  beforeAll(async () => {
    assertRegistryBinary();
    registry = await startLocalRegistry();
    // The demo's layer size, so the sizes read as the demo's do.
    await seedScenario(registry, { layerSize: 256 * 1024 });
    const client = createRegistryClient({ url: registry.url });
    try {
      plan = makePlan(await scanRegistry(client, { policy }), policy, new Date());
    } finally {
      await client.close();
    }
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await registry?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Open a rendered page from disk, recording console errors, page errors, dialogs and every request. */
  async function open(html: string, name: string, scheme: 'light' | 'dark' = 'light'): Promise<Opened> {
    const file = join(dir, `${name}.html`);
    writeFileSync(file, html);
    const url = pathToFileURL(file).href;
    const page = await browser.browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') errors.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${String(e)}`));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      if (r.url() === url) return void r.continue();
      requests.push(r.url());
      void r.abort();
    });
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('html[data-ready]');
    return { page, errors, requests };
  }

  const visibleRepositories = (page: Page): Promise<string[]> =>
    page.evaluate(
      `[...document.querySelectorAll('details.repo')].filter((d) => !d.hidden).map((d) => d.querySelector('.name').textContent)`,
    ) as Promise<string[]>;
  const rowTags = (page: Page, repo: string, table: 'del' | 'keep'): Promise<string[]> =>
    page.evaluate(
      `[...[...document.querySelectorAll('details.repo')].find((d) => d.querySelector('.name').textContent === ${JSON.stringify(repo)})` +
        `.querySelectorAll('tr.${table} td.tag')].map((td) => td.textContent)`,
    ) as Promise<string[]>;
  const openRepository = (page: Page, repo: string): Promise<unknown> =>
    page.evaluate(
      `[...document.querySelectorAll('details.repo')].find((d) => d.querySelector('.name').textContent === ${JSON.stringify(repo)})` +
        `.querySelector('summary').click()`,
    );

  it('renders the demo registry plan with no console error and no request but the page itself', async () => {
    const { page, errors, requests } = await open(
      renderHtmlReport(plan, { maxDeleteFraction: GUARD }),
      'plan',
    );
    try {
      expect(await page.title()).toBe(`Cleanup plan for ${registry.url}`);
      const cards = (await page.evaluate(
        `[...document.querySelectorAll('.card')].map((c) => c.querySelector('.label').textContent + ': ' + c.querySelector('.value').textContent)`,
      )) as string[];
      expect(cards).toEqual([
        `Tags: ${plan.summary.tags}`,
        `Manifests to delete: ${plan.summary.manifestsDeleted}`,
        `Space freed: ${formatBytes(plan.summary.bytesFreed)}`,
        'Delete guard: passes',
      ]);
      // Collapsed by default: no table until a repository is opened.
      expect(await page.evaluate(`document.querySelectorAll('table').length`)).toBe(0);
      await openRepository(page, 'team1/api');
      const api = plan.repositories.find((r) => r.name === 'team1/api')!;
      expect((await rowTags(page, 'team1/api', 'del')).sort()).toEqual(
        api.deleteTags.map((t) => t.tag).sort(),
      );
      expect((await rowTags(page, 'team1/api', 'keep')).sort()).toEqual(api.kept.map((t) => t.tag).sort());
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
        await page.screenshot({ path: join(OUTPUT, `report-${scheme}.png`), fullPage: true });
      }
      if (UPDATE_README_SCREENSHOT) {
        await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
        await page.screenshot({ path: join(ROOT, 'test', 'report-screenshot.png'), fullPage: true });
      }
    } finally {
      await page.close();
    }
  });

  it('charts every repository with deletions, with its bytes', async () => {
    const { page, errors } = await open(renderHtmlReport(plan, { maxDeleteFraction: GUARD }), 'chart');
    try {
      const bars = (await page.evaluate(
        `[...document.querySelectorAll('.chart rect.bar')].map((r) => ({ repo: r.dataset.repo, bytes: Number(r.dataset.bytes), ` +
          `width: r.getBBox().width, label: r.parentNode.querySelector('text.value').textContent }))`,
      )) as { repo: string; bytes: number; width: number; label: string }[];
      const deleting = plan.repositories.filter((r) => r.deleteTags.length > 0);
      expect(deleting.length).toBeGreaterThanOrEqual(3);
      expect(bars.map((b) => b.repo).sort()).toEqual(deleting.map((r) => r.name).sort());
      for (const r of deleting) {
        const bar = bars.find((b) => b.repo === r.name)!;
        expect(bar.bytes).toBe(r.bytesFreed);
        expect(bar.label).toBe(formatBytes(r.bytesFreed));
        expect(bar.width).toBeGreaterThan(0);
      }
      // Biggest first, and drawn to scale.
      expect(bars.map((b) => b.bytes)).toEqual([...bars.map((b) => b.bytes)].sort((a, b) => b - a));
      expect(bars[1]!.width / bars[0]!.width).toBeCloseTo(bars[1]!.bytes / bars[0]!.bytes, 1);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the filter narrows the repositories and the rows of an open table', async () => {
    const { page, errors } = await open(renderHtmlReport(plan, { maxDeleteFraction: GUARD }), 'filter');
    try {
      const all = plan.repositories.map((r) => r.name);
      expect(await visibleRepositories(page)).toEqual(all);
      await openRepository(page, 'team1/api');
      const api = plan.repositories.find((r) => r.name === 'team1/api')!;
      await page.type('#rj-filter', 'build-');
      const withBuild = plan.repositories.filter((r) =>
        [...r.kept, ...r.deleteTags].some((t) => t.tag.includes('build-')),
      );
      expect(withBuild.length).toBeLessThan(all.length);
      expect(await visibleRepositories(page)).toEqual(withBuild.map((r) => r.name));
      expect((await rowTags(page, 'team1/api', 'del')).sort()).toEqual(
        api.deleteTags
          .map((t) => t.tag)
          .filter((t) => t.includes('build-'))
          .sort(),
      );
      expect(await rowTags(page, 'team1/api', 'keep')).not.toContain('latest');
      // A repository name matches all its rows.
      await page.$eval('#rj-filter', (e) => ((e as unknown as { value: string }).value = ''));
      await page.type('#rj-filter', 'team2');
      expect(await visibleRepositories(page)).toEqual(all.filter((n) => n.includes('team2')));
      await page.$eval('#rj-filter', (e) => ((e as unknown as { value: string }).value = ''));
      await page.type('#rj-filter', 'no-such-thing');
      expect(await visibleRepositories(page)).toEqual([]);
      expect(await page.evaluate(`document.getElementById('rj-none').hidden`)).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('prints everything: the filter hidden, every repository open with all its rows', async () => {
    const { page, errors } = await open(renderHtmlReport(plan, { maxDeleteFraction: GUARD }), 'print');
    try {
      await page.type('#rj-filter', 'team2');
      // Printing (here to PDF) fires beforeprint, as a person's print does.
      const pdf = await page.pdf({ format: 'A4' });
      expect(Buffer.from(pdf.subarray(0, 5)).toString()).toBe('%PDF-');
      await page.emulateMediaType('print');
      expect(await page.evaluate(`getComputedStyle(document.querySelector('.toolbar')).display`)).toBe(
        'none',
      );
      expect(await visibleRepositories(page)).toEqual(plan.repositories.map((r) => r.name));
      const rows = (await page.evaluate(`document.querySelectorAll('tbody tr').length`)) as number;
      const planned = plan.repositories.reduce(
        (n, r) =>
          n +
          r.kept.length +
          r.deleteTags.length +
          r.deleteManifests.filter((m) => m.tags.length === 0 && m.role !== 'root').length +
          (r.action === 'cleaned' ? (r.dangling?.length ?? 0) : 0),
        0,
      );
      expect(rows).toBe(planned);
      expect(await page.evaluate(`[...document.querySelectorAll('details')].every((d) => d.open)`)).toBe(
        true,
      );
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("a hostile registry's names are shown as text and run nothing", async () => {
    const { page, errors, requests } = await open(
      renderHtmlReport(hostilePlan(), { maxDeleteFraction: GUARD }),
      'hostile',
    );
    try {
      await page.evaluate(`document.querySelectorAll('details').forEach((d) => (d.open = true))`);
      await new Promise((r) => setTimeout(r, 100));
      expect(await page.evaluate(`window.__pwned`)).toBeUndefined();
      const texts = (await page.evaluate(
        `[...document.querySelectorAll('td.tag')].map((td) => td.textContent)`,
      )) as string[];
      expect(texts.sort()).toEqual([...HOSTILE].sort());
      expect(await page.evaluate(`document.querySelector('details.repo .name').textContent`)).toBe(
        HOSTILE[0],
      );
      expect(await page.evaluate(`document.querySelectorAll('img, iframe, object, embed').length`)).toBe(0);
      expect(await page.evaluate(`document.querySelectorAll('script').length`)).toBe(2);
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('after apply, every deleted row says deleted, and the page still requests nothing', async () => {
    const client = createRegistryClient({ url: registry.url });
    let html: string;
    try {
      const report = await applyPlan(plan, client, { maxDeleteFraction: GUARD });
      expect(report.failures).toEqual([]);
      html = renderHtmlReport(plan, { maxDeleteFraction: GUARD, report });
    } finally {
      await client.close();
    }
    const { page, errors, requests } = await open(html, 'applied', 'dark');
    try {
      expect(await page.title()).toBe(`Cleanup report for ${registry.url}`);
      await page.evaluate(`window.dispatchEvent(new Event('beforeprint'))`);
      const outcomes = (await page.evaluate(
        `[...document.querySelectorAll('tr.del td.outcome')].map((td) => td.textContent)`,
      )) as string[];
      expect(outcomes.length).toBeGreaterThanOrEqual(plan.summary.tagsDeleted);
      expect(new Set(outcomes)).toEqual(new Set(['deleted']));
      await page.screenshot({ path: join(OUTPUT, 'report-applied-dark.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
