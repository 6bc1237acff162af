// Restore on real registries (core/restore.ts over the real HTTP client): tags untagged as apply untags them (DELETE
// by tag on v3, a placeholder pushed over the tag and deleted on 2.8), recorded with their exact bytes, then put
// back by tag, by repository and by run, right after the untagging and after a garbage-collect that ran within
// the undo window. Each restored image is served whole: its manifest by tag, each child, each blob (GET, hashed).
// A tag pushed since is left alone; an image whose manifest was swept and whose blobs garbage-collect freed
// fails with the reason and puts nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { parseManifest, PLACEHOLDER_ANNOTATION } from '../../lambda/core/manifest.ts';
import {
  applyRestore,
  planRestore,
  selectRecords,
  type RestoreReport,
  type RestoreSelection,
  type UntagRecord,
} from '../../lambda/core/restore.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { MEDIA, pushImage } from '../../lambda/demo/seed.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { seedRestoreScenario } from '../support/restore-scenario.ts';
import { servedWhole as servedWholeBy } from '../support/served-whole.ts';

describeEachRegistry('restore', ({ kind }) => {
  let registry: LocalRegistry;
  let client: RegistryHttpClient;

  beforeAll(async () => {
    registry = await startRegistry(kind);
    client = createRegistryClient({ url: registry.url, concurrency: 8 });
  }, 60_000);

  afterAll(async () => {
    await client?.close();
    await registry?.dispose();
  });

  /** Remove a tag as apply does: DELETE by tag on v3; on 2.8 a placeholder of ours over it, then its DELETE. */
  async function untag(repo: string, tag: string): Promise<void> {
    if (kind === 'v3') {
      expect(await client.deleteManifest(repo, tag)).toBe('deleted');
      return;
    }
    const body = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [],
        annotations: {
          [PLACEHOLDER_ANNOTATION]: `${repo}:${tag}`,
          'io.github.registry-janitor.nonce': randomUUID(),
        },
      }),
    );
    const placeholder = await client.putManifest(repo, tag, MEDIA.ociIndex, body);
    expect(await client.deleteManifest(repo, placeholder)).toBe('deleted');
  }

  /** What apply records before it untags: the manifest's exact bytes and its children's. */
  async function record(repo: string, tags: string[], runId: string): Promise<UntagRecord> {
    const root = (await client.getManifest(repo, tags[0]!))!;
    const manifests = [
      { digest: root.digest, mediaType: root.mediaType, bytes: Buffer.from(root.body).toString('base64') },
    ];
    for (const child of parseManifest(root.digest, root.mediaType, root.body).children) {
      const c = (await client.getManifest(repo, child.digest))!;
      manifests.push({
        digest: c.digest,
        mediaType: c.mediaType,
        bytes: Buffer.from(c.body).toString('base64'),
      });
    }
    for (const t of tags) await untag(repo, t);
    return {
      runId,
      repository: repo,
      digest: root.digest,
      tags,
      untaggedAt: new Date().toISOString(),
      manifests,
    };
  }

  async function restore(records: UntagRecord[], selection: RestoreSelection): Promise<RestoreReport> {
    const plan = await planRestore(client, selectRecords(records, selection, 'test journal'), selection);
    return applyRestore(client, plan);
  }

  const servedWhole = (repo: string, tag: string, digest: string): Promise<number> =>
    servedWholeBy(client, repo, tag, digest);

  /** In `prefix/app`: an image under two tags, a two-platform index, a kept image; in `prefix/api`: one image. */
  async function seed(
    prefix: string,
    runId: string,
  ): Promise<{ records: UntagRecord[]; app: string; api: string }> {
    const { app, api } = await seedRestoreScenario(client, prefix);
    const records = [
      await record(app, ['v1', 'v1-alias'], runId),
      await record(app, ['multi'], runId),
      await record(api, ['old'], runId),
    ];
    expect((await client.listTags(app)).sort()).toEqual(['keep']);
    expect(await client.listTags(api)).toEqual([]);
    return { records, app, api };
  }

  async function collectGarbage(): Promise<void> {
    await registry.stop();
    registry.garbageCollect();
    await registry.start(); // also flushes 2.8's in-memory blob cache
  }

  it('puts back one tag, then its repository, right after the untagging: each image served whole, a second restore writes nothing', async () => {
    const { records, app, api } = await seed('tag', 'run-tag');
    const one = await restore(records, { repository: app, tag: 'v1-alias' });
    expect(one).toMatchObject({ restored: 1, failed: 0, skipped: 0 });
    expect((await client.listTags(app)).sort()).toEqual(['keep', 'v1-alias']);
    expect(await servedWhole(app, 'v1-alias', records[0]!.digest)).toBe(2);

    const repo = await restore(records, { repository: app });
    expect(repo).toMatchObject({ restored: 2, already: 1, failed: 0 });
    expect((await client.listTags(app)).sort()).toEqual(['keep', 'multi', 'v1', 'v1-alias']);
    expect(await client.listTags(api)).toEqual([]);
    expect(await servedWhole(app, 'multi', records[1]!.digest)).toBe(4);

    const puts = client.stats().put;
    const again = await restore(records, { repository: app });
    expect(again).toMatchObject({ restored: 0, already: 3, failed: 0 });
    expect(client.stats().put).toBe(puts);
  }, 120_000);

  it('puts back a whole run after a garbage-collect that ran within the window: every blob served', async () => {
    const { records, app, api } = await seed('run', 'run-gc');
    await collectGarbage();
    const report = await restore(records, { run: 'run-gc' });
    expect(report).toMatchObject({ restored: 4, failed: 0, skipped: 0 });
    expect((await client.listTags(app)).sort()).toEqual(['keep', 'multi', 'v1', 'v1-alias']);
    expect(await client.listTags(api)).toEqual(['old']);
    await collectGarbage();
    for (const r of records)
      for (const t of r.tags) expect(await servedWhole(r.repository, t, r.digest)).toBeGreaterThan(0);
  }, 180_000);

  it('a repository restored after garbage-collect; a tag pushed since is left alone', async () => {
    const { records, app } = await seed('moved', 'run-moved');
    const newer = await pushImage({ url: registry.url }, app, 'v1', {
      created: '2026-02-01T00:00:00Z',
      layers: [{ seed: 'moved-newer', size: 512 }],
    });
    await collectGarbage();
    const report = await restore(records, { repository: app });
    expect(report).toMatchObject({ restored: 2, skipped: 1, failed: 0 });
    const skipped = report.results.find((r) => r.outcome === 'skipped')!;
    expect(skipped).toMatchObject({ tag: 'v1', current: newer.digest });
    expect(await client.headManifest(app, 'v1')).toBe(newer.digest);
    expect(await servedWhole(app, 'v1-alias', records[0]!.digest)).toBe(2);
    expect(await servedWhole(app, 'multi', records[1]!.digest)).toBe(4);
  }, 180_000);

  it('an image swept after the window (manifest deleted, blobs garbage-collected) fails with the reason and puts nothing', async () => {
    const { records, api } = await seed('swept', 'run-swept');
    const old = records[2]!;
    expect(await client.deleteManifest(api, old.digest)).toBe('deleted');
    await collectGarbage();
    const report = await restore(records, { repository: api, tag: 'old' });
    expect(report).toMatchObject({ restored: 0, failed: 1 });
    expect(report.results[0]!.reason).toMatch(/gone from the registry .*garbage-collect swept/);
    expect(await client.listTags(api)).toEqual([]);
    expect(await client.headManifest(api, old.digest)).toBeNull();
  }, 180_000);
});
