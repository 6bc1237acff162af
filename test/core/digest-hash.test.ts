// The digest tables' hash: the text and the bytes of a digest hash alike, and digests that differ in only a few
// characters anywhere (counters, the bench's synthetic registry) spread over a table's slots as real ones do, so
// no probe walks a long run of slots (keying on a few characters made inserting them quadratic).
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashDigestBytes, hashDigestText } from '../../lambda/core/digest-hash.ts';
import { propertyRuns } from '../support/properties.ts';

const N = 1 << 15;
const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/** The longest probe (slots walked past the home slot) when `keys` are put in a linear-probing table twice their number, as DigestSet and the cache store size theirs. */
function longestProbe(keys: readonly number[]): number {
  let capacity = 16;
  while (capacity < keys.length * 2) capacity *= 2;
  const used = new Uint8Array(capacity);
  let longest = 0;
  for (const k of keys) {
    let probe = 0;
    let slot = k & (capacity - 1);
    while (used[slot]) {
      slot = (slot + 1) & (capacity - 1);
      probe++;
    }
    used[slot] = 1;
    longest = Math.max(longest, probe);
  }
  return longest;
}

describe('digest hash', () => {
  it('is the same for a digest as text and as its 32 bytes, whatever the seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), (bytes, seed) => {
        const text = 'sha256:' + Buffer.from(bytes).toString('hex');
        const padded = new Uint8Array([9, ...bytes, 9]);
        expect(hashDigestBytes(padded, 1, seed)).toBe(hashDigestText(text, seed));
        expect(hashDigestText(text.toUpperCase().replace('SHA256', 'sha256'), seed)).toBe(
          hashDigestText(text, seed),
        );
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('depends on the seed', () => {
    const d = 'sha256:' + 'ab'.repeat(32);
    expect(new Set([1, 2, 3, 4].map((seed) => hashDigestText(d, seed))).size).toBe(4);
  });

  it.each([
    // kind, repository, tag, platform, then zeros: the benchmark's synthetic registry (test/bench/synthetic-registry.ts)
    ['the bench synthetic registry', (i: number) => `c${hex(i >> 7, 8)}${hex(i & 127, 8)}0`.padEnd(64, '0')],
    ['a counter at the start', (i: number) => hex(i, 8).padEnd(64, '0')],
    ['a counter in the middle', (i: number) => `1234abcd${hex(i, 48)}deadbeef`],
    ['a counter at the end', (i: number) => hex(i, 64)],
    ['real sha256 digests', (i: number) => createHash('sha256').update(String(i)).digest('hex')],
  ])('spreads %s over the slots as random keys would', (_, digestHex) => {
    for (const seed of [0, 1, 0xdeadbeef]) {
      const keys = Array.from({ length: N }, (_, i) => hashDigestText(`sha256:${digestHex(i)}`, seed));
      // Random keys fill about 0.79 N distinct slots of 2 N; the longest probe is then some tens of slots.
      expect(new Set(keys.map((k) => k & (2 * N - 1))).size).toBeGreaterThan(0.75 * N);
      expect(longestProbe(keys)).toBeLessThan(100);
    }
  });
});
