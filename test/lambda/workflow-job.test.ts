// The workflow's steps in-process, in the state machine's order, over the in-memory registry and an in-memory run
// store: a full run deletes exactly what the single Lambda run deletes, a dry run stops at the plan with its
// reason, a failed inventory batch leaves the plan incomplete and nothing is deleted, garbage-collect's outcome is
// read from the SSM answer, the journal is recorded before the first DELETE and finished after the last (as in the
// single run), and a bad event is refused naming the step. The synthesized state machine itself runs
// in test/integration/workflow-local.test.ts.
import { describe, expect, it } from 'vitest';
import type { ReportStore, RunReportInput } from '../../lambda/adapters/report-store.ts';
import { runLambdaJob } from '../../lambda/lambda-job.ts';
import { MAX_WORKFLOW_BATCHES } from '../../lambda/core/contract.ts';
import type { JournalEntry } from '../../lambda/core/journal.ts';
import { runWorkflowStep, type WorkflowDeps } from '../../lambda/workflow/workflow-job.ts';
import { MemoryRunStore } from '../../lambda/workflow/run-store.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';
import { configFor, context, memoryHistory, recorder, unusedRunner } from '../support/lambda-job.ts';
import { memoryJournal } from '../support/memory-journal.ts';

const day = (d: number): string => `2026-01-${String(d).padStart(2, '0')}T00:00:00Z`;
const NOW = new Date('2026-03-01T00:00:00Z');

function seeded(): MemoryRegistry {
  const registry = new MemoryRegistry({ tagDelete: false });
  registry.addImage('base/os', '12', { created: day(1), layers: [{ seed: 'os', size: 900 }] });
  for (const repo of ['team1/api', 'team1/web', 'team2/api', 'team2/db']) {
    for (let n = 1; n <= 4; n += 1) {
      registry.addImage(repo, `v${n}`, { created: day(n), layers: [{ seed: `${repo}${n}`, size: 100 }] });
    }
  }
  return registry;
}

function depsFor(registry: MemoryRegistry, env: Record<string, string> = {}) {
  const rec = recorder();
  const store = new MemoryRunStore();
  const deps: WorkflowDeps = {
    config: configFor(registry.baseUrl, { MAX_DELETE_FRACTION: '0.9', ...env }),
    store,
    registry: () => Promise.resolve(registry),
    logger: rec.logger,
    metrics: rec.metrics,
    now: () => NOW,
    batchTags: 8,
    batchRepositories: 2,
    verifyAttempts: 1,
  };
  return { deps, store, rec };
}

/** The state machine's order, with an inventory batch that fails (its part never written) when asked. */
async function runAll(
  deps: WorkflowDeps,
  options: {
    input?: unknown;
    failInventory?: number;
    failApply?: number;
    failVerify?: number;
    gc?: Record<string, unknown>;
  } = {},
) {
  const runId = 'exec-1';
  const step = (e: Record<string, unknown>) => runWorkflowStep(deps, { runId, ...e }, context);
  const probe = (await step({ step: 'probe', input: options.input ?? {} })) as { batches: number[] };
  for (const batch of probe.batches) {
    if (batch === options.failInventory) continue;
    await step({ step: 'inventory', batch });
  }
  const plan = (await step({ step: 'plan' })) as { outcome: string; reason: string };
  if (plan.outcome !== 'apply') return { probe, plan };
  for (const batch of probe.batches) {
    if (batch === options.failApply) continue;
    await step({ step: 'apply', batch });
  }
  const collect = (await step({ step: 'collect' })) as { gc: { run: boolean; reason?: string } };
  for (const batch of probe.batches) {
    if (batch === options.failVerify) continue;
    await step({ step: 'verify', batch });
  }
  const report = await step({
    step: 'report',
    gc: collect.gc.run ? options.gc : { skipped: collect.gc.reason },
  });
  return { probe, plan, collect, report };
}

const GC_OK = {
  CommandId: 'cmd-1',
  Status: 'Success',
  ResponseCode: 0,
  StandardOutputContent: 'status=ok\nbytes_before=2048\nbytes_after=1024\n',
  StandardErrorContent: '',
};

