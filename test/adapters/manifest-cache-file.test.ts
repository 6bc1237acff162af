// The file manifest cache: round trips, atomic saves, pruning, and that nothing wrong with a cache (missing,
// corrupt, another version, entries of the wrong shape or under the wrong digest) fails a run or changes a plan.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  openFileCache,
  validEntry,
} from '../../lambda/adapters/manifest-cache-file.ts';
import type { ManifestInfo, Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import type { ManifestCache } from '../../lambda/core/ports.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { SyntheticRegistry } from '../bench/synthetic-registry.ts';
import { dg } from '../support/inventory.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 5, 1);

const image: ManifestInfo = {
  digest: dg('image'),
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  kind: 'image',
  size: 527,
  config: { digest: dg('config'), size: 300, mediaType: 'application/vnd.docker.container.image.v1+json' },
  layers: [
    { digest: dg('base'), size: 1000 },
    { digest: dg('top'), size: 20 },
  ],
  children: [],
  created: '2024-01-01T00:00:00Z',
  createdSource: 'config',
};
const index: ManifestInfo = {
  digest: dg('index'),
  mediaType: 'application/vnd.oci.image.index.v1+json',
  kind: 'index',
  size: 700,
  layers: [],
  children: [
    { digest: dg('image'), mediaType: image.mediaType, platform: 'linux/amd64' },
    { digest: dg('att'), mediaType: 'application/vnd.oci.image.manifest.v1+json', attestation: true },
  ],
  created: '2024-01-01T00:00:00.000Z',
  createdSource: 'children',
};
const artifact: ManifestInfo = {
  digest: dg('sig'),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  kind: 'artifact',
  size: 400,
  config: { digest: dg('empty'), size: 2, mediaType: 'application/vnd.oci.empty.v1+json' },
  layers: [{ digest: dg('payload'), size: 300 }],
  children: [],
  subject: dg('image'),
  artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
};
const schema1: ManifestInfo = {
  digest: dg('old'),
  mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  kind: 'schema1',
  size: 2000,
  layers: [{ digest: dg('old-layer'), size: 0 }],
  children: [],
  created: '2016-05-05T10:00:00Z',
  createdSource: 'history',
};

let dir: string;
let warnings: string[];
const warn = (m: string): void => void warnings.push(m);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rj-cache-test-'));
  warnings = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function header(version: unknown = CACHE_FORMAT_VERSION): string {
  return JSON.stringify({ format: CACHE_FORMAT, version, savedAt: '2025-06-01' });
}

function writeCache(path: string, lines: string[]): void {
  writeFileSync(path, gzipSync(lines.join('\n') + '\n'));
}

describe('openFileCache', () => {
  it('starts empty and quietly when the file does not exist, then saves what it was given', async () => {
    const path = join(dir, 'nested', 'cache.ndjson.gz');
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([]);
    cache.set(image);
    expect(await cache.save()).toBe(true);
    const lines = gunzipSync(readFileSync(path)).toString().trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION });
    expect(lines).toHaveLength(2);
  });

  it.each([
    ['an image', image],
    ['an index with platforms and an attestation', index],
    ['an artifact with subject and artifactType', artifact],
    ['a schema1 manifest', schema1],
  ])('round-trips %s unchanged', async (_name, info) => {
    const path = join(dir, 'cache.gz');
    const first = await openFileCache(path, { warn });
    first.set(info);
    await first.save();
    const second = await openFileCache(path, { warn });
    expect(second.loadStats).toEqual({ loaded: 1, rejected: 0 });
    expect(second.get(info.digest)).toStrictEqual(info);
    expect(second.get(dg('something else'))).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it.each([
    ['plain text, not gzip', () => Buffer.from('hello')],
    ['gzip of something that is not a cache', () => gzipSync('{"hello":1}\n')],
    ['gzip of nothing', () => gzipSync('')],
    ['an empty file', () => Buffer.alloc(0)],
    ['a cache of another format version', () => gzipSync(header(CACHE_FORMAT_VERSION + 1) + '\n')],
    [
      'a truncated cache',
      () => {
        const whole = gzipSync(header() + '\n' + JSON.stringify([image.digest, 1, image]) + '\n');
        return whole.subarray(0, whole.length - 12);
      },
    ],
  ])('starts empty with a warning, never failing, on %s; saving then replaces it', async (_name, bytes) => {
    const path = join(dir, 'cache.gz');
    writeFileSync(path, bytes());
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not be used .* starting with an empty cache/);
    cache.set(image);
    expect(await cache.save()).toBe(true);
    expect((await openFileCache(path, { warn })).get(image.digest)).toStrictEqual(image);
  });

  it('warns and starts empty when the path cannot be read (a folder)', async () => {
    const cache = await openFileCache(dir, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toHaveLength(1);
  });

  it('a failed save warns, returns false, throws nothing and leaves no temp file', async () => {
    writeFileSync(join(dir, 'file'), 'not a folder');
    const path = join(dir, 'file', 'cache.gz');
    const cache = await openFileCache(path, { warn });
    cache.set(image);
    expect(await cache.save()).toBe(false);
    expect(warnings.at(-1)).toMatch(/could not be written/);
    expect(readdirSync(dir)).toEqual(['file']);
  });

  it('saves atomically: the old file stays whole until the new one is renamed over it', async () => {
    const path = join(dir, 'cache.gz');
    const a = await openFileCache(path, { warn });
    a.set(image);
    await a.save();
    const b = await openFileCache(path, { warn });
    b.set(index);
    await b.save();
    expect(readdirSync(dir)).toEqual(['cache.gz']);
    const c = await openFileCache(path, { warn });
    expect(c.size).toBe(2);
  });

  it('drops entries no run has used for longer than maxUnusedDays, keeps those used', async () => {
    const path = join(dir, 'cache.gz');
    const first = await openFileCache(path, { warn, now: () => T0 });
    first.set(image);
    first.set(index);
    await first.save();
    const later = await openFileCache(path, { warn, now: () => T0 + 31 * DAY, maxUnusedDays: 30 });
    expect(later.get(image.digest)).toBeDefined();
    await later.save();
    const last = await openFileCache(path, { warn, now: () => T0 + 32 * DAY, maxUnusedDays: 30 });
    expect(last.get(image.digest)).toBeDefined();
    expect(last.get(index.digest)).toBeUndefined();
  });

  it('does not store an entry whose shape is wrong', async () => {
    const path = join(dir, 'cache.gz');
    const cache = await openFileCache(path, { warn });
    cache.set({ ...image, kind: 'weird' } as unknown as ManifestInfo);
    expect(cache.size).toBe(0);
    expect(cache.get(image.digest)).toBeUndefined();
  });
});

type Bad = [string, (e: Record<string, unknown>) => unknown, string?];

describe('validEntry: an entry of the wrong shape or under another digest is ignored', () => {
  const badEntries: Bad[] = [
    ['filed under another digest', (e) => e, dg('other')],
    ['key that is not a digest', (e) => ({ ...e, digest: 'latest' }), 'latest'],
    ['unknown kind', (e) => ({ ...e, kind: 'blob' })],
    ['negative size', (e) => ({ ...e, size: -1 })],
    ['fractional size', (e) => ({ ...e, size: 1.5 })],
    ['media type not a string', (e) => ({ ...e, mediaType: 7 })],
    ['layers not a list', (e) => ({ ...e, layers: {} })],
    ['a layer without a digest', (e) => ({ ...e, layers: [{ size: 1 }] })],
    ['a layer with a size as text', (e) => ({ ...e, layers: [{ digest: dg('l'), size: '1' }] })],
    ['an image without its config', (e) => ({ ...e, config: undefined })],
    ['a config with a bad digest', (e) => ({ ...e, config: { digest: 'x', size: 1, mediaType: 'm' } })],
    ['created without where from', (e) => ({ ...e, createdSource: undefined })],
    ['created that is not text', (e) => ({ ...e, created: 1700000000 })],
    ['an unknown created source', (e) => ({ ...e, createdSource: 'guess' })],
    ['an image with children', (e) => ({ ...e, children: [{ digest: dg('c'), mediaType: 'm' }] })],
    ['a subject that is not a digest', (e) => ({ ...e, subject: 'x' })],
    ['not an object', () => 'image'],
    ['null', () => null],
  ];
  it.each(badEntries)('%s', (_name, mutate, key) => {
    const entry = mutate(JSON.parse(JSON.stringify(image)) as Record<string, unknown>);
    expect(validEntry(key ?? image.digest, entry)).toBeUndefined();
  });

  it.each<Bad>([
    ['an index with a config', (e) => ({ ...e, config: { digest: dg('c'), size: 1, mediaType: 'm' } })],
    [
      'a child marked attestation "yes"',
      (e) => ({ ...e, children: [{ digest: dg('c'), mediaType: 'm', attestation: 'yes' }] }),
    ],
    ['a child without a media type', (e) => ({ ...e, children: [{ digest: dg('c') }] })],
  ])('%s', (_name, mutate) => {
    const entry = mutate(JSON.parse(JSON.stringify(index)) as Record<string, unknown>);
    expect(validEntry(index.digest, entry)).toBeUndefined();
  });

  it('keeps the good lines of a file and counts the bad ones', async () => {
    const path = join(dir, 'cache.gz');
    writeCache(path, [
      header(),
      JSON.stringify([image.digest, 1, image]),
      JSON.stringify([dg('other'), 1, index]),
      '{not json',
      JSON.stringify([index.digest, 'yesterday', index]),
      JSON.stringify([artifact.digest, 1, artifact]),
    ]);
    const cache = await openFileCache(path, { warn, now: () => T0 });
    expect(cache.loadStats).toEqual({ loaded: 2, rejected: 3 });
    expect(cache.get(image.digest)).toStrictEqual(image);
    expect(cache.get(artifact.digest)).toStrictEqual(artifact);
    expect(cache.get(dg('other'))).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/ignored 3 malformed entries/)]);
  });
});

