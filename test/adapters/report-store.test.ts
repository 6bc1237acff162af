// The Lambda's reports in S3 (lambda/adapters/report-store.ts) with aws-sdk-client-mock: the keys by day and run,
// the content types, an HTML page naming the repositories and a JSON plan that is the plan; and, through
// runLambdaJob over the in-memory registry, that the run's log entry and result name the keys and that a failed
// write is a warning, never a failed run.
import { PutObjectCommand, S3Client, type PutObjectCommandInput } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_REPORTS_PREFIX } from '../../lambda/core/contract.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { reportKeys, runIdOf, S3ReportStore } from '../../lambda/adapters/report-store.ts';
import { runLambdaJob } from '../../lambda/lambda-job.ts';
import { configFor, context, recorder, unusedRunner } from '../support/lambda-job.ts';
import { img, inventory } from '../support/inventory.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const s3 = mockClient(S3Client);
afterAll(() => s3.restore());

const BUCKET = 'janitor-cache-bucket';
const STARTED = new Date('2026-12-01T23:30:05.123Z');
const NOW = new Date('2026-12-01T23:30:00Z');
const daysAgo = (n: number): string => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const PLAN: Plan = makePlan(
  inventory({
    manifests: { a: img(daysAgo(1)), b: img(daysAgo(30), ['big']), c: img(daysAgo(2)) },
    repos: { 'team1/api': { v2: 'a', v1: 'b' }, 'base/os': { '12': 'c' } },
  }),
  parsePolicy(
    'rules:\n  - repositories: ["base/**"]\n    protect: true\n  - repositories: ["**"]\n    keep: { newest: 1 }\n',
  ),
  NOW,
);

interface Stored {
  readonly Bucket?: string;
  readonly ContentType?: string;
  readonly body: string;
}

/** What was PUT, by key (the store sends UTF-8 bytes; a file under one part goes in one PutObject). */
function bucket(): Map<string, Stored> {
  const objects = new Map<string, Stored>();
  s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
    if (!(input.Body instanceof Uint8Array)) throw new Error('expected a body of bytes');
    const body = Buffer.from(input.Body).toString('utf8');
    objects.set(input.Key!, { Bucket: input.Bucket, ContentType: input.ContentType, body });
    return {};
  });
  return objects;
}

const store = () =>
  new S3ReportStore(new S3Client({ region: 'eu-west-1' }), { bucket: BUCKET, prefix: 'reports/' });

beforeEach(() => s3.reset());

describe('reportKeys and runIdOf', () => {
  it('files a run under its UTC day, its id sortable by time', () => {
    const runId = runIdOf(STARTED, '8f2d-41aa');
    expect(runId).toBe('20261201T233005Z-8f2d-41aa');
    expect(reportKeys(DEFAULT_REPORTS_PREFIX, STARTED, runId)).toEqual({
      html: 'reports/2026-12-01/20261201T233005Z-8f2d-41aa.html',
      json: 'reports/2026-12-01/20261201T233005Z-8f2d-41aa.json',
    });
  });

  it('keeps a run id from making its own folders or odd keys', () => {
    expect(reportKeys('r/', STARTED, '../x/y z').html).toBe('r/2026-12-01/.._x_y_z.html');
  });
});

describe('S3ReportStore', () => {
  it('PUTs the HTML page and the JSON plan to the bucket, with their content types', async () => {
    const objects = bucket();
    const step = await store().save({
      runId: 'run-1',
      startedAt: STARTED,
      plan: PLAN,
      maxDeleteFraction: 0.5,
    });
    expect(step).toEqual({
      status: 'written',
      bucket: BUCKET,
      html: 'reports/2026-12-01/run-1.html',
      json: 'reports/2026-12-01/run-1.json',
    });
    expect([...objects.keys()].sort()).toEqual([step.html, step.json]);
    for (const o of objects.values()) expect(o.Bucket).toBe(BUCKET);

    const html = objects.get(step.html)!;
    expect(html.ContentType).toBe('text/html; charset=utf-8');
    const page = html.body;
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('Cleanup plan');
    for (const repo of PLAN.repositories) expect(page).toContain(repo.name);

    const json = objects.get(step.json)!;
    expect(json.ContentType).toBe('application/json');
    expect(JSON.parse(json.body)).toEqual(PLAN);
  });

  it('shows the outcome on the page when the run applied the plan', async () => {
    const objects = bucket();
    const step = await store().save({
      runId: 'run-2',
      startedAt: STARTED,
      plan: PLAN,
      maxDeleteFraction: 0.5,
      outcome: {
        registry: PLAN.registry,
        startedAt: NOW.toISOString(),
        finishedAt: NOW.toISOString(),
        tagsDeleted: 1,
        manifestsDeleted: 1,
        bytesFreedEstimate: 1000,
        skippedRepositories: [],
        failures: [],
        entries: [],
      },
    });
    const page = objects.get(step.html)!.body;
    expect(page).toContain('Cleanup report');
    expect(page).toContain(`applied <time datetime="${NOW.toISOString()}">`);
  });

  it("with planJson false writes only the page, leaving the plan step's JSON where it is", async () => {
    const objects = bucket();
    const step = await store().save({
      runId: 'run-4',
      startedAt: STARTED,
      plan: PLAN,
      maxDeleteFraction: 0.5,
      planJson: false,
    });
    expect(step).toEqual({
      status: 'written',
      bucket: BUCKET,
      html: 'reports/2026-12-01/run-4.html',
      json: 'reports/2026-12-01/run-4.json',
    });
    expect([...objects.keys()]).toEqual([step.html]);
  });

  it('a refused write comes back as a failed step naming the key and the fix, never as an error', async () => {
    const objects = bucket();
    s3.on(PutObjectCommand, { Key: 'reports/2026-12-01/run-3.html' }).rejects(
      Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }),
    );
    const step = await store().save({
      runId: 'run-3',
      startedAt: STARTED,
      plan: PLAN,
      maxDeleteFraction: 0.5,
    });
    expect(step).toMatchObject({
      status: 'failed',
      bucket: BUCKET,
      html: 'reports/2026-12-01/run-3.html',
      json: 'reports/2026-12-01/run-3.json',
      written: ['reports/2026-12-01/run-3.json'],
    });
    const error = step.status === 'failed' ? step.error : '';
    expect(error).toContain(`s3://${BUCKET}/reports/2026-12-01/run-3.html: Access Denied`);
    expect(error).toContain(`may s3:PutObject on reports/* in ${BUCKET}`);
    expect([...objects.keys()]).toEqual(['reports/2026-12-01/run-3.json']);
  });
});