describe('the workflow steps', () => {
  it('a full run deletes what the single invocation deletes, in batches, and reports', async () => {
    const registry = seeded();
    const { deps, rec } = depsFor(registry);
    const out = await runAll(deps, { gc: GC_OK });
    expect(out.probe.batches.length).toBeGreaterThan(1);
    expect(out.plan.outcome).toBe('apply');

    const single = seeded();
    const r = recorder();
    await runLambdaJob(
      {
        registry: single,
        runner: unusedRunner,
        logger: r.logger,
        metrics: r.metrics,
        now: () => NOW,
        runGc: () => Promise.resolve({ status: 'Success', summary: {} as never }),
        verifyAttempts: 1,
      },
      configFor(single.baseUrl, { MAX_DELETE_FRACTION: '0.9' }),
      { trigger: 'schedule' },
      context,
    );
    for (const repo of ['base/os', 'team1/api', 'team1/web', 'team2/api', 'team2/db']) {
      expect(Object.keys(registry.tagsOf(repo)).sort(), repo).toEqual(
        Object.keys(single.tagsOf(repo)).sort(),
      );
    }
    expect(Object.keys(registry.tagsOf('team1/api')).sort()).toEqual(['v3', 'v4']);
    expect(out.report).toMatchObject({ verify: { status: 'ok' }, gc: { status: 'Success' } });
    expect(rec.metric('TagsDeleted')).toEqual(r.metric('TagsDeleted'));
    expect(rec.metric('Errors')).toEqual([0]);
  });

  it('the plan step writes the page and the plan JSON; the report step only the page, with the outcome', async () => {
    const registry = seeded();
    const { deps } = depsFor(registry);
    const saved: RunReportInput[] = [];
    const reports: ReportStore = {
      save: (run) => {
        saved.push(run);
        return Promise.resolve({ status: 'written', bucket: 'b', html: 'r.html', json: 'r.json' });
      },
    };
    await runAll({ ...deps, reports }, { gc: GC_OK });
    expect(saved).toHaveLength(2);
    const [atPlan, atReport] = saved as [RunReportInput, RunReportInput];
    expect(atPlan.planJson).toBeUndefined();
    expect(atPlan.outcome).toBeUndefined();
    expect(atReport.planJson).toBe(false);
    expect(atReport.outcome).toMatchObject({ tagsDeleted: expect.any(Number) as number });
    expect(atReport.runId).toBe(atPlan.runId);
    expect(atReport.plan).toEqual(atPlan.plan);
  });

  it('the report step reads the plan back from its batches, or from the plan itself when there are none', async () => {
    for (const [registry, batches] of [
      [seeded(), true],
      [new MemoryRegistry({ tagDelete: false }), false],
    ] as const) {
      const { deps, store } = depsFor(registry);
      const saved: RunReportInput[] = [];
      const reports: ReportStore = {
        save: (run) => {
          saved.push(run);
          return Promise.resolve({ status: 'written', bucket: 'b', html: 'r.html', json: 'r.json' });
        },
      };
      const out = await runAll({ ...deps, reports }, { gc: GC_OK });
      expect(out.report).toBeDefined();
      const written = JSON.parse(store.objects.get('workflow-runs/exec-1/plan.json')!) as unknown;
      expect(saved.map((r) => r.plan)).toEqual([written, written]);
      expect(out.probe.batches.length > 0).toBe(batches);
    }
  });

  it('a dry run stops at the plan with its reason and deletes nothing', async () => {
    const registry = seeded();
    const { deps } = depsFor(registry, { DRY_RUN: 'true' });
    const out = await runAll(deps);
    expect(out.plan).toMatchObject({ outcome: 'dry-run', reason: 'dry run: nothing was deleted' });
    expect(registry.callsOf('deleteManifest')).toEqual([]);
  });

  it('a tripped delete guard stops at the plan with the guard as the reason', async () => {
    const registry = seeded();
    const { deps } = depsFor(registry, { MAX_DELETE_FRACTION: '0.1' });
    const out = await runAll(deps);
    expect(out.plan.outcome).toBe('refused');
    expect(out.plan.reason).toMatch(/^refusing to apply/);
    expect(
      registry.callsOf('deleteManifest').filter((c) => !/^sha256:0{64}$/.test(c.reference ?? '')),
    ).toEqual([]);
  });

  it('a failed inventory batch leaves the plan incomplete, and nothing is deleted', async () => {
    const registry = seeded();
    const { deps, store } = depsFor(registry);
    const out = await runAll(deps, { failInventory: 1 });
    expect(out.plan.outcome).toBe('incomplete');
    expect(out.plan.reason).toMatch(/the plan is incomplete: (1 read|\d+ reads) failed/);
    expect(Object.keys(registry.tagsOf('team1/api'))).toHaveLength(4);
    // Even an apply batch started by hand refuses the incomplete plan.
    await expect(
      runWorkflowStep(deps, { step: 'apply', runId: 'exec-1', batch: 0 }, context),
    ).rejects.toThrow(/incomplete/);
    expect([...store.objects.keys()].some((k) => k.includes('/apply/'))).toBe(false);
  });

  it('a garbage-collect that failed on the host fails the run at the report, after the verify', async () => {
    const registry = seeded();
    const { deps, rec } = depsFor(registry);
    await expect(
      runAll(deps, {
        gc: {
          ...GC_OK,
          Status: 'Failed',
          ResponseCode: 3,
          StandardOutputContent: 'status=failed\nerror=boom\n',
        },
      }),
    ).rejects.toThrow(/garbage-collect failed on the registry host/);
    expect(rec.metric('GcFailures')).toEqual([1]);
    expect(rec.metric('Errors')).toEqual([1]);
  });

  it('a verify batch that failed (its part never written) fails the run at the report, as a verify failure', async () => {
    const registry = seeded();
    const { deps, rec } = depsFor(registry);
    await expect(runAll(deps, { gc: GC_OK, failVerify: 1 })).rejects.toThrow(
      /verify batch 1 failed: its repositories were not checked/,
    );
    expect(rec.metric('VerifyFailures')).toEqual([1]);
    expect(rec.metric('Errors')).toEqual([1]);
  });

  it('an apply batch that failed (its report never written) stops no other: its repositories are reported skipped, garbage-collect reclaims the rest, and the report fails naming it', async () => {
    const registry = seeded();
    const { deps, rec } = depsFor(registry);
    const out = runAll(deps, { gc: GC_OK, failApply: 1 });
    await expect(out).rejects.toThrow(
      /skipped, nothing deleted there, e\.g\. \S+: apply batch 1 failed after its retries/,
    );
    const kept = (repo: string) => Object.keys(registry.tagsOf(repo)).length;
    const untouched = ['team1/api', 'team1/web', 'team2/api', 'team2/db'].filter((r) => kept(r) === 4);
    const cleaned = ['team1/api', 'team1/web', 'team2/api', 'team2/db'].filter((r) => kept(r) === 2);
    // Batches of two repositories (base/os has nothing to delete): one batch's repositories stay as they were.
    expect(untouched.length).toBeGreaterThan(0);
    expect(cleaned.length).toBeGreaterThan(0);
    expect(untouched.length + cleaned.length).toBe(4);
    const collect = (await runWorkflowStep(deps, { step: 'collect', runId: 'exec-1' }, context)) as {
      skippedRepositories: number;
      gc: { run: boolean };
    };
    expect(collect.skippedRepositories).toBe(untouched.length);
    expect(collect.gc.run).toBe(true);
    expect(rec.metric('Errors')).toEqual([1]);
  });

  it('a registry that would make more batches than an execution has room for fails at the probe, naming the props', async () => {
    const registry = new MemoryRegistry({ tagDelete: false });
    for (let n = 0; n <= MAX_WORKFLOW_BATCHES; n += 1) {
      registry.addImage(`r${n}`, 'v1', { created: day(1), layers: [{ seed: `r${n}`, size: 10 }] });
    }
    const { deps, store } = depsFor(registry);
    const probe = () =>
      runWorkflowStep(
        { ...deps, batchRepositories: 1 },
        { step: 'probe', runId: 'exec-1', input: {} },
        context,
      );
    await expect(probe()).rejects.toThrow(
      `the ${MAX_WORKFLOW_BATCHES + 1} repositories make ${MAX_WORKFLOW_BATCHES + 1} batches of at most 8 tags or 1 repositories, more than the workflow's ${MAX_WORKFLOW_BATCHES}`,
    );
    await expect(probe()).rejects.toThrow(/raise workflowBatchTags or workflowBatchRepositories/);
    expect([...store.objects.keys()]).toEqual([]);
    expect(
      registry.callsOf('deleteManifest').filter((c) => !/^sha256:0{64}$/.test(c.reference ?? '')),
    ).toEqual([]);
    // One repository fewer fits.
    const fits = new MemoryRegistry({ tagDelete: false });
    for (let n = 1; n <= MAX_WORKFLOW_BATCHES; n += 1) {
      fits.addImage(`r${n}`, 'v1', { created: day(1), layers: [{ seed: `r${n}`, size: 10 }] });
    }
    const ok = depsFor(fits);
    const out = (await runWorkflowStep(
      { ...ok.deps, batchRepositories: 1 },
      { step: 'probe', runId: 'exec-1', input: {} },
      context,
    )) as { batches: number[] };
    expect(out.batches).toHaveLength(MAX_WORKFLOW_BATCHES);
  });

  it('refuses an event that is not a step, and a run id that could escape its folder', async () => {
    const { deps } = depsFor(seeded());
    await expect(runWorkflowStep(deps, { step: 'nap', runId: 'x' }, context)).rejects.toThrow(
      /not a workflow step/,
    );
    await expect(runWorkflowStep(deps, { step: 'plan', runId: '../x' }, context)).rejects.toThrow(
      /not an execution name/,
    );
  });
});

