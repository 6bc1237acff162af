// The planner's digest set answers as a plain Set<string> would, also when digests share a key (the full digest
// decides), for strings that are not sha256 digests, across growth, and whatever its hash seed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashDigestText } from '../../lambda/core/digest-hash.ts';
import { DigestSet } from '../../lambda/core/digest-set.ts';
import { propertyRuns } from '../support/properties.ts';

const HEX = '0123456789abcdef';
const SEED = 7;
const key = (d: string): number => hashDigestText(d, SEED);
/** Variant `n` of one digest, its hex letters' case chosen by n's bits: all the same key, all different strings. */
const caseVariant = (n: number): string =>
  'sha256:' +
  [...'abcdefab'.repeat(8)].map((c, i) => (i < 30 && (n >> i) & 1 ? c.toUpperCase() : c)).join('');
/** A digest that differs from its neighbours only in the middle. */
const withMiddle = (middle: number): string =>
  `sha256:${'1234abcd'}${middle.toString(16).padStart(48, '0')}${'deadbeef'}`;

describe('DigestSet', () => {
  it('adds once, then knows the digest', () => {
    const s = new DigestSet();
    const d = `sha256:${'ab'.repeat(32)}`;
    expect(s.has(d)).toBe(false);
    expect(s.add(d)).toBe(true);
    expect(s.add(d)).toBe(false);
    // Another string with the same text is the same digest.
    expect(s.has(('x' + d).slice(1))).toBe(true);
    expect(s.size).toBe(1);
  });

  it('keeps digests that share a key apart (the full digest decides)', () => {
    const a = caseVariant(1);
    const b = caseVariant(2);
    expect(key(a)).toBe(key(b));
    const s = new DigestSet(0, SEED);
    expect(s.add(a)).toBe(true);
    expect(s.has(b)).toBe(false);
    expect(s.add(b)).toBe(true);
    expect(s.add(a)).toBe(false);
    expect(s.size).toBe(2);
  });

  it('stays right when many digests collide, across growth', () => {
    const s = new DigestSet(0, SEED);
    const colliding = Array.from({ length: 200 }, (_, i) => caseVariant(i));
    expect(new Set(colliding.map(key)).size).toBe(1);
    for (const d of colliding) expect(s.add(d)).toBe(true);
    for (const d of colliding) expect(s.has(d)).toBe(true);
    expect(s.has(caseVariant(200))).toBe(false);
    expect(s.size).toBe(200);
  });

  it.each([
    ['another algorithm', `blake2b:${'a'.repeat(64)}`],
    ['a short digest', `sha256:${'a'.repeat(63)}`],
    ['no prefix', 'a'.repeat(64)],
    ['not hex', `sha256:${'g'.repeat(64)}`],
    ['not hex in one place', `sha256:${'a'.repeat(30)}g${'a'.repeat(33)}`],
    ['the empty string', ''],
  ])('holds a string of another shape (%s) as a Set does', (_, odd) => {
    expect(key(odd)).toBe(-1);
    const s = new DigestSet();
    expect(s.add(odd)).toBe(true);
    expect(s.add(odd)).toBe(false);
    expect(s.has(odd)).toBe(true);
    expect(s.has(`sha256:${'a'.repeat(64)}`)).toBe(false);
    expect(s.size).toBe(1);
  });

  it('tells upper from lower case apart, though they share a key', () => {
    const lower = `sha256:${'ab'.repeat(32)}`;
    const upper = `sha256:${'AB'.repeat(32)}`;
    expect(key(lower)).toBe(key(upper));
    const s = new DigestSet(1);
    s.add(lower);
    expect(s.has(upper)).toBe(false);
  });

  it('answers as a plain Set does, for any sequence of adds and lookups', () => {
    const hex = (n: number) => fc.string({ unit: fc.constantFrom(...HEX), minLength: n, maxLength: n });
    const digest = fc.oneof(
      hex(64).map((h) => `sha256:${h}`),
      fc.nat(50).map(withMiddle),
      fc.nat(1000).map(caseVariant),
      hex(8).map((h) => `sha256:${h}${'0'.repeat(56)}`),
      fc.string({ maxLength: 80 }),
    );
    const op = fc.tuple(fc.constantFrom('add', 'has'), digest);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.nat(64), fc.nat(), (ops, expected, seed) => {
        const ours = new DigestSet(expected, seed);
        const theirs = new Set<string>();
        for (const [what, d] of ops) {
          if (what === 'add') {
            const before = theirs.size;
            theirs.add(d);
            expect(ours.add(d)).toBe(theirs.size !== before);
          } else expect(ours.has(d)).toBe(theirs.has(d));
          expect(ours.size).toBe(theirs.size);
        }
        for (const d of theirs) expect(ours.has(d)).toBe(true);
      }),
      { numRuns: propertyRuns(200) },
    );
  });
});
