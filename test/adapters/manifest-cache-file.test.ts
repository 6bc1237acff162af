// The file manifest cache: round trips, atomic saves, pruning; a file or folder someone else could have written
// is refused; and nothing wrong with a cache (missing, corrupt, another version, bad entries, untrusted) fails
// a run or changes a plan.
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openFileCache } from '../../lambda/adapters/manifest-cache-file.ts';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  validEntry,
} from '../../lambda/adapters/manifest-cache-store.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { validatePolicy } from '../../lambda/core/policy.ts';
import type { ManifestCache } from '../../lambda/core/ports.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { SyntheticRegistry } from '../bench/synthetic-registry.ts';
import { dg } from '../support/inventory.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2025, 5, 1);
const CONFIG = dg('config');
const OTHER = dg('other config');
const uid = process.getuid?.();

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
  writeFileSync(path, gzipSync(lines.join('\n') + '\n'), { mode: 0o600 });
}

describe('openFileCache', () => {
  it('starts empty and quietly when the file does not exist, then saves 0600 in a new 0700 folder', async () => {
    const path = join(dir, 'nested', 'cache.ndjson.gz');
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([]);
    cache.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    expect(await cache.save()).toBe(true);
    const lines = gunzipSync(readFileSync(path)).toString().trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION });
    expect(JSON.parse(lines[1]!)).toEqual([CONFIG, expect.any(Number), '2024-01-01T00:00:00Z']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700);
  });

  it.each([
    ['a time', '2024-01-01T00:00:00Z'],
    ['"the config has none"', null],
  ])('round-trips %s', async (_name, created) => {
    const path = join(dir, 'cache.gz');
    const first = await openFileCache(path, { warn });
    first.setConfigCreated(CONFIG, created);
    await first.save();
    const second = await openFileCache(path, { warn });
    expect(second.loadStats).toEqual({ loaded: 1, rejected: 0 });
    expect(second.getConfigCreated(CONFIG)).toBe(created);
    expect(second.getConfigCreated(OTHER)).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it.each([
    ['plain text, not gzip', () => Buffer.from('hello')],
    ['gzip of something that is not a cache', () => gzipSync('{"hello":1}\n')],
    ['gzip of nothing', () => gzipSync('')],
    ['an empty file', () => Buffer.alloc(0)],
    ['a cache of another format version', () => gzipSync(header(CACHE_FORMAT_VERSION + 1) + '\n')],
    [
      'a cache of format 1 (whole manifests)',
      () => gzipSync(header(1) + '\n' + JSON.stringify([dg('image'), 1, { digest: dg('image') }]) + '\n'),
    ],
    [
      'a truncated cache',
      () => {
        const whole = gzipSync(header() + '\n' + JSON.stringify([CONFIG, 1, '2024-01-01T00:00:00Z']) + '\n');
        return whole.subarray(0, whole.length - 12);
      },
    ],
  ])('starts empty with a warning, never failing, on %s; saving then replaces it', async (_name, bytes) => {
    const path = join(dir, 'cache.gz');
    writeFileSync(path, bytes(), { mode: 0o600 });
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not be used .* starting with an empty cache/);
    cache.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    expect(await cache.save()).toBe(true);
    expect((await openFileCache(path, { warn })).getConfigCreated(CONFIG)).toBe('2024-01-01T00:00:00Z');
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
    cache.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    expect(await cache.save()).toBe(false);
    expect(warnings.at(-1)).toMatch(/could not be written/);
    expect(readdirSync(dir)).toEqual(['file']);
  });

  it('saves atomically: the old file stays whole until the new one is renamed over it', async () => {
    const path = join(dir, 'cache.gz');
    const a = await openFileCache(path, { warn });
    a.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    await a.save();
    const b = await openFileCache(path, { warn });
    b.setConfigCreated(OTHER, null);
    await b.save();
    expect(readdirSync(dir)).toEqual(['cache.gz']);
    const c = await openFileCache(path, { warn });
    expect(c.size).toBe(2);
  });

  it('drops entries no run has used for longer than maxUnusedDays, keeps those used', async () => {
    const path = join(dir, 'cache.gz');
    const first = await openFileCache(path, { warn, now: () => T0 });
    first.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    first.setConfigCreated(OTHER, '2024-02-01T00:00:00Z');
    await first.save();
    const later = await openFileCache(path, { warn, now: () => T0 + 31 * DAY, maxUnusedDays: 30 });
    expect(later.getConfigCreated(CONFIG)).toBeDefined();
    await later.save();
    const last = await openFileCache(path, { warn, now: () => T0 + 32 * DAY, maxUnusedDays: 30 });
    expect(last.getConfigCreated(CONFIG)).toBeDefined();
    expect(last.getConfigCreated(OTHER)).toBeUndefined();
  });

  it('does not store an entry of the wrong shape', async () => {
    const cache = await openFileCache(join(dir, 'cache.gz'), { warn });
    cache.setConfigCreated('latest', '2024-01-01T00:00:00Z');
    cache.setConfigCreated(CONFIG, 'x'.repeat(65));
    expect(cache.size).toBe(0);
  });
});

