// Untagged history reclaimed end to end on a real registry: the storage listing, the scan, the plan, the
// deletes by digest, garbage-collect and a restart; then every kept tag, manifest and blob is served and the
// layers only history held are gone.
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import type { Inventory, Plan, RepositoryPlan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import {
  pushImage,
  pushIndex,
  pushManifest,
  pushReferrer,
  type PushedImage,
} from '../../lambda/demo/seed.ts';

const policy = parsePolicy(
  `rules:
  - repositories: ["frozen/**"]
    protect: true
  - repositories: ["**"]
    keep:
      tags: ["main", "multi", "rebuilt"]
    untagged:
      deleteAfterDays: 14
`,
  'policy.yaml',
);

const DAY = 86_400_000;
const desc = (p: { digest: string; mediaType: string; size: number }, platform?: string) => ({
  mediaType: p.mediaType,
  digest: p.digest,
  size: p.size,
  ...(platform ? { platform: { os: 'linux', architecture: platform } } : {}),
});

describeEachRegistry('untagged history (filesystem storage)', ({ kind }) => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;
  const now = new Date();
  const d: Record<string, PushedImage | { digest: string; mediaType: string; size: number }> = {};
  let planned: Plan;
  let scanned: Inventory;

  /** Back-date a revision's push, as if it had been pushed `days` ago. */
  const pushedDaysAgo = (repo: string, digest: string, days: number): void => {
    const t = new Date(now.getTime() - days * DAY);
    utimesSync(
      join(registry.storageDir, REPOSITORIES_PATH, repo, REVISIONS_PATH, digest.slice(7), 'link'),
      t,
      t,
    );
  };
  const image = (label: string, created = '2026-01-01T00:00:00Z', arch = 'amd64') => ({
    created,
    layers: [{ seed: `untagged-${label}`, size: 4096 }],
    label,
    architecture: arch,
  });
  const repoPlan = (name: string): RepositoryPlan => planned.repositories.find((r) => r.name === name)!;
  const status = async (repo: string, ref: string): Promise<number> =>
    (
      await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, {
        method: 'HEAD',
        headers: {
          accept: [
            'application/vnd.docker.distribution.manifest.v2+json',
            'application/vnd.docker.distribution.manifest.list.v2+json',
            'application/vnd.oci.image.manifest.v1+json',
            'application/vnd.oci.image.index.v1+json',
          ].join(', '),
        },
      })
    ).status;
  const blobStatus = async (repo: string, digest: string): Promise<number> =>
    (await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status;

  beforeAll(async () => {
    registry = await startRegistry(kind);
    const t = { url: registry.url };
    // `main` pushed three times; the two earlier pushes are history, one old, one young.
    d.main1 = await pushImage(t, 'ci/app', 'main', image('main1'));
    d.main2 = await pushImage(t, 'ci/app', 'main', image('main2'));
    d.main3 = await pushImage(t, 'ci/app', 'main', image('main3'));
    pushedDaysAgo('ci/app', d.main1.digest, 40);
    pushedDaysAgo('ci/app', d.main2.digest, 3);
    // A multi-arch image whose platform images are untagged revisions pushed long ago.
    d.amd = await pushImage(t, 'ci/app', null, image('amd'));
    d.arm = await pushImage(t, 'ci/app', null, image('arm', undefined, 'arm64'));
    d.multi = await pushIndex(t, 'ci/app', 'multi', [desc(d.amd, 'amd64'), desc(d.arm, 'arm64')] as never);
    for (const x of [d.amd, d.arm, d.multi]) pushedDaysAgo('ci/app', x.digest, 100);
    // An old multi-arch index pushed twice: its first push is history, with its own platform images.
    d.oldAmd = await pushImage(t, 'ci/app', null, image('old-amd'));
    d.oldIx = await pushIndex(t, 'ci/app', null, [desc(d.oldAmd, 'amd64')] as never);
    for (const x of [d.oldAmd, d.oldIx]) pushedDaysAgo('ci/app', x.digest, 60);
    // A multi-arch push in progress: old children, the index pushed just now, no tag yet.
    d.wipAmd = await pushImage(t, 'ci/app', null, image('wip-amd'));
    pushedDaysAgo('ci/app', d.wipAmd.digest, 30);
    d.wipIx = await pushIndex(t, 'ci/app', null, [desc(d.wipAmd, 'amd64')] as never);
    // An untagged signature of the kept `main`, pushed long ago.
    d.sig = await pushReferrer(t, 'ci/app', null, desc(d.main3), 'application/vnd.dev.cosign', 'sig-main3');
    pushedDaysAgo('ci/app', d.sig.digest, 50);
    // A rebuild of an old image (built in 2020) pushed today: young, whatever its build date says.
    d.rebuilt = await pushImage(t, 'ci/app', null, image('rebuilt', '2020-01-01T00:00:00Z'));
    // A protected repository's old history stays.
    d.frozenOld = await pushImage(t, 'frozen/base', 'v1', image('frozen-old'));
    await pushImage(t, 'frozen/base', 'v1', image('frozen-new'));
    pushedDaysAgo('frozen/base', d.frozenOld.digest, 400);

    client = createRegistryClient({ url: registry.url });
    const inventory = await scanRegistry(client, { policy, history: filesystemHistory(registry.storageDir) });
    scanned = inventory;
    planned = makePlan(inventory, policy, now);
  });

  afterAll(async () => {
    await client?.close();
    await registry?.dispose();
  });

  it('plans exactly the expired, unreferenced history', () => {
    expect(planned.complete).toBe(true);
    expect(planned.history).toEqual({ source: registry.storageDir, complete: true });
    const app = repoPlan('ci/app');
    expect(app.deleteTags).toEqual([]);
    expect(new Set(app.deleteManifests.map((m) => m.digest))).toEqual(
      new Set([d.main1!.digest, d.oldIx!.digest, d.oldAmd!.digest]),
    );
    // The old index goes before its platform image.
    const order = app.deleteManifests.map((m) => m.digest);
    expect(order.indexOf(d.oldIx!.digest)).toBeLessThan(order.indexOf(d.oldAmd!.digest));
    const kept = Object.fromEntries(app.untagged!.kept.map((k) => [k.digest, k.reason]));
    expect(kept).toEqual({
      [d.main2!.digest]: 'young',
      [d.amd!.digest]: 'referenced',
      [d.arm!.digest]: 'referenced',
      [d.wipIx!.digest]: 'young',
      [d.wipAmd!.digest]: 'referenced',
      [d.sig!.digest]: 'subject-kept',
      [d.rebuilt!.digest]: 'young',
    });
    expect(repoPlan('frozen/base').deleteManifests).toEqual([]);
    expect(repoPlan('frozen/base').untagged!.kept.map((k) => [k.digest, k.reason])).toEqual([
      [d.frozenOld!.digest, 'protected'],
    ]);
    expect(planned.summary.untaggedDeleted).toBe(3);
    // Their manifests, configs and layers: nothing that stays shares them.
    const own = (x: PushedImage): number => x.size + x.config.size + x.layers[0]!.size;
    expect(planned.summary.bytesFreed).toBe(
      own(d.main1 as PushedImage) + own(d.oldAmd as PushedImage) + d.oldIx!.size,
    );
  });

  it('deletes the history by digest, and after garbage-collect and a restart everything kept is served', async () => {
    // The inventory planned from, listing included: without a listing no untagged manifest may be deleted.
    const report = await applyPlan(planned, client, { inventory: scanned });
    expect(report.failures).toEqual([]);
    expect(report.manifestsDeleted).toBe(3);

    await registry.stop();
    registry.garbageCollect();
    await registry.start();

    for (const x of [d.main1!, d.oldIx!, d.oldAmd!]) expect(await status('ci/app', x.digest)).toBe(404);
    for (const x of [d.main2!, d.main3!, d.amd!, d.arm!, d.multi!, d.wipIx!, d.wipAmd!, d.sig!, d.rebuilt!])
      expect(await status('ci/app', x.digest)).toBe(200);
    for (const tag of ['main', 'multi']) expect(await status('ci/app', tag)).toBe(200);
    expect(await status('frozen/base', d.frozenOld!.digest)).toBe(200);
    for (const x of [d.main2!, d.main3!, d.amd!, d.arm!, d.wipAmd!, d.rebuilt!] as PushedImage[]) {
      for (const blob of [x.config, ...x.layers]) expect(await blobStatus('ci/app', blob.digest)).toBe(200);
    }
    // The layers only the deleted history used are gone from the disk.
    for (const x of [d.main1!, d.oldAmd!] as PushedImage[])
      expect(await blobStatus('ci/app', x.layers[0]!.digest)).toBe(404);
  });

  it('a tag pushed onto an expired untagged manifest after planning makes it stay', async () => {
    const t = { url: registry.url };
    const old = await pushImage(t, 'ci/late', 'main', image('late-old'));
    await pushImage(t, 'ci/late', 'main', image('late-new'));
    pushedDaysAgo('ci/late', old.digest, 90);
    const inv = await scanRegistry(client, {
      policy,
      repositories: ['ci/late'],
      history: filesystemHistory(registry.storageDir),
    });
    const p = makePlan(inv, policy, now);
    expect(p.repositories[0]!.deleteManifests.map((m) => m.digest)).toEqual([old.digest]);
    // Someone tags the old image between the plan and the apply.
    const body = await (
      await fetch(`${registry.url}/v2/ci/late/manifests/${old.digest}`, {
        headers: { accept: old.mediaType },
      })
    ).text();
    await pushManifest(t, 'ci/late', 'hotfix', old.mediaType, body);
    const report = await applyPlan(p, client, { inventory: inv });
    expect(report.skippedRepositories.map((s) => s.name)).toEqual(['ci/late']);
    expect(await status('ci/late', 'hotfix')).toBe(200);
    expect(await status('ci/late', old.digest)).toBe(200);
  });
});
