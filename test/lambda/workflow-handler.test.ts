// The workflow's entry point wires what the single run's does: the untagged-history listing of HISTORY_STORAGE
// (for the probe and the apply batches' re-check), the batch sizes and the deadline margin from the environment.
// The steps themselves are replaced to capture what they are given; the unit tier shares modules between files,
// so the mock is made with vi.doMock, the handler imported afresh, and both undone afterwards.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as Handler from '../../lambda/workflow-handler.ts';
import type { WorkflowDeps } from '../../lambda/workflow/workflow-job.ts';
import { context, INSTANCE } from '../support/lambda-job.ts';

const given: WorkflowDeps[] = [];
let handler: typeof Handler.handler;

beforeAll(async () => {
  vi.resetModules();
  vi.doMock('../../lambda/workflow/workflow-job.ts', () => ({
    runWorkflowStep: (deps: WorkflowDeps) => {
      given.push(deps);
      return Promise.resolve({});
    },
  }));
  ({ handler } = await import('../../lambda/workflow-handler.ts'));
});
afterAll(() => {
  vi.doUnmock('../../lambda/workflow/workflow-job.ts');
  vi.resetModules();
});
afterEach(() => {
  vi.unstubAllEnvs();
  given.length = 0;
});

const ENV = {
  REGISTRY_URL: 'https://registry.internal:5000',
  GC_INSTANCE_ID: INSTANCE,
  GC_DOCUMENT_NAME: 'Stack-GcDocument-AbC123',
  GC_CONTAINER_NAME: 'my-registry',
  RETENTION_POLICY: JSON.stringify({ rules: [{ repositories: ['**'], keep: { newest: 2 } }] }),
  CACHE_BUCKET: 'janitor-bucket',
  AWS_REGION: 'us-east-1',
};

async function depsWith(env: Record<string, string>): Promise<WorkflowDeps> {
  for (const [k, v] of Object.entries({ ...ENV, ...env })) vi.stubEnv(k, v);
  await handler({ step: 'plan', runId: 'exec-1' }, context);
  expect(given).toHaveLength(1);
  return given[0]!;
}

describe('the workflow handler', () => {
  it.each([
    [{ HISTORY_STORAGE: 's3://registry-data/registry' }, 's3://registry-data/registry'],
    [
      { HISTORY_STORAGE: 'container', HISTORY_LISTING_BUCKET: 'janitor-bucket' },
      `registry container my-registry on ${INSTANCE}`,
    ],
  ])('gives the steps the history listing of %o, as the single run has it', async (env, source) => {
    const deps = await depsWith(env);
    expect(deps.history?.()?.source).toBe(source);
  });

  it('gives no listing with storage none', async () => {
    const deps = await depsWith({ HISTORY_STORAGE: 'none' });
    expect(deps.history).toBeUndefined();
  });

  it('reads the batch sizes and the deadline margin, with their defaults', async () => {
    expect(await depsWith({})).toMatchObject({
      batchTags: 5_000,
      batchRepositories: 500,
      deadlineMarginMs: 60_000,
    });
    given.length = 0;
    expect(
      await depsWith({ BATCH_TAGS: '100', BATCH_REPOSITORIES: '3', DEADLINE_MARGIN_SECONDS: '0' }),
    ).toMatchObject({ batchTags: 100, batchRepositories: 3, deadlineMarginMs: 0 });
  });

  it.each([
    [{ DEADLINE_MARGIN_SECONDS: '-1' }, /DEADLINE_MARGIN_SECONDS="-1" must be a whole number of at least 0/],
    [{ BATCH_REPOSITORIES: '0' }, /BATCH_REPOSITORIES="0" must be a whole number of at least 1/],
  ])('refuses %o, naming the variable', async (env, message) => {
    // The handler's own ConfigError (imported afresh with it): matched by name.
    await expect(depsWith(env)).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringMatching(message) as string,
    });
  });
});
