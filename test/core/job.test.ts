// The job the Lambda, the CLI and the demo share (runJob) over the in-memory registry: the probe comes first and
// goes where the policy cleans, a dry run sends nothing, the guard and an incomplete plan stop every DELETE, a
// declined confirmation deletes nothing, and a saved plan is probed where it deletes. The same job against real
// registries is in test/integration/lambda-job.test.ts and cli.test.ts.
import { describe, expect, it } from 'vitest';
import { RegistryError, SafetyError } from '../../lambda/core/errors.ts';
import { runJob, type JobOptions, type JobStage, type ProbeStep } from '../../lambda/core/job.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import { MemoryRegistry, type Call } from '../support/memory-registry.ts';

const NOW = new Date('2026-03-01T00:00:00Z');
const day = (d: number): string => `2026-01-${String(d).padStart(2, '0')}T00:00:00Z`;

// base/os is protected and sorts first, other/x matches no rule: the probe must skip both.
const POLICY = validatePolicy({
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['team/**'], keep: { newest: 2 } },
  ],
});

/** team/app: v1..v4 (v1 and v2 go under newest: 2); team/web: two tags (both stay); base/os; other/x. */
function seeded(options: ConstructorParameters<typeof MemoryRegistry>[0] = {}) {
  const registry = new MemoryRegistry(options);
  registry.addImage('base/os', '12', { created: day(1), layers: [{ seed: 'os', size: 900 }] });
  registry.addImage('other/x', 'latest', { created: day(1) });
  const app = [1, 2, 3, 4].map((n) =>
    registry.addImage('team/app', `v${n}`, { created: day(n), layers: [{ seed: `app${n}`, size: 100 * n }] }),
  );
  registry.addImage('team/web', 'a', { created: day(5) });
  registry.addImage('team/web', 'b', { created: day(6) });
  return { registry, app };
}

/** The options a caller passes, with recorders for the callbacks. */
function job(registry: MemoryRegistry, extra: Partial<JobOptions> = {}) {
  const stages: JobStage[] = [];
  const probes: ProbeStep[] = [];
  const plans: Plan[] = [];
  const options = {
    client: registry,
    now: NOW,
    dryRun: false,
    maxDeleteFraction: 0.5,
    policy: POLICY,
    onStage: (s: JobStage) => stages.push(s),
    onProbe: (p: ProbeStep) => probes.push(p),
    onPlan: (p: Plan) => void plans.push(p),
    ...extra,
  } as JobOptions;
  return { options, stages, probes, plans };
}

const deletes = (registry: MemoryRegistry): Call[] => registry.callsOf('deleteManifest');
const indexOf = (registry: MemoryRegistry, op: Call['op']): number =>
  registry.calls.findIndex((c) => c.op === op);

