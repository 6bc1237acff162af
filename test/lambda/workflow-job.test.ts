// The workflow's steps in-process, in the state machine's order, over the in-memory registry and an in-memory run
// store: a full run deletes exactly what the single Lambda run deletes, a dry run stops at the plan with its
// reason, a failed inventory batch leaves the plan incomplete and nothing is deleted, garbage-collect's outcome is
// read from the SSM answer, and a bad event is refused naming the step. The synthesized state machine itself runs
// in test/integration/workflow-local.test.ts.
import { describe, expect, it } from 'vitest';
import { runLambdaJob } from '../../lambda/lambda-job.ts';
import { runWorkflowStep, type WorkflowDeps } from '../../lambda/workflow/workflow-job.ts';
import { MemoryRunStore } from '../../lambda/workflow/run-store.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';
import { configFor, context, recorder, unusedRunner } from '../support/lambda-job.ts';

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
  for (const batch of probe.batches) await step({ step: 'apply', batch });
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
