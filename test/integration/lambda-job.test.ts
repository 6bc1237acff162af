// The Lambda job against a real local registry: dry and real runs, the GC and verify steps, every failure path
// (logged, counted in Errors, thrown), and the handler's wiring with credentials from the SSM stand-in.
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import type { InvokeOverrides } from '../../lambda/config.ts';
import { GcError, JanitorError, SafetyError } from '../../lambda/core/errors.ts';
import { GcCommandError, type GcResult, type GcRunOptions } from '../../lambda/core/gc.ts';
import { parseGcOutput } from '../../lambda/core/gc-script.ts';
import type { CommandRunner, RegistryClient } from '../../lambda/core/ports.ts';
import {
  runLambdaJob,
  type LambdaJobDeps,
  type LambdaRunReport,
  type SavableCache,
} from '../../lambda/lambda-job.ts';
import { htpasswdAuthConfig, writeHtpasswd } from '../support/htpasswd.ts';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage, type PushedImage, type SeedTarget } from '../../lambda/demo/seed.ts';
import { startSsmStandIn } from '../support/ssm-stand-in.ts';
import { configFor, context, INSTANCE, POLICY, recorder, unusedRunner } from '../support/lambda-job.ts';

const NOW = new Date('2026-03-01T00:00:00Z');

/** team1/app: v1..v4 (newest 2 kept); team2/svc: a, b (both kept); base/img: protected; other/x: no rule. */
async function seed(target: SeedTarget) {
  const day = (d: number) => `2025-01-${String(d).padStart(2, '0')}T00:00:00Z`;
  const shared = { seed: 'shared-base', size: 20_000 };
  const app: Record<string, PushedImage> = {};
  for (const [i, tag] of ['v1', 'v2', 'v3', 'v4'].entries()) {
    app[tag] = await pushImage(target, 'team1/app', tag, {
      created: day(i + 1),
      layers: [shared, { seed: `app-${tag}`, size: 60_000 }],
    });
  }
  const svc = {
    a: await pushImage(target, 'team2/svc', 'a', {
      created: day(1),
      layers: [{ seed: 'svc-a', size: 5_000 }],
    }),
    b: await pushImage(target, 'team2/svc', 'b', {
      created: day(2),
      layers: [{ seed: 'svc-b', size: 5_000 }],
    }),
  };
  const base = await pushImage(target, 'base/img', '1.0', { created: day(1), layers: [shared] });
  const other = await pushImage(target, 'other/x', 'latest', {
    created: day(1),
    layers: [{ seed: 'x', size: 3_000 }],
  });
  return { app, svc, base, other };
}

/** Garbage-collect as the host would: registry stopped, `registry garbage-collect`, started again. */
function localGc(registry: LocalRegistry, options: { damage?: () => void } = {}) {
  const calls: { runner: CommandRunner; options: GcRunOptions | undefined }[] = [];
  const run = async (runner: CommandRunner, gcOptions?: GcRunOptions): Promise<GcResult> => {
    calls.push({ runner, options: gcOptions });
    const before = registry.diskUsage();
    await registry.stop();
    const out = registry.garbageCollect();
    options.damage?.();
    await registry.restart();
    const after = registry.diskUsage();
    const summary = out.split('\n').find((l) => /blobs marked/.test(l)) ?? '';
    return {
      status: 'Success',
      commandId: 'cmd-local',
      summary: parseGcOutput(
        [`summary=${summary}`, `bytes_before=${before}`, `bytes_after=${after}`, 'status=ok']
          .map((l) => `registry-janitor: ${l}`)
          .join('\n'),
      ),
    };
  };
  return { run, calls };
}

