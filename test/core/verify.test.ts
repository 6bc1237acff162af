// verifyKept over an in-memory registry: after deletes and GC, every kept tag must still resolve to its digest
// and everything it reaches must still be served; each loss is one sentence naming what is gone.
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../lambda/core/errors.ts';
import type { Inventory, Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { verifyKept } from '../../lambda/core/verify.ts';
import { MemoryRegistry, type MemoryImage } from '../support/memory-registry.ts';

const NOW = new Date('2026-02-01T00:00:00Z');
const policy = validatePolicy({ rules: [{ repositories: ['**'], keep: { newest: 1 } }] });

/**
 * app: old (to delete) and new (kept, two layers); multi: an index of two platforms (kept). Returns the plan
 * and inventory as a run makes them, with the registry as it is after deleting and collecting the old image.
 */
async function afterRun(): Promise<{
  registry: MemoryRegistry;
  planned: Plan;
  inv: Inventory;
  kept: MemoryImage;
  amd: MemoryImage;
  indexDigest: string;
}> {
  const registry = new MemoryRegistry();
  const old = registry.addImage('app', 'old', {
    created: '2026-01-01T00:00:00Z',
    layers: [{ seed: 'o', size: 10 }],
  });
  const kept = registry.addImage('app', 'new', {
    created: '2026-01-02T00:00:00Z',
    layers: [
      { seed: 'n1', size: 10 },
      { seed: 'n2', size: 10 },
    ],
  });
  const amd = registry.addImage('multi', null, {
    created: '2026-01-03T00:00:00Z',
    format: 'oci',
    layers: [{ seed: 'm', size: 5 }],
  });
  const arm = registry.addImage('multi', null, {
    created: '2026-01-03T00:00:00Z',
    format: 'oci',
    architecture: 'arm64',
    layers: [{ seed: 'm-arm', size: 5 }],
  });
  const index = registry.addIndex('multi', 'v1', [amd, arm]);
  const inv = await scanRegistry(registry);
  const planned = makePlan(inv, policy, NOW);
  await registry.deleteManifest('app', old.digest);
  registry.calls.length = 0;
  return { registry, planned, inv, kept, amd, indexDigest: index.digest };
}

describe('verifyKept', () => {
  it('checks every kept tag, manifest and blob, and finds nothing wrong when all is served', async () => {
    const { registry, planned, inv } = await afterRun();
    const result = await verifyKept(planned, inv, registry);
    // Tags: app:new, multi:v1. Manifests: app's image; the index and its two children. Blobs: app's config and
    // two layers; each child's config and layer.
    expect(result).toEqual({ tagsChecked: 2, manifestsChecked: 4, blobsChecked: 7, problems: [] });
    expect(registry.writes()).toEqual([]);
  });

  it.each([
    {
      what: 'a kept tag pushed again (another image)',
      damage: (r: MemoryRegistry) => r.addImage('app', 'new', { created: '2026-01-05T00:00:00Z' }),
      problems: (f: Awaited<ReturnType<typeof afterRun>>) => [
        `app:new should resolve to ${f.kept.digest} but resolves to ${new MemoryRegistry().addImage('app', 'new', { created: '2026-01-05T00:00:00Z' }).digest}`,
      ],
    },
    {
      what: 'a kept manifest gone',
      damage: (r: MemoryRegistry, f: Awaited<ReturnType<typeof afterRun>>) =>
        r.dropManifest('multi', f.amd.digest),
      problems: (f: Awaited<ReturnType<typeof afterRun>>) => [
        `multi@${f.amd.digest}: manifest is no longer served`,
      ],
    },
    {
      what: 'a kept tag and its manifest gone',
      damage: (r: MemoryRegistry, f: Awaited<ReturnType<typeof afterRun>>) =>
        r.dropManifest('app', f.kept.digest),
      problems: (f: Awaited<ReturnType<typeof afterRun>>) => [
        `app:new should resolve to ${f.kept.digest} but resolves to nothing`,
        `app@${f.kept.digest}: manifest is no longer served`,
      ],
    },
    {
      what: 'a layer of a kept image collected',
      damage: (r: MemoryRegistry, f: Awaited<ReturnType<typeof afterRun>>) =>
        r.dropBlob('app', f.kept.layers[1]!.digest),
      problems: (f: Awaited<ReturnType<typeof afterRun>>) => [
        `app: blob ${f.kept.layers[1]!.digest} is no longer served`,
      ],
    },
  ])('reports $what, naming the repository and what is missing', async ({ damage, problems }) => {
    const f = await afterRun();
    damage(f.registry, f);
    const result = await verifyKept(f.planned, f.inv, f.registry);
    expect(result.problems).toEqual(problems(f).sort());
  });

  it('lists problems sorted, whatever order the reads finish in', async () => {
    const f = await afterRun();
    f.registry.dropBlob('multi', f.amd.layers[0]!.digest);
    f.registry.dropBlob('app', f.kept.config.digest);
    const { problems } = await verifyKept(f.planned, f.inv, f.registry, { concurrency: 1 });
    expect(problems).toEqual([...problems].sort());
    expect(problems).toHaveLength(2);
  });

  it('a read that fails is a problem too, not a pass', async () => {
    const f = await afterRun();
    f.registry.fail('headBlob', new RegistryError('HEAD blob: 503 after 4 attempts', { status: 503 }), {
      reference: f.kept.layers[0]!.digest,
    });
    const result = await verifyKept(f.planned, f.inv, f.registry);
    expect(result.problems).toEqual(['verification read failed: HEAD blob: 503 after 4 attempts']);
  });

  it('checks only the repositories it is given', async () => {
    const f = await afterRun();
    f.registry.dropManifest('app', f.kept.digest);
    const result = await verifyKept(f.planned, f.inv, f.registry, { repositories: ['multi'] });
    expect(result).toEqual({ tagsChecked: 1, manifestsChecked: 3, blobsChecked: 4, problems: [] });
    expect(f.registry.calls.every((c) => c.repository === 'multi')).toBe(true);
  });

  it('does not ask for children the scan already found missing', async () => {
    const registry = new MemoryRegistry();
    const amd = registry.addImage('multi', null, { created: '2026-01-03T00:00:00Z', format: 'oci' });
    const arm = registry.addImage('multi', null, {
      created: '2026-01-03T00:00:00Z',
      format: 'oci',
      architecture: 'arm64',
    });
    registry.addIndex('multi', 'v1', [amd, arm]);
    registry.dropManifest('multi', arm.digest);
    const inv = await scanRegistry(registry);
    const planned = makePlan(inv, policy, NOW);
    registry.calls.length = 0;
    const result = await verifyKept(planned, inv, registry);
    expect(result.problems).toEqual([]);
    expect(registry.calls.map((c) => c.reference)).not.toContain(arm.digest);
  });
});
