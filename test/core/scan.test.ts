// The scanner over an in-memory registry: what it lists and reads, what it records for each repository, how a
// failed read makes the inventory incomplete, and its progress reports. The same scan against a real registry
// is in test/integration/engine.test.ts.
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../lambda/core/errors.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import { scanRegistry, type ScanProgress } from '../../lambda/core/scan.ts';
import { MemoryRegistry } from '../support/memory-registry.ts';
import { MEDIA } from '../../lambda/demo/seed.ts';

const day = (d: number): string => `2026-01-${String(d).padStart(2, '0')}T00:00:00Z`;

/** team/app: v1, v2 and an alias of v2; team/web: one tag; base/os: protected; other/x: no rule. */
function seeded() {
  const registry = new MemoryRegistry();
  const v1 = registry.addImage('team/app', 'v1', { created: day(1), layers: [{ seed: 'a1', size: 100 }] });
  const v2 = registry.addImage('team/app', 'v2', { created: day(2), layers: [{ seed: 'a2', size: 200 }] });
  registry.tag('team/app', 'latest', v2.digest);
  const web = registry.addImage('team/web', 'main', { created: day(3), layers: [{ seed: 'w', size: 50 }] });
  const os = registry.addImage('base/os', '12', { created: day(4), layers: [{ seed: 'os', size: 999 }] });
  const x = registry.addImage('other/x', 'latest', { created: null });
  return { registry, v1, v2, web, os, x };
}

const policy = validatePolicy({
  rules: [
    { repositories: ['base/**'], protect: true },
    { repositories: ['team/**'], keep: { newest: 1 } },
  ],
});

