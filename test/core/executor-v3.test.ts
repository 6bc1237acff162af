// The executor on a registry that can delete tags (distribution v3, PR #3427), over an in-memory registry with
// v3's delete semantics: the fast version of test/integration/tag-removal.test.ts, which proves the same path
// on a real v3 when REGISTRY_V3_BIN is set.
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../lambda/core/errors.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import type { DeleteOutcome, FetchedManifest, ProbeResult, RegistryClient } from '../../lambda/core/ports.ts';
import type { Inventory } from '../../lambda/core/model.ts';
import { dg, img, inventory } from '../support/inventory.ts';

const NOW = new Date('2026-11-28T12:00:00Z');

/** One repository as v3 keeps it: tag links, and the manifests it has revisions of. */
class V3Registry implements RegistryClient {
  public readonly baseUrl = 'http://registry.test';
  public readonly calls: string[] = [];
  /** Digest deletes that fail v3's way once: manifest removed, tags left, 500. */
  public readonly failHalfway = new Set<string>();

  public constructor(
    private readonly tags: Map<string, string>,
    private readonly manifests: Set<string>,
  ) {}

  public listRepositories(): Promise<string[]> {
    return Promise.resolve(['app']);
  }
  public listTags(): Promise<string[]> {
    return Promise.resolve([...this.tags.keys()].sort());
  }
  public getManifest(): Promise<FetchedManifest | null> {
    return Promise.reject(new Error('not used'));
  }
  public headManifest(_repository: string, reference: string): Promise<string | null> {
    const digest = reference.startsWith('sha256:') ? reference : this.tags.get(reference);
    return Promise.resolve(digest !== undefined && this.manifests.has(digest) ? digest : null);
  }
  public getBlob(): Promise<Uint8Array> {
    return Promise.reject(new Error('not used'));
  }
  public headBlob(): Promise<boolean> {
    return Promise.resolve(true);
  }
  public deleteManifest(_repository: string, reference: string): Promise<DeleteOutcome> {
    this.calls.push(`DELETE ${reference}`);
    if (!reference.startsWith('sha256:')) {
      return Promise.resolve(this.tags.delete(reference) ? 'deleted' : 'not-found');
    }
    if (!this.manifests.delete(reference)) return Promise.resolve('not-found');
    if (this.failHalfway.delete(reference)) {
      return Promise.reject(
        new RegistryError('DELETE answered 500 UNKNOWN', { status: 500, code: 'UNKNOWN' }),
      );
    }
    for (const [tag, digest] of this.tags) if (digest === reference) this.tags.delete(tag);
    return Promise.resolve('deleted');
  }
  public putManifest(): Promise<string> {
    this.calls.push('PUT');
    return Promise.reject(new Error('a v3 registry needs no placeholder'));
  }
  public probe(): Promise<ProbeResult> {
    return Promise.resolve({ deletesEnabled: true, tagDelete: true });
  }
}

function setUp(): { registry: V3Registry; planned: ReturnType<typeof plan>; inventory: Inventory } {
  // new (kept by name; its alias build-2 goes as a tag only), old (deleted with old and old-alias), a dangling tag.
  const inv = inventory({
    manifests: { new: img('2026-11-20T00:00:00Z'), old: img('2026-01-01T00:00:00Z') },
    repos: { app: { new: 'new', 'build-2': 'new', old: 'old', 'old-alias': 'old' } },
  });
  const withDangling = { ...inv, repositories: [{ ...inv.repositories[0]!, dangling: ['gone'] }] };
  const policy = parsePolicy('rules:\n  - repositories: ["**"]\n    keep: { tags: [new] }\n', 'test');
  const planned = plan(withDangling, policy, NOW);
  const tags = new Map([
    ['new', dg('new')],
    ['build-2', dg('new')],
    ['old', dg('old')],
    ['old-alias', dg('old')],
    ['gone', dg('vanished')],
  ]);
  return {
    registry: new V3Registry(tags, new Set([dg('new'), dg('old')])),
    planned,
    inventory: withDangling,
  };
}

describe('apply on a registry that deletes tags (v3)', () => {
  it('removes shared and dangling tags with DELETE by tag, never a placeholder, and keeps the image', async () => {
    const { registry, planned, inventory: inv } = setUp();
    expect(planned.repositories[0]!.deleteTags.map((t) => [t.tag, t.method])).toEqual([
      ['build-2', 'tag-only'],
      ['old', 'manifest'],
      ['old-alias', 'manifest'],
    ]);
    const report = await applyPlan(planned, registry, { maxDeleteFraction: 1, inventory: inv });
    expect(report.failures).toEqual([]);
    expect(registry.calls).not.toContain('PUT');
    expect(registry.calls).toEqual(
      expect.arrayContaining(['DELETE build-2', 'DELETE gone', `DELETE ${dg('old')}`]),
    );
    expect(await registry.listTags()).toEqual(['new']);
    expect(await registry.headManifest('app', 'new')).toBe(dg('new'));
    expect(report.tagsDeleted).toBe(3);
  });

  it('a digest delete answering 500 after removing the manifest: the tags it left are deleted by tag', async () => {
    const { registry, planned, inventory: inv } = setUp();
    registry.failHalfway.add(dg('old'));
    const report = await applyPlan(planned, registry, { maxDeleteFraction: 1, inventory: inv });
    expect(report.failures).toEqual([]);
    expect(report.entries).toContainEqual(
      expect.objectContaining({
        reference: dg('old'),
        outcome: 'deleted',
        reason: expect.stringMatching(
          /answered 500, but the manifest is gone; tags old, old-alias .*removed/,
        ),
      }),
    );
    expect(registry.calls).toEqual(expect.arrayContaining(['DELETE old', 'DELETE old-alias']));
    expect(await registry.listTags()).toEqual(['new']);
  });

  it('never deletes a left tag that resolves again (pushed meanwhile)', async () => {
    const { registry, planned, inventory: inv } = setUp();
    registry.failHalfway.add(dg('old'));
    const original = registry.deleteManifest.bind(registry);
    registry.deleteManifest = async (repository, reference) => {
      const r = await original(repository, reference).catch((err: unknown) => {
        // Between the failed delete and its repair, someone pushes `old` again.
        (registry as unknown as { tags: Map<string, string> }).tags.set('old', dg('new'));
        throw err;
      });
      return r;
    };
    const report = await applyPlan(planned, registry, { maxDeleteFraction: 1, inventory: inv });
    expect(report.failures).toEqual([]);
    expect(registry.calls).not.toContain('DELETE old');
    expect(registry.calls).toContain('DELETE old-alias');
    expect(await registry.listTags()).toEqual(['new', 'old']);
  });
});