describe('the journal in the workflow', () => {
  const GONE_INDEX = `sha256:${'e'.repeat(64)}`;

  /** team1/app deletes an old index and its untagged child; team2/app holds an interrupted run's leftover. */
  function withLeftover() {
    const registry = new MemoryRegistry({ tagDelete: true });
    for (const repo of ['team1/app', 'team2/app']) {
      registry.addImage(repo, 'v3', { created: day(3), layers: [{ seed: `${repo}3`, size: 100 }] });
      registry.addImage(repo, 'v2', { created: day(2), layers: [{ seed: `${repo}2`, size: 100 }] });
    }
    const child = registry.addImage('team1/app', null, { created: day(1), architecture: 'arm64' });
    const index = registry.addIndex('team1/app', 'v1', [child]);
    const left = registry.addImage('team2/app', null, { created: day(1), label: 'left' });
    const previous: JournalEntry[] = [
      { repository: 'team2/app', digest: left.digest, after: [GONE_INDEX], recordedAt: day(20) },
    ];
    return { registry, child, index, left, previous };
  }

  function journalFor(registry: MemoryRegistry, previous: readonly JournalEntry[], failSave = false) {
    const saves: { entries: JournalEntry[]; deletesBefore: number }[] = [];
    const journal: WorkflowDeps['journal'] = () => ({
      where: 's3://bucket/journal/registry.json',
      load: () => Promise.resolve(saves.at(-1)?.entries ?? previous),
      save: (entries) => {
        if (failSave) return Promise.reject(new Error('AccessDenied'));
        saves.push({ entries: [...entries], deletesBefore: registry.callsOf('deleteManifest').length });
        return Promise.resolve();
      },
    });
    return { journal, saves };
  }

  it('records what the run deletes before any apply batch, finishes a leftover, and leaves nothing over', async () => {
    const { registry, child, index, left, previous } = withLeftover();
    const { journal, saves } = journalFor(registry, previous);
    const { deps } = depsFor(registry);
    const out = await runAll({ ...deps, journal, batchRepositories: 1 }, { gc: GC_OK });
    expect(out.probe.batches).toHaveLength(2);
    expect(out.plan.outcome).toBe('apply');
    // Before the first DELETE: the leftover it read, and the index with the child that goes after it.
    expect(saves[0]!.deletesBefore).toBe(0);
    expect(saves[0]!.entries.map((e) => [e.repository, e.digest, e.after])).toEqual([
      ['team2/app', left.digest, [GONE_INDEX]],
      ['team1/app', index.digest, []],
      ['team1/app', child.digest, [index.digest]],
    ]);
    // After every batch: all of it is gone, so nothing is left to finish.
    expect(saves).toHaveLength(2);
    expect(saves[1]!.deletesBefore).toBeGreaterThan(0);
    expect(saves[1]!.entries).toEqual([]);
    expect(registry.hasManifest('team2/app', left.digest)).toBe(false);
    expect(registry.hasManifest('team1/app', child.digest)).toBe(false);
    expect(registry.hasManifest('team1/app', index.digest)).toBe(false);
    expect(Object.keys(registry.tagsOf('team2/app')).sort()).toEqual(['v2', 'v3']);

    // The single run over the same registry deletes the same manifests.
    const single = withLeftover();
    const r = recorder();
    await runLambdaJob(
      {
        registry: single.registry,
        runner: unusedRunner,
        logger: r.logger,
        metrics: r.metrics,
        now: () => NOW,
        journal: journalFor(single.registry, single.previous).journal,
      },
      configFor(single.registry.baseUrl, { MAX_DELETE_FRACTION: '0.9' }),
      { trigger: 'manual', skipGc: true },
      context,
    );
    for (const repo of ['team1/app', 'team2/app'])
      expect(registry.manifestsOf(repo).sort(), repo).toEqual(single.registry.manifestsOf(repo).sort());
  });

  it('a journal that cannot be written stops the run at the plan, before anything is deleted', async () => {
    const { registry, previous } = withLeftover();
    const { journal } = journalFor(registry, previous, true);
    const { deps } = depsFor(registry);
    await expect(runAll({ ...deps, journal, batchRepositories: 1 })).rejects.toThrow(
      /nothing was deleted: the journal s3:\/\/bucket\/journal\/registry.json could not be written \(AccessDenied\)/,
    );
    expect(registry.callsOf('deleteManifest')).toEqual([]);
  });
});

