// The Lambda job without a registry: metrics in EMF when a run fails, and the handler's config and connection
// handling (the job against a real registry is in test/integration/lambda-job).
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../lambda/core/errors.ts';
import type { RegistryClient } from '../../lambda/core/ports.ts';
import { createLambdaHandler, runLambdaJob } from '../../lambda/lambda-job.ts';
import { configFor, context, INSTANCE, POLICY, recorder, unusedRunner } from '../support/lambda-job.ts';

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
    { what: 'an unknown payload key', env, event: { dryRn: true }, message: 'unknown key(s) "dryRn"' },
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