describe('a cache never changes a plan', () => {
  const policy = validatePolicy(
    { rules: [{ repositories: ['**'], keep: { newest: 3 } }] },
    'test-policy.yaml',
  );
  // Ten repositories so that one is multi-arch (indexes of two images each).
  const shape = { repos: 10, tags: 6 };

  async function planWith(cache?: ManifestCache): Promise<{ plan: Plan; registry: SyntheticRegistry }> {
    const registry = new SyntheticRegistry(shape);
    const inventory = await scanRegistry(registry, { policy, ...(cache ? { cache } : {}) });
    return { plan: makePlan(inventory, policy, new Date(T0)), registry };
  }

  it('a warm cache gives the same plan with one read per tag, a presence check per index child, and no config reads', async () => {
    const path = join(dir, 'cache.gz');
    const { plan: reference, registry: uncached } = await planWith();
    const cold = await openFileCache(path, { warn });
    const first = await planWith(cold);
    expect(first.plan).toStrictEqual(reference);
    // An empty cache costs nothing extra.
    expect(first.registry.counts).toEqual(uncached.counts);
    await cold.save();
    const warm = await openFileCache(path, { warn });
    const second = await planWith(warm);
    expect(second.plan).toStrictEqual(reference);
    const tags = reference.summary.tags;
    const children = 1 * shape.tags * 2;
    expect(second.registry.counts).toEqual({
      catalog: 1,
      tags: shape.repos,
      manifestGet: tags,
      manifestHead: children,
      blobGet: 0,
    });
  });

  it('entries that lie (another manifest filed under a digest, wrong shapes) are ignored: same plan', async () => {
    const path = join(dir, 'cache.gz');
    const { plan: reference } = await planWith();
    const honest = await openFileCache(path, { warn });
    await planWith(honest);
    await honest.save();
    // Rewrite every entry: half filed under another digest, half with a broken shape.
    const lines = gunzipSync(readFileSync(path)).toString().trim().split('\n');
    const entries = lines.slice(1).map((l) => JSON.parse(l) as [string, number, Record<string, unknown>]);
    const lying = entries.map(([key, day, info], i) =>
      i % 2 === 0
        ? JSON.stringify([key, day, entries[(i + 1) % entries.length]![2]])
        : JSON.stringify([key, day, { ...info, created: 12345 }]),
    );
    writeCache(path, [lines[0]!, ...lying]);
    const bad = await openFileCache(path, { warn });
    expect(bad.size).toBe(0);
    const { plan } = await planWith(bad);
    expect(plan).toStrictEqual(reference);
  });

  it('a cache answering with another digest than asked for is not believed', async () => {
    const { plan: reference } = await planWith();
    const liar: ManifestCache = { get: () => image, set: () => undefined };
    const { plan, registry } = await planWith(liar);
    expect(plan).toStrictEqual(reference);
    expect(registry.counts.blobGet).toBeGreaterThan(0);
  });
});
