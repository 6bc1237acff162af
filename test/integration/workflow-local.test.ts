// The synthesized state machine, run locally (aws-local-stepfunctions): the definition and the step functions'
// bundles from a real synth of the stack with engine 'workflow', each step the bundled handler in its own Node
// process against a real registry, the S3 stand-in (the run's files, the reports) and the SSM stand-in (the GC
// document as synthesized, its script standing in for the host's: it waits until the test has collected garbage
// on the local registry). A full run cleans the demo's scenario exactly as the single invocation does; a
// garbage-collect longer than any invocation's time completes and is verified with no function waiting for it; a
// failing inventory batch leaves the plan incomplete with nothing deleted; a second start while one runs is
// refused and recorded.
import '../support/promise-with-resolvers.ts';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { loadConfig } from '../../lambda/config.ts';
import { GC_LINE_PREFIX } from '../../lambda/core/gc-script.ts';
import { OVERLAP_ERROR, PLAN_INCOMPLETE_ERROR, PLAN_OUTCOMES } from '../../lambda/core/contract.ts';
import { parseGcOutput } from '../../lambda/core/gc-script.ts';
import type { GcResult } from '../../lambda/core/gc.ts';
import { runLambdaJob, type LambdaRunReport } from '../../lambda/lambda-job.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { SCENARIO_POLICY, seedScenario, type Scenario } from '../../lambda/demo/scenario.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { RegistryJanitor } from '../../lib/registry-janitor.ts';
import { createTestApps } from '../support/cfn-template.ts';
import { context, recorder, unusedRunner } from '../support/lambda-job.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';
import { LocalWorkflow, synthesizeWorkflow, type SynthesizedWorkflow } from '../support/local-workflow.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { startSsmStandIn, type SsmStandIn } from '../support/ssm-stand-in.ts';

const INSTANCE = 'i-0123456789abcdef0';
const STACK = 'RegistryJanitor';
const BUCKET = 'janitor-bucket';
/** What each invocation is given in the long-GC case; the handler keeps its last 2 s (DEADLINE_MARGIN_SECONDS). */
const SHORT_BUDGET_MS = 20_000;

/** Every repository's tags and the digest each resolves to. */
async function tagState(client: RegistryHttpClient): Promise<Record<string, Record<string, string | null>>> {
  const state: Record<string, Record<string, string | null>> = {};
  for (const repo of (await client.listRepositories()).sort()) {
    const tags = (await client.listTags(repo)).sort();
    state[repo] = Object.fromEntries(
      await Promise.all(tags.map(async (t) => [t, await client.headManifest(repo, t)] as const)),
    );
  }
  return state;
}

/** Garbage-collect as the host would: the registry stopped, `registry garbage-collect`, started again. */
async function collectGarbage(registry: LocalRegistry): Promise<string> {
  const before = registry.diskUsage();
  await registry.stop();
  const out = registry.garbageCollect();
  await registry.restart();
  const after = registry.diskUsage();
  const summary = out.split('\n').find((l) => /blobs marked/.test(l)) ?? '';
  return [`summary=${summary}`, `bytes_before=${before}`, `bytes_after=${after}`, 'status=ok']
    .map((l) => `${GC_LINE_PREFIX}${l}`)
    .join('\n');
}

