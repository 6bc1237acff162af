// The executor's waves: a deletion starts only after every deletion it depends on, wherever the plan lists it
// (a referrer listed before its subject, a signature of a signature), so an interruption never leaves a
// referrer whose subject is still there gone first.
import { describe, expect, it } from 'vitest';
import { levels } from '../../lambda/core/executor.ts';
import type { ManifestDeletion } from '../../lambda/core/model.ts';

const del = (digest: string, after: string[] = []): ManifestDeletion => ({
  digest,
  role: 'root',
  kind: 'image',
  tags: [],
  after,
});
const waves = (list: ManifestDeletion[]) => levels(list).map((w) => w.map((m) => m.digest));

describe('deletion waves', () => {
  it('puts a dependency first even when the plan lists it later', () => {
    expect(waves([del('sigOfSig', ['sig']), del('sig', ['image']), del('image'), del('other')])).toEqual([
      ['image', 'other'],
      ['sig'],
      ['sigOfSig'],
    ]);
  });

  it('waits for every dependency (an index child shared by two deleted indexes)', () => {
    expect(waves([del('a'), del('child', ['a', 'b']), del('b')])).toEqual([['a', 'b'], ['child']]);
  });

  it('ignores dependencies outside the plan and on itself', () => {
    expect(waves([del('x', ['kept-elsewhere', 'x']), del('y', ['x', 'x'])])).toEqual([['x'], ['y']]);
  });

  it('sends a cycle (impossible with content digests) last, in plan order, instead of never', () => {
    expect(waves([del('p', ['q']), del('q', ['p']), del('free')])).toEqual([['free'], ['p', 'q']]);
  });
});
