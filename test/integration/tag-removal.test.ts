// Removing tags against real registries: on distribution 2.8, which cannot delete a tag (a placeholder is pushed
// over the tag and deleted), and on v3, which deletes tags with DELETE by tag. Many at once, dangling tags, and
// the tags a delete leaves behind when the registry fails halfway (2.8 removes the manifest, then answers 500
// before untagging, because its tag lookup read a link another request was rewriting).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryHttpClient } from '../../lambda/adapters/registry-client.ts';
import { RegistryError } from '../../lambda/core/errors.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { formatPlan } from '../../lambda/core/report.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { RegistryClient } from '../../lambda/core/ports.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { describeEachRegistry, startRegistry } from '../support/registry-kind.ts';
import { pushImage, pushManifest, type PushedImage } from '../../lambda/demo/seed.ts';

const policy = parsePolicy(
  `rules:
  - repositories: ["app/**"]
    keep:
      tags: ["keep", "keep-*"]
  - repositories: ["frozen/**"]
    protect: true
`,
  'policy.yaml',
);

async function tagsOf(url: string, repo: string): Promise<string[]> {
  const res = await fetch(`${url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  const body = (await res.json()) as { tags: string[] | null };
  return (body.tags ?? []).sort();
}

async function manifestStatus(url: string, repo: string, ref: string): Promise<number> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  return res.status;
}

/** What 2.8 leaves when its delete fails halfway: the manifest's revision link gone, its tags still listed. */
function removeRevisionLink(registry: LocalRegistry, repo: string, digest: string): void {
  const hex = digest.replace(/^sha256:/, '');
  rmSync(
    join(registry.storageDir, 'docker/registry/v2/repositories', repo, '_manifests/revisions/sha256', hex),
    { recursive: true, force: true },
  );
}

const image = (label: string): Parameters<typeof pushImage>[3] => ({
  created: '2026-01-01T00:00:00Z',
  layers: [{ seed: `layer-${label}`, size: 2048 }],
  label,
});

describeEachRegistry('removing tags', ({ kind }) => {
  describe('tags, dangling tags and half-done deletes', () => {
    let registry: LocalRegistry;
    let client: RegistryHttpClient;

    beforeAll(async () => {
      registry = await startRegistry(kind);
      client = createRegistryClient({ url: registry.url });
    });
    afterAll(async () => {
      await client?.close();
      await registry?.dispose();
    });

    async function planNow(repositories: string[]): Promise<Plan> {
      return makePlan(await scanRegistry(client, { policy, repositories }), policy, new Date());
    }

    it(`the delete probe finds that tags can${kind === 'v3' ? '' : 'not'} be deleted by name`, async () => {
      const repo = 'app/probe';
      await pushImage(registry, repo, 'keep', image('probe'));
      expect(await client.probe(repo)).toEqual({ deletesEnabled: true, tagDelete: kind === 'v3' });
      expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
    });

    it(
      kind === 'v3'
        ? 'removes tags with DELETE by tag, pushing nothing; the other tags on the same image stay'
        : 'removes tags by pushing a placeholder over each and deleting it; the other tags on the same image stay',
      async () => {
        const repo = 'app/by-tag';
        const pushed = await pushImage(registry, repo, 'keep', image('by-tag'));
        for (const tag of ['keep-also', 'old-a', 'old-b'])
          await pushImage(registry, repo, tag, image('by-tag'));
        const thePlan = await planNow([repo]);
        expect(thePlan.repositories[0]!.deleteTags.map((t) => [t.tag, t.method])).toEqual([
          ['old-a', 'tag-only'],
          ['old-b', 'tag-only'],
        ]);

        const proxy = await startFaultProxy(registry.url);
        const viaProxy = createRegistryClient({ url: proxy.url });
        try {
          const report = await applyPlan(thePlan, viaProxy, { maxDeleteFraction: 1 });
          expect(report.failures).toEqual([]);
          expect(report.tagsDeleted).toBe(2);
        } finally {
          await viaProxy.close();
          await proxy.close();
        }
        // What changed the registry, leaving out the probe's DELETEs of names that do not exist.
        const writes = proxy.seen
          .filter(
            (r) => /^(PUT|DELETE) /.test(r) && !/manifests\/(sha256:0{64}|registry-janitor-probe-)/.test(r),
          )
          .sort();
        if (kind === 'v3') {
          expect(writes).toEqual([
            `DELETE /v2/${repo}/manifests/old-a`,
            `DELETE /v2/${repo}/manifests/old-b`,
          ]);
        } else {
          expect(writes).toEqual([
            expect.stringMatching(new RegExp(`^DELETE /v2/${repo}/manifests/sha256:[0-9a-f]{64}$`)),
            expect.stringMatching(new RegExp(`^DELETE /v2/${repo}/manifests/sha256:[0-9a-f]{64}$`)),
            `PUT /v2/${repo}/manifests/old-a`,
            `PUT /v2/${repo}/manifests/old-b`,
          ]);
        }
        expect(await tagsOf(registry.url, repo)).toEqual(['keep', 'keep-also']);
        expect(await manifestStatus(registry.url, repo, pushed.digest)).toBe(200);
        expect(await manifestStatus(registry.url, repo, 'keep-also')).toBe(200);
      },
    );

    it('removes 80 tags sharing a kept image at once, every one, and the image stays', async () => {
      const repo = 'app/aliases';
      const pushed = await pushImage(registry, repo, 'keep', image('aliases'));
      const aliases = Array.from({ length: 80 }, (_, i) => `alias-${String(i).padStart(2, '0')}`);
      for (const tag of aliases) await pushImage(registry, repo, tag, image('aliases'));

      const thePlan = await planNow([repo]);
      expect(thePlan.repositories[0]!.deleteTags.map((t) => t.method)).toEqual(aliases.map(() => 'tag-only'));
      const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1, deleteConcurrency: 16 });

      expect(report.failures).toEqual([]);
      expect(report.tagsDeleted).toBe(80);
      expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
      expect(await manifestStatus(registry.url, repo, pushed.digest)).toBe(200);
      expect(await manifestStatus(registry.url, repo, 'keep')).toBe(200);
    });

    it('plans tags whose manifest is gone as dangling, removes them in a cleaned repository, and keeps the rest', async () => {
      const repo = 'app/dangling';
      const kept = await pushImage(registry, repo, 'keep', image('d-keep'));
      const broken = await pushImage(registry, repo, 'broken', image('d-broken'));
      await pushImage(registry, repo, 'old', image('d-old'));
      removeRevisionLink(registry, repo, broken.digest);
      await registry.restart(); // its blob descriptor cache would still know the revision

      const thePlan = await planNow([repo]);
      const rp = thePlan.repositories[0]!;
      expect(rp.dangling).toEqual(['broken']);
      expect(rp.kept.map((t) => t.tag)).toEqual(['keep']);
      expect(rp.deleteTags.map((t) => t.tag)).toEqual(['old']);
      expect(thePlan.summary.tags).toBe(2);
      expect(formatPlan(thePlan)).toMatch(/DELETE {2}broken .*tag only: its manifest is already gone/);
      expect(thePlan.warnings.map((w) => w.message).join('\n')).toMatch(
        /1 tag is listed but its manifest is gone/,
      );

      const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1 });
      expect(report.skippedRepositories).toEqual([]);
      expect(report.failures).toEqual([]);
      expect(report.tagsDeleted).toBe(1); // the dangling tag is not an image, so not counted
      expect(report.entries).toContainEqual(
        expect.objectContaining({ target: 'tag', reference: 'broken', outcome: 'deleted' }),
      );
      expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
      expect(await manifestStatus(registry.url, repo, kept.digest)).toBe(200);

      // The next plan finds nothing left to do.
      const again = await planNow([repo]);
      expect(again.repositories[0]!.dangling).toBeUndefined();
      expect(again.summary.tagsDeleted).toBe(0);
    });

    it('leaves dangling tags of a protected repository alone, and does not skip it as changed', async () => {
      const repo = 'frozen/dangling';
      await pushImage(registry, repo, 'a', image('f-a'));
      const broken = await pushImage(registry, repo, 'b', image('f-b'));
      removeRevisionLink(registry, repo, broken.digest);
      await registry.restart();

      const thePlan = await planNow([repo]);
      expect(thePlan.repositories[0]!.action).toBe('protected');
      expect(thePlan.repositories[0]!.dangling).toEqual(['b']);
      const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1 });
      expect(report.entries).toEqual([]);
      expect(await tagsOf(registry.url, repo)).toEqual(['a', 'b']);
    });

    it('a dangling tag pushed again after planning makes the repository skipped, untouched', async () => {
      const repo = 'app/revived';
      await pushImage(registry, repo, 'keep', image('r-keep'));
      const broken = await pushImage(registry, repo, 'broken', image('r-broken'));
      const old = await pushImage(registry, repo, 'old', image('r-old'));
      removeRevisionLink(registry, repo, broken.digest);
      await registry.restart();
      const thePlan = await planNow([repo]);
      expect(thePlan.repositories[0]!.dangling).toEqual(['broken']);

      await pushImage(registry, repo, 'broken', image('r-new')); // someone pushes it again
      const report = await applyPlan(thePlan, client, { maxDeleteFraction: 1 });
      expect(report.skippedRepositories.map((s) => s.reason).join()).toMatch(/broken now point/);
      expect(await tagsOf(registry.url, repo)).toEqual(['broken', 'keep', 'old']);
      expect(await manifestStatus(registry.url, repo, old.digest)).toBe(200);
    });

    /**
     * The real client, except that chosen deletes fail the way distribution can (2.8 and v3 both remove the
     * manifest, then look up its tags to untag them): manifest removed, 500, tags left.
     */
    function failingHalfway(
      fail: (digest: string, n: number) => boolean,
    ): RegistryClient & { failures: number } {
      const counts = new Map<string, number>();
      const wrapped = Object.create(client) as RegistryClient & { failures: number };
      wrapped.failures = 0;
      wrapped.deleteManifest = async (repository: string, reference: string) => {
        const n = (counts.get(reference) ?? 0) + 1;
        counts.set(reference, n);
        if (reference.startsWith('sha256:') && fail(reference, n)) {
          removeRevisionLink(registry, repository, reference);
          // v3 keeps revision links in its in-memory descriptor cache; its own delete drops the entry, a link
          // removed behind its back is forgotten only on restart.
          if (kind === 'v3') await registry.restart();
          wrapped.failures++;
          throw new RegistryError(
            `DELETE ${registry.url}/v2/${repository}/manifests/${reference} answered 500 UNKNOWN: unknown error.`,
            { status: 500, code: 'UNKNOWN' },
          );
        }
        return client.deleteManifest(repository, reference);
      };
      return wrapped;
    }

    // Placeholders are 2.8's way of removing a tag; v3 pushes none.
    if (kind === '2.8') {
      it('a placeholder whose delete fails halfway is put back and deleted again: the tag goes, the image stays', async () => {
        const repo = 'app/retry';
        const pushed = await pushImage(registry, repo, 'keep', image('retry'));
        for (const tag of ['a', 'b', 'c']) await pushImage(registry, repo, tag, image('retry'));
        const thePlan = await planNow([repo]);

        const flaky = failingHalfway((_, n) => n <= 2); // each placeholder fails twice, then works
        const report = await applyPlan(thePlan, flaky, { maxDeleteFraction: 1 });

        expect(flaky.failures).toBe(6);
        expect(report.failures).toEqual([]);
        expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
        expect(await manifestStatus(registry.url, repo, pushed.digest)).toBe(200);
      });

      it('a placeholder that keeps failing is reported, and the next run removes its tag', async () => {
        const repo = 'app/stuck';
        await pushImage(registry, repo, 'keep', image('stuck'));
        await pushImage(registry, repo, 'x', image('stuck'));
        const thePlan = await planNow([repo]);

        const report = await applyPlan(
          thePlan,
          failingHalfway(() => true),
          { maxDeleteFraction: 1 },
        );
        expect(report.failures).toEqual([
          expect.objectContaining({
            reference: 'x',
            reason: expect.stringMatching(/failed 5 times.*next run/),
          }),
        ]);

        const next = await planNow([repo]);
        const again = await applyPlan(next, client, { maxDeleteFraction: 1 });
        expect(again.failures).toEqual([]);
        expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
      });
    }

    it('a manifest delete answering 500 after removing the manifest: its tags are removed too, in the same run', async () => {
      const repo = 'app/halfway';
      const kept = await pushImage(registry, repo, 'keep', image('h-keep'));
      const doomed: PushedImage = await pushImage(registry, repo, 'old', image('h-old'));
      await pushManifest(
        registry,
        repo,
        'old-alias',
        doomed.mediaType,
        await manifestBytes(repo, doomed.digest),
      );
      const thePlan = await planNow([repo]);
      expect(thePlan.repositories[0]!.deleteManifests.map((m) => m.digest)).toEqual([doomed.digest]);

      const report = await applyPlan(
        thePlan,
        failingHalfway((d) => d === doomed.digest),
        { maxDeleteFraction: 1 },
      );
      expect(report.failures).toEqual([]);
      expect(report.entries).toContainEqual(
        expect.objectContaining({
          reference: doomed.digest,
          outcome: 'deleted',
          reason: expect.stringMatching(
            /answered 500, but the manifest is gone; tags old, old-alias .*removed/,
          ),
        }),
      );
      expect(await tagsOf(registry.url, repo)).toEqual(['keep']);
      expect(await manifestStatus(registry.url, repo, kept.digest)).toBe(200);
    });

    async function manifestBytes(repo: string, digest: string): Promise<Uint8Array> {
      const res = await fetch(`${registry.url}/v2/${repo}/manifests/${digest}`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      return new Uint8Array(await res.arrayBuffer());
    }
  });
});
