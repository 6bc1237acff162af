// The bundled Lambda two-phase on a real registry container (podman: registry:2, and registry:3 when
// REGISTRY_V3_BIN is set), as deployed with the default storage (`container`): the SSM stand-in runs the
// synthesized document (the listing, garbage-collect), the local S3 stand-in is the construct's bucket and holds
// the journal. While the first invoke untags, a CI job promotes images it untags at many points of its traffic
// (test/support/promoter.ts, through a fault proxy in front of the registry). Then a restore payload through the
// same handler puts one tag back; then the night after (every push time and journal time moved 25 h back) the
// sweep deletes what is still untagged and not pushed again, garbage-collect frees its blobs, and: zero promotions
// lost, nothing kept lost, the restored image untagged again (the policy still deletes its tag) with a window of
// its own and served, what nobody promoted reclaimed, and the metrics say so.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journalKey } from '../../lambda/adapters/journal-s3.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { METRICS } from '../../lambda/core/contract.ts';
import { runJob } from '../../lambda/core/job.ts';
import { decodeJournal } from '../../lambda/core/journal.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { LambdaRunReport } from '../../lambda/lambda-job.ts';
import type { LambdaRestoreResult } from '../../lambda/lambda-restore.ts';
import {
  emfValues,
  findBundledFunction,
  invokeBundled,
  logLines,
  removeGcLogs,
  standInEnvironment,
  synthApp,
  type BundledFunction,
} from '../support/bundled-lambda.ts';
import {
  createRegistryContainer,
  dockerOk,
  removeRegistryContainer,
  startEngine,
  type Engine,
  type RegistryContainer,
} from '../support/container-engine.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startLocalS3, type LocalS3 } from '../support/local-s3.ts';
import { Promoter, lostPromotions, notReclaimed, spreadOffsets, whyNotServed } from '../support/promoter.ts';
import { raceCandidates, seedRaceScenario } from '../support/race-scenario.ts';
import { describeEachRegistry } from '../support/registry-kind.ts';
import { startSsmStandIn, type SsmStandIn } from '../support/ssm-stand-in.ts';
import { shiftStorage, shiftTimes } from '../support/time-shift.ts';

const INSTANCE = 'i-0123456789abcdef0';
const BUCKET = 'janitor-bucket';
const HOUR = 3_600_000;
const POLICY_YAML = `rules:
  - repositories: ["app/**"]
    keep:
      newest: 2
      tags: ["latest", "release-*"]
`;