describe('the workflow two-phase (a storage listing and the journal), as the single run', () => {
  const T0 = new Date('2026-11-28T03:00:00Z');
  const at = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);
  const ago = (n: number): string => new Date(T0.getTime() - n * 86_400_000).toISOString();

  /** Three repositories, each keeping v3 and v2 and deleting v1 (in team1/app an index with its child). */
  function twoPhaseRegistry() {
    const registry = new MemoryRegistry({ tagDelete: true });
    const deleted: Record<string, string> = {};
    for (const repo of ['team1/app', 'team2/app', 'team2/web']) {
      registry.addImage(repo, 'v3', { created: ago(1), layers: [{ seed: `${repo}3`, size: 1_000 }] });
      registry.addImage(repo, 'v2', { created: ago(2), layers: [{ seed: `${repo}2`, size: 1_000 }] });
    }
    const child = registry.addImage('team1/app', null, { created: ago(30), architecture: 'amd64' });
    deleted['team1/app'] = registry.addIndex('team1/app', 'v1', [child]).digest;
    for (const repo of ['team2/app', 'team2/web'])
      deleted[repo] = registry.addImage(repo, 'v1', {
        created: ago(30),
        layers: [{ seed: `${repo}1`, size: 4_000 }],
      }).digest;
    return { registry, deleted, child };
  }

  function night(registry: MemoryRegistry, journal: ReturnType<typeof memoryJournal>, now: Date) {
    const { deps, rec } = depsFor(registry, { MAX_DELETE_FRACTION: '1' });
    return {
      rec,
      run: runAll(
        {
          ...deps,
          now: () => now,
          batchRepositories: 1,
          history: () => memoryHistory(registry, {}, { otherwise: ago(60) }),
          journal: () => journal,
        },
        { gc: GC_OK },
      ),
    };
  }

  it('untags in batches with every undo record in the journal before the first tag goes, and sweeps after the window', async () => {
    const { registry, deleted, child } = twoPhaseRegistry();
    const journal = memoryJournal();
    const first = night(registry, journal, T0);
    const out = await first.run;
    expect(out.probe.batches.length).toBeGreaterThan(1);
    for (const [repo, digest] of Object.entries(deleted)) {
      expect(Object.keys(registry.tagsOf(repo)).sort(), repo).toEqual(['v2', 'v3']);
      expect(registry.hasManifest(repo, digest), repo).toBe(true);
    }
    expect(registry.hasManifest('team1/app', child.digest)).toBe(true);
    // One write before the batches (all the undo records, none confirmed yet), one after (collect).
    const runId = (out.report as { deletions: { undo?: { runId?: string } } }).deletions.undo?.runId;
    expect(runId).toBeDefined();
    const undoOf = (entries: typeof journal.current) =>
      entries
        .filter((e) => e.untag?.runId === runId)
        .map((e) => `${e.repository}@${e.digest}`)
        .sort();
    const all = Object.entries(deleted)
      .map(([r, d]) => `${r}@${d}`)
      .sort();
    expect(undoOf(journal.saves[0]!)).toEqual(all);
    expect(undoOf(journal.current)).toEqual(all);
    expect(journal.current.every((e) => e.untag === undefined || e.untag.state === 'untagged')).toBe(true);
    // Four manifests untagged (the index with its child, two images), reported and counted like the single run.
    expect(first.rec.metric('ManifestsUntagged')).toEqual([4]);
    expect(first.rec.metric('ManifestsSwept')).toEqual([0]);
    expect(
      first.rec.logs.some(
        (l) => l.message === `untagged 4 manifests: restorable until ${at(24).toISOString()}`,
      ),
    ).toBe(true);

    // Inside the window the next execution sweeps nothing; past it, each is deleted by digest.
    const within = night(registry, journal, at(23));
    await within.run;
    expect(within.rec.metric('ManifestsSwept')).toEqual([0]);
    for (const [repo, digest] of Object.entries(deleted))
      expect(registry.hasManifest(repo, digest)).toBe(true);
    const after = night(registry, journal, at(25));
    await after.run;
    for (const [repo, digest] of Object.entries(deleted))
      expect(registry.hasManifest(repo, digest), repo).toBe(false);
    expect(registry.hasManifest('team1/app', child.digest)).toBe(false);
    expect(after.rec.metric('ManifestsSwept')).toEqual([4]);
    for (const repo of Object.keys(deleted))
      expect(Object.keys(registry.tagsOf(repo)).sort()).toEqual(['v2', 'v3']);
  });

  it('untags exactly what the single two-phase run untags', async () => {
    const wf = twoPhaseRegistry();
    const wfJournal = memoryJournal();
    await night(wf.registry, wfJournal, T0).run;
    const single = twoPhaseRegistry();
    const singleJournal = memoryJournal();
    const r = recorder();
    await runLambdaJob(
      {
        registry: single.registry,
        runner: unusedRunner,
        logger: r.logger,
        metrics: r.metrics,
        now: () => T0,
        history: memoryHistory(single.registry, {}, { otherwise: ago(60) }),
        journal: () => singleJournal,
      },
      configFor(single.registry.baseUrl, { MAX_DELETE_FRACTION: '1' }),
      { trigger: 'manual', skipGc: true },
      context,
    );
    const untagged = (j: typeof wfJournal) =>
      j.current
        .filter((e) => e.untag)
        .map((e) => [e.repository, e.digest, [...e.untag!.tags].sort()])
        .sort();
    expect(untagged(wfJournal)).toEqual(untagged(singleJournal));
    expect(untagged(wfJournal)).toHaveLength(3);
    for (const repo of ['team1/app', 'team2/app', 'team2/web'])
      expect(Object.keys(wf.registry.tagsOf(repo)).sort()).toEqual(
        Object.keys(single.registry.tagsOf(repo)).sort(),
      );
  });
});
