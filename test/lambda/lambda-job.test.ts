// The Lambda job without a registry: metrics in EMF when a run fails, and the handler's config and connection
// handling (the job against a real registry is in test/integration/lambda-job).
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, SafetyError } from '../../lambda/core/errors.ts';
import type { RegistryClient } from '../../lambda/core/ports.ts';
import { createLambdaHandler, runLambdaJob } from '../../lambda/lambda-job.ts';
import { configFor, context, INSTANCE, POLICY, recorder, unusedRunner } from '../support/lambda-job.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

describe('metrics in EMF', () => {
  it('publishes Errors with namespace and service dimension even when the run fails', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const metrics = new Metrics({ namespace: 'RegistryJanitor', serviceName: 'janitor-test' });
      const failing: RegistryClient = {
        baseUrl: 'http://127.0.0.1:1',
        listRepositories: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1')),
      } as unknown as RegistryClient;
      const rec = recorder();
      await expect(
        runLambdaJob(
          { registry: failing, runner: unusedRunner, logger: rec.logger, metrics },
          configFor('http://127.0.0.1:1'),
          { trigger: 'schedule' },
          context,
        ),
      ).rejects.toThrow('ECONNREFUSED');
    } finally {
      spy.mockRestore();
    }
    const emf = written.map((w) => JSON.parse(w) as Record<string, unknown>).find((o) => '_aws' in o);
    expect(emf).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'RegistryJanitor', Dimensions: [['service']] }] },
      service: 'janitor-test',
      Errors: 1,
    });
    expect(emf).toHaveProperty('RunDurationSeconds');
  });
});

describe('createLambdaHandler', () => {
  const env = {
    REGISTRY_URL: 'http://127.0.0.1:5999',
    GC_INSTANCE_ID: INSTANCE,
    GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
    RETENTION_POLICY: JSON.stringify(POLICY),
  };

  it.each([
    { what: 'a bad environment', env: { ...env, DRY_RUN: 'nope' }, event: {}, message: 'DRY_RUN="nope"' },
    { what: 'an unknown payload key', env, event: { dryRn: true }, message: 'unknown key "dryRn"' },
  ])('logs, counts and throws $what without connecting', async ({ env: e, event, message }) => {
    const rec = recorder();
    const connect = vi.fn();
    const handler = createLambdaHandler({
      env: () => e,
      logger: () => rec.logger,
      metrics: () => rec.metrics,
      connect,
    });
    await expect(handler(event, context)).rejects.toThrow(ConfigError);
    await expect(handler(event, context)).rejects.toThrow(message);
    expect(connect).not.toHaveBeenCalled();
    expect(rec.logs[0]).toMatchObject({ level: 'error', attributes: { stage: 'config' } });
    expect(rec.metric('Errors')).toEqual([1, 1]);
    expect(rec.published()).toBe(2);
  });

  it('connects once per container, and again after a failed connection', async () => {
    const rec = recorder();
    const registry = {
      baseUrl: env.REGISTRY_URL,
      listRepositories: () => Promise.resolve([]),
      listTags: () => Promise.resolve([]),
    } as unknown as RegistryClient;
    const connect = vi
      .fn()
      .mockRejectedValueOnce(new ConfigError('SSM parameter /creds does not exist'))
      .mockResolvedValue({ registry, runner: () => unusedRunner });
    const handler = createLambdaHandler({
      env: () => env,
      logger: () => rec.logger,
      metrics: () => rec.metrics,
      connect,
    });

    await expect(handler({}, context)).rejects.toThrow('/creds does not exist');
    await expect(handler({}, context)).resolves.toMatchObject({ dryRun: true, plan: { tags: 0 } });
    await expect(handler({ dryRun: true }, context)).resolves.toMatchObject({ trigger: 'manual' });
    expect(connect).toHaveBeenCalledTimes(2);
  });
});

