// The Lambda near its time-out: with less than the margin left no new DELETE is sent, garbage-collect is skipped,
// and the run reports what it did (and fails, saying why). The registry ends as the report says.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { DeleteOutcome } from '../../lambda/core/ports.ts';
import { runLambdaJob, type LambdaRunReport } from '../../lambda/lambda-job.ts';
import { configFor, recorder, unusedRunner } from '../support/lambda-job.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';

/** Every DELETE takes `ms`, as across a network. */
class SlowRegistry extends MemoryRegistry {
  public constructor(private readonly ms: number) {
    super();
  }
  public override async deleteManifest(repository: string, reference: string): Promise<DeleteOutcome> {
    await sleep(this.ms);
    return super.deleteManifest(repository, reference);
  }
}

/** team1/app: 42 images, the newest 2 kept, so 40 are deleted. */
function seeded(deleteMs: number): { registry: SlowRegistry; digests: Map<string, string> } {
  const registry = new SlowRegistry(deleteMs);
  const digests = new Map<string, string>();
  for (let i = 0; i < 42; i++) {
    const day = new Date(Date.UTC(2026, 0, 1 + i)).toISOString();
    digests.set(`v${i}`, registry.addImage('team1/app', `v${i}`, { created: day }).digest);
  }
  return { registry, digests };
}

async function run(registry: MemoryRegistry, remainingMs: number, marginMs: number) {
  const rec = recorder();
  let failure: unknown;
  await runLambdaJob(
    { registry, runner: unusedRunner, logger: rec.logger, metrics: rec.metrics, deadlineMarginMs: marginMs },
    configFor(registry.baseUrl, { MAX_DELETE_FRACTION: '1' }),
    { trigger: 'schedule' },
    { getRemainingTimeInMillis: () => remainingMs, awsRequestId: 'req-1' },
  ).catch((err: unknown) => (failure = err));
  const failed = rec.logs.find((l) => l.message.startsWith('run failed'));
  return { failure, report: failed?.attributes.report as LambdaRunReport | undefined, rec };
}

describe('the Lambda near its time-out', () => {
  it('sends no DELETE when less than the margin is left, skips GC and fails saying why', async () => {
    const { registry } = seeded(0);
    const { failure, report } = await run(registry, 30_000, 60_000);
    expect(String(failure)).toMatch(
      /stopped before the end of the plan \(the function was about to time out/,
    );
    expect(registry.callsOf('deleteManifest')).toEqual([]);
    expect(report).toMatchObject({
      deletions: {
        tagsDeleted: 0,
        manifestsDeleted: 0,
        stopped: expect.stringContaining('about to time out'),
      },
      gc: { status: 'skipped', reason: 'out-of-time' },
      verify: { status: 'skipped' },
    });
  });

  it('stops mid-run: the DELETEs in flight finish, none is started after, and the registry matches the report', async () => {
    const { registry, digests } = seeded(50);
    const { failure, report } = await run(registry, 1_075, 1_000);
    expect(String(failure)).toContain('about to time out');
    const deleted = report!.deletions!.manifestsDeleted;
    // 8 DELETEs at a time, 50 ms each, stopped 75 ms in: the first wave and the one in flight, not all 40.
    expect(deleted).toBeGreaterThanOrEqual(8);
    expect(deleted).toBeLessThan(40);
    expect(registry.callsOf('deleteManifest')).toHaveLength(deleted);
    const kept = Object.keys(registry.tagsOf('team1/app'));
    expect(kept).toHaveLength(42 - deleted);
    for (const [tag, digest] of digests) {
      expect([tag, registry.hasManifest('team1/app', digest)]).toEqual([tag, kept.includes(tag)]);
    }
    expect(kept).toEqual(expect.arrayContaining(['v40', 'v41']));
  });
});