describe('runJob planning from the policy', () => {
  it('probes the first repository the policy cleans before the inventory, then deletes what the plan says', async () => {
    const { registry, app } = seeded();
    const { options, stages, probes, plans } = job(registry);
    const result = await runJob(options);

    expect(registry.callsOf('probe')).toEqual([{ op: 'probe', repository: 'team/app' }]);
    expect(indexOf(registry, 'probe')).toBeLessThan(indexOf(registry, 'listTags'));
    expect(probes).toEqual([
      { status: 'done', repository: 'team/app', deletesEnabled: true, tagDelete: false },
    ]);
    expect(stages).toEqual(['probe', 'inventory', 'guard', 'deletes']);
    expect(plans).toHaveLength(1);
    expect(plans[0]).toBe(result.plan);

    expect(result.outcome).toBe('applied');
    expect(result.applicable).toEqual({ complete: true, guard: { ok: true } });
    expect(result.inventory?.repositories.map((r) => r.name)).toEqual([
      'base/os',
      'other/x',
      'team/app',
      'team/web',
    ]);
    expect(result.report).toMatchObject({ tagsDeleted: 2, manifestsDeleted: 2, failures: [] });
    expect(
      deletes(registry)
        .map((c) => c.reference)
        .sort(),
    ).toEqual([app[0]!.digest, app[1]!.digest].sort());
    expect(Object.keys(registry.tagsOf('team/app'))).toEqual(['v3', 'v4']);
    expect(Object.keys(registry.tagsOf('team/web'))).toEqual(['a', 'b']);
    expect(Object.keys(registry.tagsOf('base/os'))).toEqual(['12']);
  });

  it('a dry run plans and checks, and sends no DELETE, not even the probe', async () => {
    const { registry } = seeded();
    const { options, stages, probes } = job(registry, { dryRun: true });
    const result = await runJob(options);
    expect(result.outcome).toBe('dry-run');
    expect(result.report).toBeUndefined();
    expect(result.plan.summary).toMatchObject({ tagsDeleted: 2, manifestsDeleted: 2 });
    expect(probes).toEqual([{ status: 'skipped', reason: expect.stringMatching(/dry run/) as string }]);
    expect(stages).toEqual(['probe', 'inventory']);
    expect(registry.writes()).toEqual([]);
    expect(registry.callsOf('probe')).toEqual([]);
  });

  it('a dry run still reports a plan the guard would refuse, without throwing', async () => {
    const { registry } = seeded();
    const { options } = job(registry, { dryRun: true, maxDeleteFraction: 0.1 });
    const result = await runJob(options);
    expect(result.outcome).toBe('dry-run');
    expect(result.applicable.guard.ok).toBe(false);
    expect(registry.writes()).toEqual([]);
  });

  it('probes only where the repository filter lets it clean', async () => {
    const { registry } = seeded();
    const { options } = job(registry, { repositories: ['team/web'] });
    const result = await runJob(options);
    expect(registry.callsOf('probe')).toEqual([{ op: 'probe', repository: 'team/web' }]);
    expect(result.plan.repositories.map((r) => r.name)).toEqual(['team/web']);
    expect(registry.writes()).toEqual([]);
  });

  it('skips the probe, naming why, when the policy cleans nothing the catalog lists', async () => {
    const registry = new MemoryRegistry();
    registry.addImage('base/os', '12', { created: day(1) });
    const { options, probes } = job(registry);
    const result = await runJob(options);
    expect(probes).toEqual([
      { status: 'skipped', reason: 'no repository in the catalog is cleaned by the policy' },
    ]);
    expect(result).toMatchObject({ outcome: 'applied', report: { tagsDeleted: 0, manifestsDeleted: 0 } });
    expect(registry.callsOf('probe')).toEqual([]);
    expect(registry.writes()).toEqual([]);
  });

  it('stops before the inventory when the registry refuses deletes', async () => {
    const { registry } = seeded({ deletesEnabled: false });
    const { options, stages } = job(registry);
    const error = await runJob(options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toMatch(/nothing was deleted: deletes are disabled/);
    expect(stages).toEqual(['probe']);
    expect(registry.callsOf('listTags')).toEqual([]);
    expect(deletes(registry)).toEqual([]);
  });

  it('refuses a plan over the delete guard: no DELETE, and the message names the limit', async () => {
    const { registry } = seeded();
    const { options, plans } = job(registry, { maxDeleteFraction: 0.2 });
    const error = await runJob(options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toMatch(/^refusing to apply: /);
    // The plan was still shown (2 of 8 tags is over 20%) before the refusal.
    expect(plans[0]?.summary).toMatchObject({ tags: 8, tagsDeleted: 2 });
    expect(deletes(registry)).toEqual([]);
  });

  it('refuses an incomplete plan (a read failed) and sends no DELETE', async () => {
    const { registry, app } = seeded();
    registry.fail('getManifest', new RegistryError('GET answered 500', { status: 500 }), {
      repository: 'team/app',
      reference: 'v4',
    });
    const { options } = job(registry);
    const error = await runJob(options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetyError);
    expect((error as Error).message).toMatch(/the plan is incomplete: 1 read failed, so nothing was deleted/);
    expect((error as Error).message).toContain('team/app@v4: ');
    expect(deletes(registry).filter((c) => c.reference === app[0]!.digest)).toEqual([]);
    expect(registry.writes().filter((c) => c.repository === 'team/app')).toEqual([]);
  });

  it('sends no DELETE at all, the probe included, when the catalog cannot be listed', async () => {
    const { registry } = seeded();
    registry.fail('listRepositories', new RegistryError('GET /v2/_catalog answered 503', { status: 503 }));
    const { options, probes } = job(registry);
    await expect(runJob(options)).rejects.toThrow(SafetyError);
    expect(probes).toEqual([{ status: 'skipped', reason: 'the catalog could not be listed' }]);
    expect(registry.callsOf('probe')).toEqual([]);
    expect(registry.writes()).toEqual([]);
  });

  it.each([
    ['a real run (the probe lists it, the inventory reuses it)', false],
    ['a dry run (no probe: the inventory lists it)', true],
  ])('lists the catalog once in %s', async (_, dryRun) => {
    const { registry } = seeded();
    const { options } = job(registry, { dryRun });
    const result = await runJob(options);
    expect(registry.callsOf('listRepositories')).toHaveLength(1);
    expect(result.plan.repositories.map((r) => r.name)).toEqual([
      'base/os',
      'other/x',
      'team/app',
      'team/web',
    ]);
  });

  it('lists the catalog again for the inventory when the probe could not, and then plans from it', async () => {
    const { registry } = seeded();
    registry.fail('listRepositories', new RegistryError('GET /v2/_catalog answered 503', { status: 503 }), {
      times: 1,
    });
    const { options, probes } = job(registry, { dryRun: false });
    const result = await runJob(options);
    expect(registry.callsOf('listRepositories')).toHaveLength(2);
    expect(probes[0]).toEqual({ status: 'skipped', reason: 'the catalog could not be listed' });
    expect(result.plan.complete).toBe(true);
    expect(result.plan.summary).toMatchObject({ tagsDeleted: 2 });
  });

  it('asks for confirmation after the checks; a no deletes nothing', async () => {
    const { registry } = seeded();
    const asked: Plan[] = [];
    const { options } = job(registry, {
      confirm: (p) => {
        asked.push(p);
        // By now the probe has run and nothing has been deleted.
        expect(registry.callsOf('probe')).toHaveLength(1);
        expect(deletes(registry)).toEqual([]);
        return Promise.resolve(false);
      },
    });
    const result = await runJob(options);
    expect(asked).toHaveLength(1);
    expect(asked[0]).toBe(result.plan);
    expect(result.outcome).toBe('declined');
    expect(result.report).toBeUndefined();
    expect(registry.writes()).toEqual([]);
  });

  it('does not ask when there is nothing to change', async () => {
    const registry = new MemoryRegistry();
    registry.addImage('team/app', 'v1', { created: day(1) });
    let asked = 0;
    const { options } = job(registry, {
      confirm: () => {
        asked += 1;
        return Promise.resolve(false);
      },
    });
    const result = await runJob(options);
    expect(asked).toBe(0);
    expect(result.outcome).toBe('applied');
    expect(registry.writes()).toEqual([]);
  });

  it('hands the probe to the deletes: on v3 a tag whose image stays is removed by deleting the tag itself', async () => {
    const { registry, app } = seeded({ tagDelete: true });
    registry.tag('team/app', 'old', app[3]!.digest);
    const byName = validatePolicy({
      rules: [{ repositories: ['team/**'], keep: { tags: ['v*', 'a', 'b'] } }],
    });
    const result = await runJob(job(registry, { policy: byName }).options);
    expect(result.probe).toMatchObject({ status: 'done', tagDelete: true });
    expect(deletes(registry).map((c) => c.reference)).toEqual(['old']);
    expect(registry.hasManifest('team/app', app[3]!.digest)).toBe(true);
    expect(registry.callsOf('putManifest')).toEqual([]);
    expect(Object.keys(registry.tagsOf('team/app'))).toEqual(['v1', 'v2', 'v3', 'v4']);
  });
});

describe('runJob applying a saved plan', () => {
  async function savedPlan(): Promise<{ registry: MemoryRegistry; plan: Plan }> {
    const { registry } = seeded();
    const planned = await runJob(job(registry, { dryRun: true }).options);
    registry.calls.length = 0;
    return { registry, plan: JSON.parse(JSON.stringify(planned.plan)) as Plan };
  }

  it('reads again only the repositories it changes (no ages), and probes where the plan deletes, after the guard', async () => {
    const { registry, plan } = await savedPlan();
    const { options, stages, probes } = job(registry, { savedPlan: plan });
    const result = await runJob(options);
    // The live re-check's inventory: what stays is derived from the registry, not from the plan file.
    expect(result.inventory?.repositories.map((r) => r.name)).toEqual(['team/app']);
    expect(registry.callsOf('getBlob')).toEqual([]);
    expect(probes[0]).toMatchObject({ status: 'skipped' });
    expect(probes[1]).toEqual({
      status: 'done',
      repository: 'team/app',
      deletesEnabled: true,
      tagDelete: false,
    });
    expect(stages).toEqual(['probe', 'guard', 'probe', 'deletes']);
    expect(registry.callsOf('listRepositories')).toHaveLength(1);
    expect(result).toMatchObject({ outcome: 'applied', report: { tagsDeleted: 2, manifestsDeleted: 2 } });
    expect(Object.keys(registry.tagsOf('team/app'))).toEqual(['v3', 'v4']);
  });

  it('still applies the guard to a saved plan', async () => {
    const { registry, plan } = await savedPlan();
    const { options } = job(registry, { savedPlan: plan, maxDeleteFraction: 0.1 });
    await expect(runJob(options)).rejects.toThrow(/^refusing to apply: /);
    expect(registry.writes()).toEqual([]);
    expect(registry.callsOf('probe')).toEqual([]);
  });

  it('refuses a saved plan marked incomplete', async () => {
    const { registry, plan } = await savedPlan();
    const incomplete: Plan = {
      ...plan,
      complete: false,
      errors: [{ repository: 'team/web', reference: 'a', message: 'GET answered 500' }],
    };
    const { options } = job(registry, { savedPlan: incomplete });
    await expect(runJob(options)).rejects.toThrow(/the plan is incomplete/);
    expect(registry.writes()).toEqual([]);
  });

  it('a dry run of a saved plan sends nothing', async () => {
    const { registry, plan } = await savedPlan();
    const result = await runJob(job(registry, { savedPlan: plan, dryRun: true }).options);
    expect(result.outcome).toBe('dry-run');
    expect(registry.calls).toEqual([]);
  });
});