describe('scanRegistry', () => {
  it('lists every repository and tag, sorted, with each manifest once by digest', async () => {
    const { registry, v1, v2, web, os, x } = seeded();
    const inv = await scanRegistry(registry);

    expect(inv.registry).toBe('http://memory.test');
    expect(inv.repositories.map((r) => r.name)).toEqual(['base/os', 'other/x', 'team/app', 'team/web']);
    const app = inv.repositories.find((r) => r.name === 'team/app')!;
    expect(app).toEqual({
      name: 'team/app',
      tags: [
        { tag: 'latest', digest: v2.digest },
        { tag: 'v1', digest: v1.digest },
        { tag: 'v2', digest: v2.digest },
      ],
      missing: [],
      untaggedSubjects: [],
    });
    expect([...inv.manifests.keys()].sort()).toEqual(
      [v1.digest, v2.digest, web.digest, os.digest, x.digest].sort(),
    );
    expect(inv.manifests.get(v1.digest)).toMatchObject({
      kind: 'image',
      mediaType: MEDIA.dockerManifest,
      config: { digest: v1.config.digest },
      layers: [{ digest: v1.layers[0]!.digest, size: 100 }],
      created: day(1),
      createdSource: 'config',
    });
    expect(inv.errors).toEqual([]);
    expect(inv.warnings).toEqual([]);
    expect(registry.writes()).toEqual([]);
  });

  it('reads a config shared by two tags and two repositories once', async () => {
    const registry = new MemoryRegistry();
    const img = registry.addImage('a/one', 'x', { created: day(5), label: 'shared' });
    registry.tag('a/one', 'y', img.digest);
    // The same bytes in another repository: same manifest and config digests.
    const again = registry.addImage('a/two', 'z', { created: day(5), label: 'shared' });
    expect(again.digest).toBe(img.digest);
    const inv = await scanRegistry(registry);
    expect(registry.callsOf('getBlob')).toHaveLength(1);
    expect(registry.callsOf('getBlob')[0]!.reference).toBe(img.config.digest);
    expect(registry.callsOf('getManifest')).toHaveLength(3);
    expect(inv.manifests.size).toBe(1);
    expect(inv.manifests.get(img.digest)?.created).toBe(day(5));
  });

  it('reads image configs only where a rule judges by age (not for protected or unmatched repositories)', async () => {
    const { registry, v1, v2, web } = seeded();
    const inv = await scanRegistry(registry, { policy });
    expect(
      registry
        .callsOf('getBlob')
        .map((c) => c.reference)
        .sort(),
    ).toEqual([v1.config.digest, v2.config.digest, web.config.digest].sort());
    // Every repository is still listed and its tags resolved: the plan accounts for all of them.
    expect(inv.repositories.map((r) => [r.name, r.tags.length])).toEqual([
      ['base/os', 1],
      ['other/x', 1],
      ['team/app', 3],
      ['team/web', 1],
    ]);
  });

  it.each([
    { globs: ['team/**'], scanned: ['team/app', 'team/web'] },
    { globs: ['team/a*'], scanned: ['team/app'] },
    { globs: ['*'], scanned: [] },
    { globs: ['base/os', 'other/*'], scanned: ['base/os', 'other/x'] },
    { globs: ['nothing/**'], scanned: [] },
  ])('repositories $globs narrow the scan to $scanned', async ({ globs, scanned }) => {
    const { registry } = seeded();
    const inv = await scanRegistry(registry, { repositories: globs });
    expect(inv.repositories.map((r) => r.name)).toEqual(scanned);
    expect([...new Set(registry.callsOf('listTags').map((c) => c.repository))].sort()).toEqual(scanned);
  });

  it('refuses a repository glob that is not a glob, before reading anything but the catalog', async () => {
    const { registry } = seeded();
    await expect(scanRegistry(registry, { repositories: ['team/[app'] })).rejects.toThrow(/never closed/);
    expect(registry.callsOf('listTags')).toEqual([]);
  });

  it('reports progress once per repository, up to the total, with the tags seen so far', async () => {
    const { registry } = seeded();
    const seen: ScanProgress[] = [];
    await scanRegistry(registry, { repositoryConcurrency: 1, onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([
      { repositoriesTotal: 4, repositoriesDone: 1, tagsSeen: 1 },
      { repositoriesTotal: 4, repositoriesDone: 2, tagsSeen: 2 },
      { repositoriesTotal: 4, repositoriesDone: 3, tagsSeen: 5 },
      { repositoriesTotal: 4, repositoriesDone: 4, tagsSeen: 6 },
    ]);
  });

  it('expands an index to its children; the index is as old as its newest child, attestations aside', async () => {
    const registry = new MemoryRegistry();
    const amd = registry.addImage('multi/app', null, { created: day(1), format: 'oci' });
    const arm = registry.addImage('multi/app', null, {
      created: day(7),
      format: 'oci',
      architecture: 'arm64',
    });
    const att = registry.addImage('multi/app', null, { created: day(20), format: 'oci' });
    const index = registry.addIndex(
      'multi/app',
      'v1',
      [
        { ...amd, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm, platform: { architecture: 'arm64', os: 'linux' } },
      ],
      { attestations: [att] },
    );
    const inv = await scanRegistry(registry);
    expect(inv.repositories[0]!.tags).toEqual([{ tag: 'v1', digest: index.digest }]);
    expect(inv.manifests.get(index.digest)).toMatchObject({
      kind: 'index',
      created: new Date(day(7)).toISOString(),
      createdSource: 'children',
    });
    expect(
      inv.manifests.get(index.digest)!.children.map((c) => [c.platform, c.attestation ?? false]),
    ).toEqual([
      ['linux/amd64', false],
      ['linux/arm64', false],
      ['unknown/unknown', true],
    ]);
    for (const child of [amd, arm, att]) expect(inv.manifests.has(child.digest)).toBe(true);
    // The attestation's age is never needed: its config is not read.
    expect(registry.callsOf('getBlob').map((c) => c.reference)).not.toContain(att.config.digest);
  });

  it('records children an index names but the registry lacks, with a warning, and the scan stays complete', async () => {
    const registry = new MemoryRegistry();
    const amd = registry.addImage('multi/app', null, { created: day(1), format: 'oci' });
    const arm = registry.addImage('multi/app', null, {
      created: day(2),
      format: 'oci',
      architecture: 'arm64',
    });
    registry.addIndex('multi/app', 'v1', [amd, arm]);
    registry.dropManifest('multi/app', arm.digest);
    const inv = await scanRegistry(registry);
    expect(inv.repositories[0]!.missing).toEqual([arm.digest]);
    expect(inv.warnings).toEqual([
      {
        repository: 'multi/app',
        message: expect.stringContaining(`1 manifest referenced by an index is not in the registry`),
      },
    ]);
    expect(inv.errors).toEqual([]);
  });

  it('records tags whose manifest is gone as dangling, with a warning', async () => {
    const registry = new MemoryRegistry();
    const keep = registry.addImage('app', 'keep', { created: day(1) });
    const gone = registry.addImage('app', 'gone-1', { created: day(2), layers: [{ seed: 'g', size: 1 }] });
    registry.tag('app', 'gone-2', gone.digest);
    registry.dropManifest('app', gone.digest);
    const inv = await scanRegistry(registry);
    expect(inv.repositories[0]).toMatchObject({
      tags: [{ tag: 'keep', digest: keep.digest }],
      dangling: ['gone-1', 'gone-2'],
    });
    expect(inv.warnings).toEqual([
      {
        repository: 'app',
        message: expect.stringMatching(/^2 tags are listed but their manifest is gone.*: gone-1, gone-2$/),
      },
    ]);
    expect(inv.errors).toEqual([]);
  });

  it('finds the subject of a referrer tag pushed by digest, and keeps it as an untagged subject', async () => {
    const registry = new MemoryRegistry();
    const subject = registry.addImage('signed/app', null, { created: day(1), format: 'oci' });
    registry.addImage('signed/app', `sha256-${subject.digest.slice(7)}`, { created: day(2), subject });
    const inv = await scanRegistry(registry);
    expect(inv.repositories[0]!.untaggedSubjects).toEqual([subject.digest]);
    expect(registry.callsOf('headManifest')).toEqual([
      { op: 'headManifest', repository: 'signed/app', reference: subject.digest },
    ]);
  });

  it('headFirst: a HEAD per tag, and a GET by digest only for a digest not known yet', async () => {
    const registry = new MemoryRegistry();
    const img = registry.addImage('a', 'x', { created: day(1), label: 'shared' });
    registry.addImage('b', 'y', { created: day(1), label: 'shared' });
    const inv = await scanRegistry(registry, { headFirst: true, repositoryConcurrency: 1 });
    expect(inv.repositories.map((r) => r.tags)).toEqual([
      [{ tag: 'x', digest: img.digest }],
      [{ tag: 'y', digest: img.digest }],
    ]);
    expect(registry.callsOf('headManifest')).toEqual([
      { op: 'headManifest', repository: 'a', reference: 'x' },
      { op: 'headManifest', repository: 'b', reference: 'y' },
    ]);
    expect(registry.callsOf('getManifest')).toEqual([
      { op: 'getManifest', repository: 'a', reference: img.digest },
    ]);
  });

  const boom = (what: string) => new RegistryError(`${what}: 503 after 4 attempts`, { status: 503 });

  it.each([
    {
      what: 'the catalog',
      fail: (r: MemoryRegistry) => r.fail('listRepositories', boom('catalog')),
      errors: [{ message: 'listing repositories failed: catalog: 503 after 4 attempts' }],
      repositories: [],
    },
    {
      what: 'the tags of one repository',
      fail: (r: MemoryRegistry) => r.fail('listTags', boom('tags'), { repository: 'team/web' }),
      errors: [{ repository: 'team/web', message: 'listing tags failed: tags: 503 after 4 attempts' }],
      repositories: ['base/os', 'other/x', 'team/app', 'team/web'],
    },
    {
      what: 'one manifest',
      fail: (r: MemoryRegistry) =>
        r.fail('getManifest', boom('manifest'), { repository: 'team/app', reference: 'v1' }),
      errors: [{ repository: 'team/app', reference: 'v1', message: 'manifest: 503 after 4 attempts' }],
      repositories: ['base/os', 'other/x', 'team/app', 'team/web'],
    },
  ])('a failed read of $what is an error in the inventory, and the rest is still scanned', async (c) => {
    const { registry } = seeded();
    c.fail(registry);
    const inv = await scanRegistry(registry);
    expect(inv.errors).toEqual(c.errors);
    expect(inv.repositories.map((r) => r.name)).toEqual(c.repositories);
    expect(registry.writes()).toEqual([]);
  });

  it('a failed config read names the config and the manifest; another repository sharing it reads it again', async () => {
    const registry = new MemoryRegistry();
    const a = registry.addImage('a', 'v1', { created: day(1), label: 'shared' });
    registry.addImage('b', 'v1', { created: day(1), label: 'shared' });
    registry.fail('getBlob', boom('blob'), { repository: 'a', times: 1 });
    const inv = await scanRegistry(registry, { repositoryConcurrency: 1 });
    expect(inv.errors).toEqual([
      {
        repository: 'a',
        reference: 'v1',
        message: `reading config ${a.config.digest} of ${a.digest} failed: blob: 503 after 4 attempts`,
      },
    ]);
    expect(registry.callsOf('getBlob').map((c) => c.repository)).toEqual(['a', 'b']);
    expect(inv.manifests.get(a.digest)?.created).toBe(day(1));
  });

  it('refuses a child served under another digest than the index names', async () => {
    const registry = new MemoryRegistry();
    const child = registry.addImage('m', null, { created: day(1), format: 'oci' });
    const impostor = registry.addImage('m', null, { created: day(2), format: 'oci', architecture: 'arm64' });
    registry.addIndex('m', 'v1', [child]);
    const real = registry.getManifest.bind(registry);
    registry.getManifest = async (repo, ref) =>
      ref === child.digest ? real(repo, impostor.digest) : real(repo, ref);
    const inv = await scanRegistry(registry);
    expect(inv.errors).toEqual([
      {
        repository: 'm',
        reference: child.digest,
        message: `asked for ${child.digest} but the registry served ${impostor.digest}`,
      },
    ]);
  });
});
