// The planner's digest set answers as a plain Set<string> would, also when digests share a short key (the full
// digest decides), for strings that are not sha256 digests, and across growth.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DigestSet, shortKey } from '../../lambda/core/digest-set.ts';
import { propertyRuns } from '../support/properties.ts';

const HEX = '0123456789abcdef';
/** A digest whose key positions (the first and last 8 hex characters) are fixed, and whose middle is `middle`. */
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

  it('keeps digests that share the short key apart (the full digest decides)', () => {
    const a = withMiddle(1);
    const b = withMiddle(2);
    expect(shortKey(a)).toBe(shortKey(b));
    const s = new DigestSet();
    expect(s.add(a)).toBe(true);
    expect(s.has(b)).toBe(false);
    expect(s.add(b)).toBe(true);
    expect(s.add(a)).toBe(false);
    expect(s.size).toBe(2);
  });

  it('stays right when many digests collide, across growth', () => {
    const s = new DigestSet();
    const colliding = Array.from({ length: 200 }, (_, i) => withMiddle(i));
    for (const d of colliding) expect(s.add(d)).toBe(true);
    for (const d of colliding) expect(s.has(d)).toBe(true);
    expect(s.has(withMiddle(200))).toBe(false);
    expect(s.size).toBe(200);
  });

  it('spreads digests that differ only at one end (zero-padded counters)', () => {
    const keys = new Set(
      Array.from({ length: 1000 }, (_, i) => shortKey(`sha256:${i.toString(16).padStart(64, '0')}`)),
    );
    expect(keys.size).toBe(1000);
  });

  it.each([
    ['another algorithm', `blake2b:${'a'.repeat(64)}`],
    ['a short digest', `sha256:${'a'.repeat(63)}`],
    ['no prefix', 'a'.repeat(64)],
    ['not hex where the key is taken', `sha256:${'g'.repeat(64)}`],
    ['the empty string', ''],
  ])('holds a string of another shape (%s) as a Set does', (_, odd) => {
    expect(shortKey(odd)).toBe(-1);
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
    expect(shortKey(lower)).toBe(shortKey(upper));
    const s = new DigestSet(1);
    s.add(lower);
    expect(s.has(upper)).toBe(false);
  });

  it('answers as a plain Set does, for any sequence of adds and lookups', () => {
    const hex = (n: number) => fc.string({ unit: fc.constantFrom(...HEX), minLength: n, maxLength: n });
    const digest = fc.oneof(
      hex(64).map((h) => `sha256:${h}`),
      fc.nat(50).map(withMiddle),
      hex(8).map((h) => `sha256:${h}${'0'.repeat(56)}`),
      fc.string({ maxLength: 80 }),
    );
    const op = fc.tuple(fc.constantFrom('add', 'has'), digest);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.nat(64), (ops, expected) => {
        const ours = new DigestSet(expected);
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
