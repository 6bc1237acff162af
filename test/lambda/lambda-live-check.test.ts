// The Lambda path of the live re-check: whatever the planner hands the executor, nothing that stays is deleted.
// The planner is wrapped to plant a kept digest among the deletions (a planner bug, simulated); the run must skip
// that repository, report it, and fail, while the other repositories are cleaned.
// The unit tier shares modules between files (no per-file isolation), so the wrapped planner is mocked with
// vi.doMock and the job imported afresh after vi.resetModules(), then both undone for the files that follow.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Plan } from '../../lambda/core/model.ts';
import type * as Planner from '../../lambda/core/planner.ts';
import type * as LambdaJob from '../../lambda/lambda-job.ts';
import { configFor, context, recorder, unusedRunner } from '../support/lambda-job.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

const planted = { repository: undefined as string | undefined };
let runLambdaJob: typeof LambdaJob.runLambdaJob;

beforeAll(async () => {
  vi.resetModules();
  vi.doMock('../../lambda/core/planner.ts', async (importOriginal) => {
    const original = await importOriginal<typeof Planner>();
    return {
      ...original,
      plan: (...args: Parameters<typeof original.plan>): Plan => {
        const p = original.plan(...args);
        return {
          ...p,
          repositories: p.repositories.map((r) => {
            const keptDigest = r.kept[0]?.digest;
            if (r.name !== planted.repository || keptDigest === undefined) return r;
            return {
              ...r,
              deleteManifests: [
                ...r.deleteManifests,
                { digest: keptDigest, role: 'root' as const, kind: 'image' as const, tags: [], after: [] },
              ],
            };
          }),
        };
      },
    };
  });
  ({ runLambdaJob } = await import('../../lambda/lambda-job.ts'));
});
afterAll(() => {
  vi.doUnmock('../../lambda/core/planner.ts');
  vi.resetModules();
});

describe('the Lambda derives safety again before deleting', () => {
  it('skips a repository whose plan deletes a kept digest, reports it and fails the run', async () => {
    const registry = new MemoryRegistry();
    for (const repo of ['team1/app', 'team2/svc']) {
      ['v1', 'v2', 'v3'].forEach((tag, i) =>
        registry.addImage(repo, tag, { created: `2026-01-0${i + 1}T00:00:00Z` }),
      );
    }
    planted.repository = 'team1/app';
    const rec = recorder();
    const run = runLambdaJob(
      { registry, runner: unusedRunner, logger: rec.logger, metrics: rec.metrics },
      configFor(registry.baseUrl, { MAX_DELETE_FRACTION: '1' }),
      { trigger: 'manual', skipGc: true },
      context,
    );
    await expect(run).rejects.toThrow(/1 repository was skipped.*team1\/app: the live re-check found/s);
    // Nothing in team1/app was deleted, not even v1 which the policy does delete; team2/svc was cleaned.
    expect(Object.keys(registry.tagsOf('team1/app'))).toEqual(['v1', 'v2', 'v3']);
    expect(Object.keys(registry.tagsOf('team2/svc'))).toEqual(['v2', 'v3']);
    const failed = rec.logs.find((l) => l.message.startsWith('run failed'));
    expect(failed?.attributes.report).toMatchObject({
      deletions: {
        skippedRepositories: [
          { name: 'team1/app', reason: expect.stringContaining('stays (tag v2 reaches it)') },
        ],
      },
    });
    expect(rec.metric('Errors')).toEqual([1]);
  });
});