/** The client's calls by method name, in order (every method forwarded to the real client). */
function recordingClient(target: RegistryHttpClient): { client: RegistryClient; methods: () => string[] } {
  const calls: string[] = [];
  const client = new Proxy(target, {
    get(t, prop, receiver) {
      const value: unknown = Reflect.get(t, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  return { client, methods: () => [...calls] };
}

async function tagsOf(client: RegistryClient, repo: string): Promise<string[]> {
  return client.listTags(repo);
}

describe('runLambdaJob against a local registry', () => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;
  let seeded: Awaited<ReturnType<typeof seed>>;
  let rec: ReturnType<typeof recorder>;

  beforeEach(async () => {
    registry = await startLocalRegistry();
    // No retries: a registry that is down answers at once, and the job's own verify retry is what is tested.
    client = createRegistryClient({ url: registry.url, retries: 0 });
    seeded = await seed({ url: registry.url });
    rec = recorder();
  });
  afterEach(async () => {
    await client.close();
    await registry.dispose();
  });

  const deps = (over: Partial<LambdaJobDeps> = {}): LambdaJobDeps => ({
    registry: client,
    runner: unusedRunner,
    logger: rec.logger,
    metrics: rec.metrics,
    now: () => NOW,
    sleep: () => Promise.resolve(),
    ...over,
  });
  const run = (
    over: Partial<LambdaJobDeps> = {},
    overrides: InvokeOverrides = { trigger: 'schedule' },
    env: Record<string, string> = {},
  ): Promise<LambdaRunReport> => runLambdaJob(deps(over), configFor(registry.url, env), overrides, context);

  it('dry run: logs exactly what would be deleted and changes nothing', async () => {
    const report = await run({}, { trigger: 'schedule' }, { DRY_RUN: 'true' });

    expect(report).toMatchObject({
      dryRun: true,
      trigger: 'schedule',
      probe: { status: 'skipped', reason: 'dry run: no DELETE is sent' },
      plan: { complete: true, tags: 8, tagsKept: 6, tagsDeleted: 2, guard: { ok: true } },
      deletions: null,
      gc: { status: 'skipped', reason: 'dry-run' },
      verify: { status: 'skipped' },
      bytesFreed: 0,
    });
    expect(await tagsOf(client, 'team1/app')).toEqual(['v1', 'v2', 'v3', 'v4']);
    const planned = rec.logs.filter((l) => l.message === 'plan: repository');
    expect(
      planned.map((l) => [
        l.attributes.repository,
        (l.attributes.deleteTags as { tag: string }[]).map((t) => t.tag),
      ]),
    ).toEqual([['team1/app', ['v1', 'v2']]]);
    expect(rec.logs.at(-1)).toMatchObject({ message: 'run finished', attributes: { report } });
    expect(rec.metric('TagsDeleted')).toEqual([0]);
    expect(rec.metric('Errors')).toEqual([0]);
    expect(rec.published()).toBe(1);
  });

  it('real run: deletes the plan, collects garbage, verifies what it kept', async () => {
    const gc = localGc(registry);
    const report = await run({ runGc: gc.run });

    expect(await tagsOf(client, 'team1/app')).toEqual(['v3', 'v4']);
    expect(await tagsOf(client, 'team2/svc')).toEqual(['a', 'b']);
    expect(gc.calls).toEqual([
      {
        runner: unusedRunner,
        options: {
          containerName: 'my-registry',
          configPath: '/etc/distribution/config.yml',
          mode: 'offline',
          deleteUntagged: false,
          timeoutSeconds: 900,
        },
      },
    ]);
    // The deleted images' own layers are gone after GC; the shared one stays for the kept images.
    for (const tag of ['v1', 'v2'])
      expect(await client.headBlob('team1/app', seeded.app[tag]!.layers[1]!.digest)).toBe(false);
    expect(await client.headBlob('team1/app', seeded.app.v3!.layers[0]!.digest)).toBe(true);

    expect(report).toMatchObject({
      dryRun: false,
      deletions: { tagsDeleted: 2, manifestsDeleted: 2, failures: [] },
      gc: { status: 'Success', commandId: 'cmd-local' },
      verify: { status: 'ok', attempts: 1, problems: [], tagsChecked: 6 },
    });
    expect(report.gc?.status === 'Success' && report.gc.summary.bytesFreed).toBeGreaterThan(100_000);
    expect(report.bytesFreed).toBeGreaterThan(100_000);
    expect(rec.metric('TagsDeleted')).toEqual([2]);
    expect(rec.metric('ManifestsDeleted')).toEqual([2]);
    expect(rec.metric('BytesFreed')).toEqual([report.bytesFreed]);
    expect(rec.metric('GcFailures')).toEqual([0]);
    expect(rec.metric('VerifyFailures')).toEqual([0]);
    expect(rec.metric('GcDurationSeconds')).toHaveLength(1);
    expect(rec.metric('Errors')).toEqual([0]);
  });

  it('a manual payload narrows the run and skips GC, and verify still runs', async () => {
    const gc = localGc(registry);
    const report = await run(
      { runGc: gc.run },
      { trigger: 'manual', repositories: ['team2/**'], skipGc: true },
      { MAX_DELETE_FRACTION: '1' },
    );
    expect(report.plan).toMatchObject({ repositories: 1, tags: 2, tagsDeleted: 0 });
    expect(report.gc).toEqual({ status: 'skipped', reason: 'skip-gc' });
    expect(report.verify).toMatchObject({ status: 'ok', tagsChecked: 2 });
    expect(gc.calls).toHaveLength(0);
    expect(await tagsOf(client, 'team1/app')).toHaveLength(4);
  });

  it('a manifest cache is read, passed to the inventory and saved; the second run reads no config and one manifest per tag at most', async () => {
    const store = new Map<string, string | null>();
    let saves = 0;
    const cache: SavableCache = {
      getConfigCreated: (d) => store.get(d),
      setConfigCreated: (d, created) => void store.set(d, created),
      get size() {
        return store.size;
      },
      save: () => {
        saves += 1;
        return Promise.resolve(true);
      },
    };
    const start = client.stats();
    const first = await run(
      { openCache: () => Promise.resolve(cache) },
      { trigger: 'schedule' },
      { DRY_RUN: 'true' },
    );
    expect(saves).toBe(1);
    expect(store.size).toBeGreaterThan(0);
    const before = client.stats();
    expect(before.blobGet - start.blobGet).toBeGreaterThan(0);
    const second = await run(
      { openCache: () => Promise.resolve(cache) },
      { trigger: 'schedule' },
      { DRY_RUN: 'true' },
    );
    const after = client.stats();
    expect(second.plan).toEqual(first.plan);
    // One request per tag at most (8 tags), and no config is read again.
    expect(
      after.manifestGet + after.manifestHead - before.manifestGet - before.manifestHead,
    ).toBeLessThanOrEqual(8);
    expect(after.blobGet - before.blobGet).toBe(0);
    expect(saves).toBe(2);
  });

  it('skips GC when nothing was deleted', async () => {
    const gc = localGc(registry);
    const report = await run({ runGc: gc.run }, { trigger: 'manual', repositories: ['team2/**'] });
    expect(report.gc).toEqual({ status: 'skipped', reason: 'nothing-deleted' });
    expect(gc.calls).toHaveLength(0);
  });

  it('a manual dryRun: true overrides DRY_RUN=false', async () => {
    const report = await run({}, { trigger: 'manual', dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(await tagsOf(client, 'team1/app')).toHaveLength(4);
  });

  it('retries verification while the registry comes back after GC', async () => {
    let slept = 0;
    const report = await run({
      runGc: async () => {
        await registry.stop();
        return { status: 'Success', summary: parseGcOutput('registry-janitor: status=ok\n') };
      },
      sleep: async () => {
        slept += 1;
        await registry.restart();
      },
    });
    expect(slept).toBe(1);
    expect(report.verify).toMatchObject({ status: 'ok', attempts: 2, problems: [] });
    // No du figures from GC: the plan's estimate stands in.
    expect(report.bytesFreed).toBe(report.deletions!.bytesFreedEstimate);
  });

  it('fails, after logging, when a kept image lost a blob', async () => {
    const keptLayer = seeded.app.v4!.layers[1]!.digest.slice('sha256:'.length);
    const gc = localGc(registry, {
      damage: () =>
        rmSync(
          join(registry.storageDir, 'docker/registry/v2/blobs/sha256', keptLayer.slice(0, 2), keptLayer),
          {
            recursive: true,
          },
        ),
    });
    const err = await run({ runGc: gc.run, verifyAttempts: 2 }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(JanitorError);
    expect((err as Error).message).toContain('verification found 1 problem with');
    expect((err as Error).message).toContain(keptLayer);
    expect(rec.metric('VerifyFailures')).toEqual([1]);
    expect(rec.metric('Errors')).toEqual([1]);
    expect(rec.published()).toBe(1);
    const failed = rec.logs.find((l) => l.message.startsWith('run failed during verify'));
    expect(failed?.level).toBe('error');
    expect(failed?.attributes.report).toMatchObject({ verify: { status: 'failed', attempts: 2 } });
  });

  it('GC failure: counted, verification still runs, then the run fails', async () => {
    const summary = parseGcOutput(
      'registry-janitor: error_code=gc-failed\nregistry-janitor: status=failed\n',
    );
    const err = await run({
      runGc: () =>
        Promise.reject(
          new GcCommandError('garbage-collect failed on the registry host', 'Failed', 5, summary, 'cmd-9'),
        ),
    }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(GcError);
    expect(rec.metric('GcFailures')).toEqual([1]);
    expect(rec.metric('Errors')).toEqual([1]);
    const failed = rec.logs.find((l) => l.message.startsWith('run failed during gc'));
    expect(failed?.attributes.report).toMatchObject({
      gc: { status: 'failed', commandId: 'cmd-9', error: 'garbage-collect failed on the registry host' },
      verify: { status: 'ok' },
    });
  });

  it('GC still running when time runs out: no verification, the run fails naming the command', async () => {
    const err = await run({
      runGc: () => Promise.resolve({ status: 'InProgress', commandId: 'cmd-42' }),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('cmd-42');
    expect(rec.metric('GcFailures')).toEqual([1]);
    const failed = rec.logs.find((l) => l.level === 'error' && l.message.startsWith('run failed'));
    expect(failed?.attributes.report).toMatchObject({
      gc: { status: 'InProgress' },
      verify: { status: 'skipped' },
    });
  });

  it('a failed DELETE does not stop GC or verification, and fails the run at the end', async () => {
    const failing = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'deleteManifest') {
          return (repo: string, ref: string) =>
            ref === seeded.app.v1!.digest
              ? Promise.reject(new Error('boom'))
              : target.deleteManifest(repo, ref);
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const gc = localGc(registry);
    const err = await run({ registry: failing, runGc: gc.run }).catch((e: unknown) => e);

    expect((err as Error).message).toContain('1 deletion failed');
    expect(gc.calls).toHaveLength(1);
    expect(await tagsOf(client, 'team1/app')).toEqual(['v1', 'v3', 'v4']);
    const failed = rec.logs.find((l) => l.message.startsWith('run failed during deletes'));
    expect(failed?.attributes.report).toMatchObject({
      deletions: { manifestsDeleted: 1 },
      verify: { status: 'ok' },
    });
  });

  it('refuses before the inventory when deletes are disabled; a dry run sends no probe and plans', async () => {
    await registry.dispose();
    registry = await startLocalRegistry({ deleteEnabled: false });
    client = createRegistryClient({ url: registry.url, retries: 0 });
    await seed({ url: registry.url });

    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetyError);
    expect((err as Error).message).toContain('deletes are disabled');
    expect(rec.logs.some((l) => l.message === 'plan')).toBe(false);
    expect(rec.logs.at(-1)).toMatchObject({ level: 'error', attributes: { stage: 'probe' } });

    const dry = await run({}, { trigger: 'manual', dryRun: true });
    expect(dry.probe).toMatchObject({ status: 'skipped' });
    expect(dry.plan).toMatchObject({ complete: true, tagsDeleted: 2 });
  });

  const dryRuns: [string, InvokeOverrides, Record<string, string>][] = [
    ['DRY_RUN=true', { trigger: 'schedule' }, { DRY_RUN: 'true' }],
    ['a manual dryRun: true', { trigger: 'manual', dryRun: true }, {}],
  ];
  it.each(dryRuns)('%s sends no DELETE at all, the probe included', async (_what, overrides, env) => {
    const { client: recorded, methods } = recordingClient(client);
    const report = await run({ registry: recorded }, overrides, env);
    expect(report.plan).toMatchObject({ complete: true, tagsDeleted: 2 });
    expect(methods().filter((m) => m === 'deleteManifest' || m === 'probe' || m === 'putManifest')).toEqual(
      [],
    );
    expect(methods()).toContain('getManifest');
  });

  it('the delete guard stops a real run and is reported on a dry run', async () => {
    const err = await run({}, { trigger: 'schedule' }, { MAX_DELETE_FRACTION: '0.1' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SafetyError);
    expect(await tagsOf(client, 'team1/app')).toHaveLength(4);
    expect(rec.logs.some((l) => l.message === 'plan: repository')).toBe(true);
    expect(rec.logs.at(-1)).toMatchObject({ level: 'error', attributes: { stage: 'guard' } });

    const dry = await run({}, { trigger: 'manual', dryRun: true }, { MAX_DELETE_FRACTION: '0.1' });
    expect(dry.plan?.guard).toMatchObject({
      ok: false,
      message: expect.stringMatching(/-c maxDeleteFraction=[\d.]+ for the stack/),
    });
  });

  it('an incomplete inventory fails even a dry run', async () => {
    const flaky = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'listTags') {
          return (repo: string) =>
            repo === 'team2/svc' ? Promise.reject(new Error('connection reset')) : target.listTags(repo);
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const err = await run({ registry: flaky }, { trigger: 'manual', dryRun: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetyError);
    expect((err as Error).message).toContain('inventory is incomplete');
    expect(rec.metric('Errors')).toEqual([1]);
  });
});

describe('handler (real wiring: credentials from the SSM stand-in, the registry over HTTP)', () => {
  it('reads the SecureString, authenticates and plans a dry run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rj-handler-'));
    const htpasswd = writeHtpasswd(dir, { janitor: 's3cret:with:colons' });
    const registry = await startLocalRegistry({ extraConfig: htpasswdAuthConfig(htpasswd) });
    const ssm = await startSsmStandIn({
      parameters: { '/janitor/credentials': 'janitor:s3cret:with:colons' },
    });
    const auth = `Basic ${Buffer.from('janitor:s3cret:with:colons').toString('base64')}`;
    try {
      await seed({ url: registry.url, authorization: auth });
      vi.stubEnv('AWS_ENDPOINT_URL_SSM', ssm.endpoint);
      vi.stubEnv('AWS_REGION', 'us-east-1');
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
      vi.stubEnv('REGISTRY_URL', registry.url);
      vi.stubEnv('GC_INSTANCE_ID', INSTANCE);
      vi.stubEnv('GC_DOCUMENT_NAME', 'Stack-GcDocument-AbC123');
      vi.stubEnv('RETENTION_POLICY', JSON.stringify(POLICY));
      vi.stubEnv('CREDENTIALS_PARAMETER', '/janitor/credentials');
      // The test registry is plain http on loopback: the opt-in a user of such a registry sets.
      vi.stubEnv('ALLOW_INSECURE_HTTP', 'true');
      vi.stubEnv('POWERTOOLS_DEV', 'true');
      vi.spyOn(console, 'info').mockImplementation(() => undefined);
      vi.spyOn(console, 'log').mockImplementation(() => undefined);
      const { handler } = await import('../../lambda/handler.ts');

      const lambdaContext = { ...context, functionName: 'janitor' };
      const report = await handler({}, lambdaContext);
      expect(report).toMatchObject({ dryRun: true, plan: { complete: true, tags: 8, tagsDeleted: 2 } });
      expect(ssm.requestsFor('GetParameter').map((r) => r.input)).toEqual([
        { Name: '/janitor/credentials', WithDecryption: true },
      ]);
      expect(ssm.requestsFor('GetParameter')[0]!.signed).toBe(true);
    } finally {
      vi.unstubAllEnvs();
      vi.restoreAllMocks();
      await ssm.close();
      await registry.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