describeEachRegistry('the synthesized workflow, run locally', ({ kind }) => {
  let registry: LocalRegistry;
  let single: LocalRegistry;
  let client: RegistryHttpClient;
  let singleClient: RegistryHttpClient;
  let s3: LocalS3;
  let ssm: SsmStandIn;
  let synthesized: SynthesizedWorkflow;
  let scenario: Scenario;
  let seeded: Awaited<ReturnType<typeof tagState>>;
  const apps = createTestApps({ bundle: true });
  const work = mkdtempSync(join(tmpdir(), 'rj-workflow-local-'));
  const gcDone = join(work, 'gc-done');
  const workflows: LocalWorkflow[] = [];

  beforeAll(async () => {
    [registry, single] = await Promise.all([startRegistry(kind), startRegistry(kind)]);
    client = createRegistryClient({ url: registry.url, retries: 0 });
    singleClient = createRegistryClient({ url: single.url, retries: 0 });
    // The same scenario, byte for byte (same clock), on both: one for the workflow, one for the single run.
    const now = new Date();
    scenario = await seedScenario({ url: registry.url }, { now });
    await seedScenario({ url: single.url }, { now });
    seeded = await tagState(client);
    expect(await tagState(singleClient)).toEqual(seeded);

    s3 = await startLocalS3(BUCKET);
    const app = apps.app();
    const stack = new Stack(app, STACK);
    new RegistryJanitor(stack, 'Janitor', {
      registryUrl: registry.url,
      instanceId: INSTANCE,
      policy: parseYaml(SCENARIO_POLICY) as never,
      dryRun: false,
      storage: 'none',
      engine: 'workflow',
      // Several batches of the scenario's repositories; the long-GC case gives each invocation 20 s.
      workflowBatchRepositories: 2,
      environment: { DEADLINE_MARGIN_SECONDS: '2' },
    });
    synthesized = synthesizeWorkflow(app, stack, BUCKET);
    // The GC document as synthesized (its parameters checked by the stand-in as SSM would), its script standing
    // in for the host's: it waits until the test has collected garbage, then prints what the real one prints.
    const [[documentName, document]] = Object.entries(synthesized.documents) as [
      [string, { Content: { mainSteps: { inputs: { runCommand: string[] } }[] } }],
    ];
    const content = structuredClone(document.Content);
    content.mainSteps[0]!.inputs.runCommand = [
      'while [ ! -f "$RJ_GC_DONE" ]; do sleep 0.1; done',
      'cat "$RJ_GC_DONE"',
    ];
    ssm = await startSsmStandIn({
      instances: [{ instanceId: INSTANCE }],
      // Not found for the first GetCommandInvocation or two (the state's retrier, 100 ms apart here, outlasts it).
      invisibleForMs: 300,
      documents: { [documentName]: content },
      env: { RJ_GC_DONE: gcDone },
    });
  });

  afterAll(async () => {
    for (const w of workflows) w.dispose();
    await ssm?.close();
    await s3?.close();
    await client?.close();
    await singleClient?.close();
    await registry?.dispose();
    await single?.dispose();
    apps.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  const workflow = (options: { budgetMs?: number; waitMs?: number } = {}): LocalWorkflow => {
    const w = new LocalWorkflow({
      workflow: synthesized,
      ssmEndpoint: ssm.endpoint,
      env: s3.env,
      ...options,
    });
    workflows.push(w);
    return w;
  };

  /**
   * Answers the next GC command once it has been polled `polls` times and `heldMs` have passed since it was sent:
   * collects garbage on the registry and lets the stand-in's script print the summary.
   */
  function driveGc(options: { polls: number; heldMs?: number }) {
    rmSync(gcDone, { force: true });
    const sendsBefore = ssm.requestsFor('SendCommand').length;
    const pollsBefore = ssm.requestsFor('GetCommandInvocation').length;
    let stopped = false;
    const times: { sentAt?: number; doneAt?: number; polls?: number } = {};
    const done = (async () => {
      while (!stopped && ssm.requestsFor('SendCommand').length === sendsBefore)
        await new Promise((r) => setTimeout(r, 50));
      if (stopped) return;
      times.sentAt = Date.now();
      while (
        !stopped &&
        (ssm.requestsFor('GetCommandInvocation').length - pollsBefore < options.polls ||
          Date.now() - times.sentAt < (options.heldMs ?? 0))
      )
        await new Promise((r) => setTimeout(r, 50));
      if (stopped) return;
      times.polls = ssm.requestsFor('GetCommandInvocation').length - pollsBefore;
      const summary = await collectGarbage(registry);
      times.doneAt = Date.now();
      writeFileSync(`${gcDone}.tmp`, summary);
      renameSync(`${gcDone}.tmp`, gcDone);
    })();
    return { times, stop: () => ((stopped = true), done) };
  }

  it('a second start while one runs is refused and recorded, and the first goes on', async () => {
    const w = workflow();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let probeReached!: () => void;
    const reached = new Promise<void>((r) => (probeReached = r));
    const first = w.execute(
      'first',
      { dryRun: true },
      {
        beforeInvoke: async (step) => {
          if (step !== 'probe') return;
          probeReached();
          await held;
        },
      },
    );
    await reached;
    const second = await w.execute('second', {});
    release();
    expect(second).toMatchObject({ status: 'FAILED', error: OVERLAP_ERROR });
    expect(w.queued).toEqual([
      {
        queueUrl: expect.stringMatching(/FailedRuns/) as string,
        body: expect.objectContaining({
          error: OVERLAP_ERROR,
          execution: expect.stringMatching(/:second$/) as string,
          running: expect.arrayContaining([expect.stringMatching(/:first$/)]) as string[],
        }) as unknown,
      },
    ]);
    expect(w.invocations.filter((i) => i.step === 'probe')).toHaveLength(1);
    const out = await first;
    expect(out).toMatchObject({
      status: 'SUCCEEDED',
      output: { outcome: PLAN_OUTCOMES.dryRun, plan: { complete: true } },
    });
    expect(await tagState(client)).toEqual(seeded);
  });

  it('a failing inventory batch leaves the plan incomplete, and nothing is deleted', async () => {
    const w = workflow();
    const out = await w.execute(
      'inventory-crash',
      {},
      {
        beforeInvoke: (step, payload) => (step === 'inventory' && payload.batch === 1 ? 'crash' : undefined),
      },
    );
    expect(out).toMatchObject({ status: 'FAILED', error: PLAN_INCOMPLETE_ERROR });
    expect(out.cause).toMatch(/incomplete/);
    const steps = w.invocations.map((i) => i.step);
    expect(steps.filter((s) => s === 'inventory').length).toBeGreaterThan(1);
    expect(w.invocations.find((i) => i.step === 'inventory' && i.payload.batch === 1)?.outcome).toBe(
      'crashed',
    );
    expect(steps).toContain('plan');
    expect(steps).not.toContain('apply');
    expect(ssm.requestsFor('SendCommand')).toHaveLength(0);
    expect(await tagState(client)).toEqual(seeded);
    for (const [repo, digests] of Object.entries(scenario.deletedDigests))
      for (const d of digests) expect(await client.headManifest(repo, d), `${repo}@${d}`).toBe(d);
  });

  it('a full run cleans the scenario exactly as the single invocation does', async () => {
    // The single invocation (runLambdaJob, as the main function runs it) with the step functions' own settings.
    const env = { ...Object.values(synthesized.functions)[0]!.environment, REGISTRY_URL: single.url };
    const rec = recorder();
    const singleReport: LambdaRunReport = await runLambdaJob(
      {
        registry: singleClient,
        runner: unusedRunner,
        logger: rec.logger,
        metrics: rec.metrics,
        runGc: async (): Promise<GcResult> => ({
          status: 'Success',
          commandId: 'local',
          summary: parseGcOutput(await collectGarbage(single)),
        }),
      },
      loadConfig(env),
      { trigger: 'schedule' },
      context,
    );
    expect(singleReport).toMatchObject({ deletions: { failures: [] }, verify: { status: 'ok' } });

    const w = workflow();
    const gc = driveGc({ polls: 1 });
    const out = await w.execute('full-run', {});
    await gc.stop();
    expect(out, JSON.stringify(out)).toMatchObject({
      status: 'SUCCEEDED',
      output: {
        dryRun: false,
        deletions: {
          tagsDeleted: singleReport.deletions!.tagsDeleted,
          manifestsDeleted: singleReport.deletions!.manifestsDeleted,
          failures: [],
          skippedRepositories: [],
        },
        gc: { status: 'Success' },
        verify: { status: 'ok', problems: [] },
      },
    });
    const batches = w.invocations.filter((i) => i.step === 'inventory').length;
    expect(batches).toBeGreaterThan(1);
    expect(w.invocations.filter((i) => i.step === 'apply')).toHaveLength(batches);

    // The same registry after both, tag by tag, and what the scenario says goes and stays.
    const after = await tagState(client);
    expect(after).toEqual(await tagState(singleClient));
    for (const [repo, tags] of Object.entries(scenario.deleted))
      for (const t of tags) expect(after[repo]?.[t], `${repo}:${t}`).toBeUndefined();
    for (const [repo, tags] of Object.entries(scenario.kept))
      for (const t of tags) expect(after[repo]?.[t], `${repo}:${t}`).toBe(seeded[repo]![t]);
    for (const [repo, layers] of Object.entries(scenario.freedLayers)) {
      for (const l of layers) {
        expect(await client.headBlob(repo, l), `${repo} ${l}`).toBe(false);
        expect(await singleClient.headBlob(repo, l), `${repo} ${l}`).toBe(false);
      }
    }
  });

  it("a garbage-collect longer than a function's remaining time completes and is verified", async () => {
    // Something to delete again: two old builds beside the kept ones.
    const old = new Date(Date.now() - 200 * 86_400_000).toISOString();
    const extra = [];
    for (const tag of ['old-a', 'old-b'])
      extra.push(
        await pushImage({ url: registry.url }, 'team1/api', tag, {
          created: old,
          layers: [{ seed: `long-gc-${tag}`, size: 8192 }],
        }),
      );
    const before = await tagState(client);

    // Each WaitForGc stands for a minute; the loop's bound (70 polls: the GC timeout and 10 minutes) is not reached.
    const w = workflow({ budgetMs: SHORT_BUDGET_MS, waitMs: 500 });
    const gc = driveGc({ polls: 4, heldMs: SHORT_BUDGET_MS + 1000 });
    const out = await w.execute('long-gc', {});
    await gc.stop();
    expect(out, JSON.stringify(out)).toMatchObject({
      status: 'SUCCEEDED',
      output: {
        deletions: { tagsDeleted: 2, manifestsDeleted: 2, failures: [] },
        gc: { status: 'Success' },
        verify: { status: 'ok', problems: [] },
      },
    });
    // Polled again and again while the command ran; no function ran meanwhile (none waited for it).
    expect(gc.times.polls).toBeGreaterThanOrEqual(4);
    const { sentAt, doneAt } = gc.times as { sentAt: number; doneAt: number };
    const during = w.invocations.filter((i) => (i.endedAt ?? Infinity) > sentAt && i.startedAt < doneAt);
    expect(during.map((i) => i.step)).toEqual([]);
    expect(w.invocations.filter((i) => i.startedAt >= doneAt).map((i) => i.step)).toEqual(
      expect.arrayContaining(['verify', 'report']),
    );

    const after = await tagState(client);
    const { 'team1/api': api, ...rest } = before;
    const { 'team1/api': apiAfter, ...restAfter } = after;
    expect(restAfter).toEqual(rest);
    expect(Object.keys(apiAfter!).sort()).toEqual(
      Object.keys(api!)
        .filter((t) => !t.startsWith('old-'))
        .sort(),
    );
    for (const image of extra) {
      expect(await client.headManifest('team1/api', image.digest)).toBeNull();
      expect(await client.headBlob('team1/api', image.layers[0]!.digest)).toBe(false);
    }
  });
});