describe('a cache file someone else could have written is refused', () => {
  async function saved(path: string): Promise<void> {
    const cache = await openFileCache(path, { warn });
    cache.setConfigCreated(CONFIG, '2024-01-01T00:00:00Z');
    expect(await cache.save()).toBe(true);
  }

  it.each([
    ['writable by its group', 0o620, /it can be written by others \(mode 0620\)/],
    ['writable by anyone', 0o666, /it can be written by others \(mode 0666\)/],
  ])('a file %s', async (_name, mode, why) => {
    const path = join(dir, 'cache.gz');
    await saved(path);
    chmodSync(path, mode);
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(why)]);
    expect(warnings[0]).toMatch(/is not used: .*delete it.*the plan is the same as without a cache/);
    // Saving replaces it with a file of the user's own, 0600.
    cache.setConfigCreated(OTHER, null);
    expect(await cache.save()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('a folder anyone can write: refused on load, and not written to', async () => {
    const folder = join(dir, 'shared');
    const path = join(folder, 'cache.gz');
    await saved(path);
    chmodSync(folder, 0o777);
    const cache = await openFileCache(path, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([
      expect.stringMatching(/its folder .*shared can be written by others \(mode 0777\).*chmod 700/),
    ]);
    const before = readFileSync(path);
    cache.setConfigCreated(OTHER, null);
    expect(await cache.save()).toBe(false);
    expect(readFileSync(path)).toEqual(before);
  });

  it.skipIf(uid === undefined)('a file another user owns', async () => {
    const path = join(dir, 'cache.gz');
    await saved(path);
    const cache = await openFileCache(path, { warn, uid: uid! + 1 });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(/belongs to user \d+, not to you/)]);
  });

  it('a symbolic link', async () => {
    const real = join(dir, 'real.gz');
    await saved(real);
    const link = join(dir, 'cache.gz');
    symlinkSync(real, link);
    const cache = await openFileCache(link, { warn });
    expect(cache.size).toBe(0);
    expect(warnings).toEqual([expect.stringMatching(/is a symbolic link/)]);
  });

  it('a file of its own in a folder of its own is used', async () => {
    mkdirSync(join(dir, 'own'), { mode: 0o755 });
    const path = join(dir, 'own', 'cache.gz');
    await saved(path);
    chmodSync(path, 0o644); // readable by others is fine: only writing could change a plan
    expect((await openFileCache(path, { warn })).size).toBe(1);
    expect(warnings).toEqual([]);
  });
});

describe('validEntry', () => {
  it.each<[string, unknown, unknown]>([
    ['a key that is not a digest', 'latest', '2024-01-01T00:00:00Z'],
    ['a time that is not text', CONFIG, 1700000000],
    ['an object', CONFIG, { created: '2024-01-01T00:00:00Z' }],
    ['text too long to be a time', CONFIG, 'x'.repeat(65)],
  ])('refuses %s', (_name, key, value) => {
    expect(validEntry(key, value)).toBeUndefined();
  });

  it('keeps the good lines of a file and counts the bad ones', async () => {
    const path = join(dir, 'cache.gz');
    writeCache(path, [
      header(),
      JSON.stringify([CONFIG, 1, '2024-01-01T00:00:00Z']),
      JSON.stringify(['latest', 1, '2024-01-01T00:00:00Z']),
      '{not json',
      JSON.stringify([dg('third'), 'yesterday', null]),
      JSON.stringify([OTHER, 1, null]),
    ]);
    const cache = await openFileCache(path, { warn, now: () => T0 });
    expect(cache.loadStats).toEqual({ loaded: 2, rejected: 3 });
    expect(cache.getConfigCreated(CONFIG)).toBe('2024-01-01T00:00:00Z');
    expect(cache.getConfigCreated(OTHER)).toBeNull();
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

  it('a warm cache gives the same plan with one manifest read per tag and index child, and no config reads', async () => {
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
      manifestGet: tags + children,
      manifestHead: 0,
      blobGet: 0,
    });
  });

  it('a cache that knows nothing is asked once per config and changes nothing', async () => {
    const { plan: reference, registry } = await planWith();
    const asked: string[] = [];
    const unknown: ManifestCache = {
      getConfigCreated: (d) => void asked.push(d),
      setConfigCreated: () => undefined,
    };
    const { plan, registry: counted } = await planWith(unknown);
    expect(plan).toStrictEqual(reference);
    expect(counted.counts).toEqual(registry.counts);
    expect(asked.length).toBe(registry.counts.blobGet);
  });
});