describe('a manual payload can only make a run safer', () => {
  const env = {
    REGISTRY_URL: 'http://memory.test',
    GC_INSTANCE_ID: INSTANCE,
    GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
    RETENTION_POLICY: JSON.stringify(POLICY),
  };
  /** team1/app: three images, newest 2 kept, so a real run deletes v1; team2/svc: two, both kept. */
  function seeded(): MemoryRegistry {
    const registry = new MemoryRegistry();
    ['v1', 'v2', 'v3'].forEach((tag, i) =>
      registry.addImage('team1/app', tag, { created: `2026-01-0${i + 1}T00:00:00Z`, layers: [] }),
    );
    registry.addImage('team2/svc', 'a', { created: '2026-01-01T00:00:00Z' });
    return registry;
  }
  function handlerFor(registry: MemoryRegistry, extraEnv: Record<string, string | undefined>) {
    const rec = recorder();
    const connect = vi.fn(() => Promise.resolve({ registry, runner: () => unusedRunner }));
    const handler = createLambdaHandler({
      env: () => ({ ...env, ...extraEnv }),
      logger: () => rec.logger,
      metrics: () => rec.metrics,
      connect,
    });
    return { handler, connect, rec };
  }

  it.each([
    { what: 'DRY_RUN unset (a dry run)', stackEnv: {} },
    { what: 'DRY_RUN=true', stackEnv: { DRY_RUN: 'true' } },
    {
      what: 'DRY_RUN=true, ALLOW_MANUAL_APPLY=false',
      stackEnv: { DRY_RUN: 'true', ALLOW_MANUAL_APPLY: 'false' },
    },
  ])(
    'refuses {"dryRun": false} on a dry-run stack ($what): nothing read, nothing deleted',
    async ({ stackEnv }) => {
      const registry = seeded();
      const { handler, connect, rec } = handlerFor(registry, stackEnv);
      const run = handler({ dryRun: false, skipGc: true }, context);
      await expect(run).rejects.toThrow(SafetyError);
      await expect(handler({ dryRun: false }, context)).rejects.toThrow(
        /deployed as a dry run \(DRY_RUN=true\), so nothing was read or deleted.*allowManualApply/s,
      );
      expect(connect).not.toHaveBeenCalled();
      expect(registry.calls).toEqual([]);
      expect(rec.logs[0]).toMatchObject({ level: 'error', attributes: { stage: 'config' } });
      expect(rec.metric('Errors')).toEqual([1, 1]);
    },
  );

  it('refuses it in runLambdaJob too, before any request', async () => {
    const registry = seeded();
    const rec = recorder();
    await expect(
      runLambdaJob(
        { registry, runner: unusedRunner, logger: rec.logger, metrics: rec.metrics },
        configFor(registry.baseUrl, { DRY_RUN: 'true' }),
        { trigger: 'manual', dryRun: false },
        context,
      ),
    ).rejects.toThrow(SafetyError);
    expect(registry.calls).toEqual([]);
  });

  it('applies it when the stack opts in (ALLOW_MANUAL_APPLY=true)', async () => {
    const registry = seeded();
    const { handler } = handlerFor(registry, { DRY_RUN: 'true', ALLOW_MANUAL_APPLY: 'true' });
    const report = await handler({ dryRun: false, skipGc: true }, context);
    expect(report).toMatchObject({ dryRun: false, deletions: { tagsDeleted: 1 }, gc: { reason: 'skip-gc' } });
    expect(Object.keys(registry.tagsOf('team1/app'))).toEqual(['v2', 'v3']);
  });

  it('a scheduled run and a safer payload run as before; a payload narrows the repositories', async () => {
    const registry = seeded();
    const { handler } = handlerFor(registry, { DRY_RUN: 'true' });
    await expect(handler({}, context)).resolves.toMatchObject({ dryRun: true, trigger: 'schedule' });
    await expect(handler({ dryRun: true, repositories: ['team2/**'] }, context)).resolves.toMatchObject({
      dryRun: true,
      repositories: ['team2/**'],
      plan: { repositories: 1, tags: 1 },
    });
    expect(registry.writes()).toEqual([]);
    // On a real-run stack a payload may still ask for less: a dry run, or one repository without GC.
    const real = handlerFor(seeded(), { DRY_RUN: 'false' });
    await expect(real.handler({ dryRun: true }, context)).resolves.toMatchObject({ dryRun: true });
    const narrowed = await real.handler({ repositories: ['team2/**'], skipGc: true }, context);
    expect(narrowed).toMatchObject({
      dryRun: false,
      plan: { repositories: 1 },
      deletions: { tagsDeleted: 0 },
    });
  });
});

describe('the journal in the Lambda', () => {
  it('is read before the plan and written before the first DELETE; a journal it cannot use is a warning', async () => {
    const registry = new MemoryRegistry({ tagDelete: true });
    const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
    registry.addImage('team1/app', 'v3', { created: day(1) });
    registry.addImage('team1/app', 'v2', { created: day(2) });
    const c1 = registry.addImage('team1/app', null, { created: day(30), architecture: 'amd64' });
    registry.addIndex('team1/app', 'v1', [c1]);
    const saves: unknown[][] = [];
    const rec = recorder();
    const report = await runLambdaJob(
      {
        registry,
        runner: unusedRunner,
        logger: rec.logger,
        metrics: rec.metrics,
        journal: (warn) => ({
          where: 's3://bucket/journal/registry.json',
          load: () => {
            warn('journal s3://bucket/journal/registry.json is not used: it is for another registry');
            return Promise.resolve([]);
          },
          save: (entries) => {
            saves.push([...entries]);
            return Promise.resolve();
          },
        }),
      },
      configFor(registry.baseUrl),
      { trigger: 'manual', skipGc: true },
      context,
    );
    expect(report.deletions).toMatchObject({ manifestsDeleted: 2, failures: [] });
    // Before the deletes: the index and its child; after them: nothing left over.
    expect(saves.map((s) => s.length)).toEqual([2, 0]);
    expect(rec.logs.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'journal s3://bucket/journal/registry.json is not used: it is for another registry',
    );
  });
});