describeEachRegistry('the bundled Lambda two-phase', ({ kind }) => {
  describe('untag, restore, sweep, with promotions racing the untagging', () => {
    let engine: Engine | undefined;
    let registry: RegistryContainer | undefined;
    let proxy: FaultProxy | undefined;
    let ssm: SsmStandIn | undefined;
    let s3: LocalS3 | undefined;
    const work = mkdtempSync(join(tmpdir(), 'rj-e2e-two-phase-'));

    beforeAll(async () => {
      engine = await startEngine();
      registry = await createRegistryContainer(engine, { kind });
      proxy = await startFaultProxy(registry.url);
      s3 = await startLocalS3(BUCKET);
    });

    afterAll(async () => {
      await ssm?.close();
      await s3?.close();
      await proxy?.close();
      if (engine && registry) {
        await removeRegistryContainer(engine, registry);
        removeGcLogs(registry.name);
      }
      await engine?.release();
      rmSync(work, { recursive: true, force: true });
    });

    it('loses no promotion and nothing kept, restores a tag, and the sweep reclaims the rest after the window', async () => {
      const reg = registry!;
      const eng = engine!;
      // The janitor talks to the registry through the proxy (where the promoter hooks in); the promoter and the
      // checks go straight to the registry.
      const janitorUrl = proxy!.url;
      await seedRaceScenario(reg.url, 'bundled');
      const storage = await dockerOk(eng, 'volume', 'inspect', '-f', '{{.Mountpoint}}', reg.volume);
      // Pushed a while ago (a push within a minute of the untagging counts as pushed again).
      expect(shiftStorage(storage, 2 * HOUR)).toBeGreaterThan(0);

      // What a plan deletes, planned as the function will (no listing needed for the tags).
      const policy = parsePolicy(POLICY_YAML, 'policy.yaml');
      const client = createRegistryClient({ url: reg.url });
      let planned;
      try {
        planned = await runJob({ client, policy, now: new Date(), dryRun: true, maxDeleteFraction: 1 });
      } finally {
        await client.close();
      }
      const { candidates, kept } = await raceCandidates(reg.url, planned.plan);
      expect(candidates).toHaveLength(4 * 8 + 2);

      const policyFile = join(work, 'retention-policy.yaml');
      writeFileSync(policyFile, POLICY_YAML);
      const outdir = join(work, 'cdk.out');
      await synthApp(outdir, {
        registryUrl: janitorUrl,
        instanceId: INSTANCE,
        dryRun: 'false',
        maxDeleteFraction: '1',
        containerName: reg.name,
        policyFile,
      });
      const fn: BundledFunction = findBundledFunction(outdir);
      expect(fn.environment).toMatchObject({ HISTORY_STORAGE: 'container', UNDO_WINDOW_HOURS: '24' });
      ssm = await startSsmStandIn({
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', DOCKER_HOST: eng.dockerHost },
        instances: [{ instanceId: INSTANCE }],
        documents: fn.documents,
      });
      // The journal and the listing go to the local S3 stand-in, the construct's bucket here.
      const env = standInEnvironment(
        fn,
        { ssm: ssm.endpoint, s3: s3!.endpoint },
        { listing: BUCKET, cache: BUCKET },
      );
      const invoke = async <T>(event: unknown, id: string) => {
        const outcome = await invokeBundled<T>(fn, event, env, work, id);
        expect(
          outcome,
          `invoke ${id} failed:\n${outcome.stderr}\n${outcome.stdout.slice(-6000)}`,
        ).toMatchObject({
          ok: true,
        });
        return { ...outcome, result: (outcome as { result: T }).result };
      };

      // Night 1: untag, while promotions race it.
      const promoter = new Promoter(
        reg.url,
        proxy!,
        spreadOffsets(candidates, { shift: 0, tagPrefix: 'release-bundled-' }),
      );
      await promoter.arm();
      const night1 = await invoke<LambdaRunReport>({}, 'night-1');
      const promotions = await promoter.finish();
      expect(promotions.every((p) => p.status === 201)).toBe(true);
      expect(promotions.length).toBeGreaterThanOrEqual(20);
      const undo = night1.result.deletions?.undo;
      expect(undo?.runId).toBeDefined();
      expect(undo!.manifests).toBeGreaterThan(0);
      expect(emfValues(night1.stdout, METRICS.manifestsUntagged)).toEqual([undo!.manifests]);
      expect(emfValues(night1.stdout, METRICS.bytesPending)).toEqual([undo!.bytesPending]);
      expect(emfValues(night1.stdout, METRICS.manifestsSwept)).toEqual([0]);
      const [line] = logLines(night1.stdout, 'untagged ');
      expect(line?.message).toBe(
        `untagged ${undo!.manifests} manifests: restorable until ${undo!.undoUntil}`,
      );
      expect((line?.undo as { restorePayload?: string }).restorePayload).toBe(
        JSON.stringify({ restore: { run: undo!.runId } }),
      );
      // Untagged, still served by digest; the journal object records each with its run id.
      const promoted = new Set(promotions.map((p) => p.digest));
      const idle = candidates.filter((c) => !promoted.has(c.digest));
      expect(idle.length).toBeGreaterThan(3);
      for (const c of idle) {
        const tags = (await (await fetch(`${reg.url}/v2/${c.repository}/tags/list`)).json()) as {
          tags: string[] | null;
        };
        for (const t of c.tags) expect(tags.tags ?? []).not.toContain(t);
        expect(await whyNotServed(reg.url, c, c.digest)).toBeUndefined();
      }
      const key = journalKey(janitorUrl);
      const journal = decodeJournal(s3!.object(key)!.toString('utf8'), new URL(janitorUrl).origin);
      const recorded = new Set(
        journal.entries.filter((e) => e.untag?.runId === undo!.runId).map((e) => e.digest),
      );
      for (const c of idle) expect(recorded.has(c.digest), c.digest).toBe(true);

      // Restore one tag through the same handler.
      const restored = idle[0]!;
      const back = await invoke<LambdaRestoreResult>(
        { restore: { tag: `${restored.repository}:${restored.tags[0]}` } },
        'restore-1',
      );
      expect(JSON.stringify(back.result)).toContain(restored.tags[0]);
      expect(await whyNotServed(reg.url, restored, restored.tags[0]!)).toBeUndefined();

      // The night after: a day later for the listing and the journal alike.
      shiftStorage(storage, 25 * HOUR);
      s3!.setObject(key, Buffer.from(shiftTimes(s3!.object(key)!.toString('utf8'), 25 * HOUR)));
      const night2 = await invoke<LambdaRunReport>({}, 'night-2');
      expect(night2.result).toMatchObject({
        gc: { status: 'Success' },
        verify: { status: 'ok', problems: [] },
      });
      const swept = emfValues(night2.stdout, METRICS.manifestsSwept);
      expect(swept).toHaveLength(1);
      expect(swept[0]).toBeGreaterThanOrEqual(idle.length - 1);
      expect(await dockerOk(eng, 'inspect', '-f', '{{.State.Running}}', reg.name)).toBe('true');

      const lost = (await lostPromotions(reg.url, promotions)).map(
        (l) => `${l.promotion.tag} (${l.promotion.offset}, ${l.promotion.at}): ${l.why}`,
      );
      expect(lost, `${lost.length} of ${promotions.length} promotions lost`).toEqual([]);
      const keptLost: string[] = [];
      for (const k of kept) {
        const why = await whyNotServed(reg.url, k.image, k.tag);
        if (why) keptLost.push(why);
      }
      expect(keptLost).toEqual([]);
      // The restored tag is still one the policy deletes: the night after untagged it again, with a window of its
      // own, so its image is served by digest (and restorable again), not swept.
      expect(await whyNotServed(reg.url, restored, restored.digest)).toBeUndefined();
      const again = night2.result.deletions?.undo;
      const rejournal = decodeJournal(s3!.object(key)!.toString('utf8'), new URL(janitorUrl).origin);
      expect(
        rejournal.entries.some((e) => e.digest === restored.digest && e.untag?.runId === again?.runId),
      ).toBe(true);
      expect(await notReclaimed(reg.url, idle.slice(1))).toEqual([]);
    }, 600_000);
  });
});