describe('runLambdaJob with a reports bucket', () => {
  function seeded(): MemoryRegistry {
    const registry = new MemoryRegistry();
    registry.addImage('team1/api', 'v1', { created: daysAgo(30) });
    registry.addImage('team1/api', 'v2', { created: daysAgo(2) });
    registry.addImage('team1/api', 'v3', { created: daysAgo(1) });
    registry.addImage('base/os', '12', { created: daysAgo(100) });
    return registry;
  }
  const config = (env: Record<string, string> = {}) =>
    configFor('http://memory.test', { REPORTS_BUCKET: BUCKET, ...env });

  async function run(dryRun: boolean) {
    const rec = recorder();
    const registry = seeded();
    const cfg = config({ DRY_RUN: String(dryRun) });
    const result = await runLambdaJob(
      {
        registry,
        runner: unusedRunner,
        logger: rec.logger,
        metrics: rec.metrics,
        now: () => STARTED,
        reports: new S3ReportStore(new S3Client({ region: 'eu-west-1' }), cfg.reports!),
      },
      cfg,
      { trigger: 'manual', skipGc: true },
      context,
    );
    return { rec, registry, result };
  }

  it('a dry run writes its report and plan, and its log entry and result name the keys', async () => {
    const objects = bucket();
    const { rec, result } = await run(true);
    const keys = reportKeys('reports/', STARTED, runIdOf(STARTED, context.awsRequestId));
    expect(result.reports).toEqual({ status: 'written', bucket: BUCKET, ...keys });
    expect([...objects.keys()].sort()).toEqual([keys.html, keys.json]);
    expect(rec.logs.find((l) => l.message === 'report')).toMatchObject({
      level: 'info',
      attributes: { reports: { html: keys.html, json: keys.json } },
    });
    const finished = rec.logs.find((l) => l.message === 'run finished');
    expect(finished?.attributes).toMatchObject({ report: { reports: { html: keys.html } } });
    const plan = JSON.parse(objects.get(keys.json)!.body) as Plan;
    expect(plan.repositories.map((r) => r.name)).toEqual(['base/os', 'team1/api']);
    expect(plan.summary).toMatchObject({ tagsDeleted: 1 });
    expect(objects.get(keys.html)!.body).toContain('team1/api');
  });

  it('a real run shows what it deleted on the page', async () => {
    const objects = bucket();
    const { result, registry } = await run(false);
    expect(result.deletions).toMatchObject({ tagsDeleted: 1 });
    expect(Object.keys(registry.tagsOf('team1/api'))).toEqual(['v2', 'v3']);
    expect(result.reports?.status).toBe('written');
    expect(objects.get(result.reports!.html)!.body).toContain('Cleanup report');
  });

  it('a failed write is a warning in the log and the result; the run still succeeds', async () => {
    s3.on(PutObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    const { rec, result, registry } = await run(false);
    expect(result.reports).toMatchObject({ status: 'failed', written: [] });
    expect(result.deletions).toMatchObject({ tagsDeleted: 1, failures: [] });
    expect(Object.keys(registry.tagsOf('team1/api'))).toEqual(['v2', 'v3']);
    const warning = rec.logs.find((l) => l.message.startsWith('report not saved: '));
    expect(warning).toMatchObject({ level: 'warn' });
    expect(warning?.message).toContain('Access Denied');
    expect(rec.metric('Errors')).toEqual([0]);
    expect(rec.logs.some((l) => l.level === 'error')).toBe(false);
  });

  it('without a reports bucket writes nothing and says null', async () => {
    const rec = recorder();
    const result = await runLambdaJob(
      { registry: seeded(), runner: unusedRunner, logger: rec.logger, metrics: rec.metrics },
      configFor('http://memory.test', { DRY_RUN: 'true' }),
      { trigger: 'manual' },
      context,
    );
    expect(result.reports).toBeNull();
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
  });
});
