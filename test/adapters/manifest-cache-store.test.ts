// The cache's in-memory store (compact: sha256 digests as bytes, days in a typed array): every key means what it
// meant as a string, entries survive a save and a load with their days, and the table keeps finding them as it
// grows, whatever the digests look like and whatever its hash seed (it answers as a plain Map would). The file and S3 stores around it are tested in manifest-cache-file/-s3.test.ts.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  ManifestCacheStore,
  validEntry,
} from '../../lambda/adapters/manifest-cache-store.ts';
import { propertyRuns } from '../support/properties.ts';

const DAY_MS = 86_400_000;
const TODAY = 20_000;
const at = (day: number) => () => day * DAY_MS + 1234;
const sha = (i: number, algo = 'sha256'): string =>
  `${algo}:${createHash(algo).update(String(i)).digest('hex')}`;

async function reload(store: ManifestCacheStore, day = TODAY): Promise<ManifestCacheStore> {
  const next = new ManifestCacheStore({ now: at(day) });
  await next.load(Readable.from([await store.encodeToBuffer()]));
  return next;
}

function lines(bytes: Buffer): unknown[] {
  return gunzipSync(bytes)
    .toString()
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as unknown);
}

describe('ManifestCacheStore', () => {
  it('finds every one of 5,000 entries after growing, and after a save and a load', async () => {
    const store = new ManifestCacheStore({ now: at(TODAY) });
    for (let i = 0; i < 5000; i++)
      store.setConfigCreated(sha(i), i % 7 === 0 ? null : `2024-01-01T00:00:${i}Z`);
    expect(store.size).toBe(5000);
    const again = await reload(store);
    expect(again.size).toBe(5000);
    for (const s of [store, again]) {
      for (let i = 0; i < 5000; i++) {
        expect(s.getConfigCreated(sha(i))).toBe(i % 7 === 0 ? null : `2024-01-01T00:00:${i}Z`);
      }
      expect(s.getConfigCreated(sha(5000))).toBeUndefined();
    }
  });

  it.each([
    ['sha512', sha(1, 'sha512')],
    ['upper-case hex', sha(1).toUpperCase().replace('SHA256', 'sha256')],
    ['another algorithm name', 'blake3:' + 'a'.repeat(64)],
  ])('keeps a %s digest apart from the sha256 one it resembles', async (_, other) => {
    const store = new ManifestCacheStore({ now: at(TODAY) });
    store.setConfigCreated(sha(1), 'lower');
    store.setConfigCreated(other, 'other');
    for (const s of [store, await reload(store)]) {
      expect(s.size).toBe(2);
      expect(s.getConfigCreated(sha(1))).toBe('lower');
      expect(s.getConfigCreated(other)).toBe('other');
    }
  });

  it('replaces an entry set twice, and keeps no entry it would not load again', () => {
    const store = new ManifestCacheStore({ now: at(TODAY) });
    store.setConfigCreated(sha(1), 'first');
    store.setConfigCreated(sha(1), 'second');
    store.setConfigCreated('not a digest', 'x');
    store.setConfigCreated(sha(2), 'x'.repeat(65));
    expect(store.size).toBe(1);
    expect(store.getConfigCreated(sha(1))).toBe('second');
  });

  it('saves the day each entry was last used, and drops entries unused for longer than maxUnusedDays', async () => {
    const old = new ManifestCacheStore({ now: at(TODAY - 40) });
    old.setConfigCreated(sha(1), 'a');
    old.setConfigCreated(sha(2), 'b');
    const mid = await reload(old, TODAY - 20);
    mid.getConfigCreated(sha(2)); // used 20 days ago
    const now = await reload(mid, TODAY);
    expect(now.size).toBe(2); // loaded as they were saved
    const saved = lines(await now.encodeToBuffer());
    // sha(1): last used 40 days ago, past the 30-day limit; sha(2): used 20 days ago, kept with that day.
    expect(saved).toEqual([[sha(2), TODAY - 20, 'b']]);
  });

  it('treats a day in the future as today, and a duplicate line as the later one', async () => {
    const header = JSON.stringify({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, savedAt: 'x' });
    const body = [
      header,
      JSON.stringify([sha(1), TODAY + 99, 'a']),
      JSON.stringify([sha(1), TODAY - 3, 'b']),
    ];
    const store = new ManifestCacheStore({ now: at(TODAY) });
    expect(await store.load(Readable.from([gzipSync(body.join('\n') + '\n')]))).toEqual({
      loaded: 2,
      rejected: 0,
    });
    expect(lines(await store.encodeToBuffer())).toEqual([[sha(1), TODAY - 3, 'b']]);
    store.getConfigCreated(sha(1));
    expect(lines(await store.encodeToBuffer())).toEqual([[sha(1), TODAY, 'b']]);
  });

  it('reads lines ended by \\r\\n or \\r as readline does, blank lines skipped, a last line without an end, and text split anywhere', async () => {
    const header = JSON.stringify({ format: CACHE_FORMAT, version: CACHE_FORMAT_VERSION, savedAt: 'x' });
    const text =
      `${header}\r\n` +
      `${JSON.stringify([sha(1), TODAY, 'a'])}\r\n\r\n` +
      `${JSON.stringify([sha(2), TODAY, 'é時'])}\r` +
      JSON.stringify([sha(3), TODAY, null]);
    const gz = gzipSync(text);
    for (const pieces of [[gz], [...gz].map((b) => Buffer.from([b]))]) {
      const store = new ManifestCacheStore({ now: at(TODAY) });
      expect(await store.load(Readable.from(pieces))).toEqual({ loaded: 3, rejected: 0 });
      expect(store.getConfigCreated(sha(1))).toBe('a');
      expect(store.getConfigCreated(sha(2))).toBe('é時');
      expect(store.getConfigCreated(sha(3))).toBeNull();
    }
  });

  it('forgets everything on clear, and can be filled again', () => {
    const store = new ManifestCacheStore({ now: at(TODAY) });
    for (let i = 0; i < 2000; i++) store.setConfigCreated(sha(i), 'x');
    store.clear();
    expect(store.size).toBe(0);
    expect(store.getConfigCreated(sha(1))).toBeUndefined();
    store.setConfigCreated(sha(1), 'y');
    expect(store.getConfigCreated(sha(1))).toBe('y');
  });

  it('answers as a plain Map does for any sets and gets, also of digests alike but for a few characters, before and after a save and a load', async () => {
    const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
    const digest = fc.oneof(
      fc.nat(3000).map((i) => sha(i)),
      // The bench's synthetic registry: kind, repository, tag, platform, then zeros.
      fc
        .tuple(fc.nat(1000), fc.nat(120))
        .map(([r, t]) => `sha256:${`c${hex(r, 8)}${hex(t, 8)}0`.padEnd(64, '0')}`),
      fc.nat(5000).map((i) => `sha256:${hex(i, 64)}`),
      fc.nat(5000).map((i) => `sha256:${hex(i, 8).padEnd(64, '0')}`),
      fc.nat(50).map((i) => `sha256:${hex(i, 64).toUpperCase()}`),
      fc.nat(50).map((i) => sha(i, 'sha512')),
      fc.string({ maxLength: 80 }),
    );
    const created = fc.oneof(fc.constant(null), fc.string({ maxLength: 70 }));
    const op = fc.oneof(
      fc.tuple(fc.constant('set' as const), digest, created),
      fc.tuple(fc.constant('get' as const), digest, fc.constant(null)),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 2500 }), fc.nat(), async (ops, hashSeed) => {
        const ours = new ManifestCacheStore({ now: at(TODAY), hashSeed });
        const theirs = new Map<string, string | null>();
        for (const [what, d, value] of ops) {
          if (what === 'set') {
            ours.setConfigCreated(d, value);
            // Only entries that would load again are kept.
            if (validEntry(d, value) !== undefined) theirs.set(d, value);
          } else expect(ours.getConfigCreated(d)).toBe(theirs.get(d));
          expect(ours.size).toBe(theirs.size);
        }
        const again = new ManifestCacheStore({ now: at(TODAY), hashSeed: hashSeed ^ 1 });
        await again.load(Readable.from([await ours.encodeToBuffer()]));
        expect(again.size).toBe(theirs.size);
        for (const [d, value] of theirs) expect(again.getConfigCreated(d)).toBe(value);
      }),
      { numRuns: propertyRuns(40) },
    );
  });
});
