// The plan written a repository at a time reads back as the very text JSON.stringify writes (compact for the
// workflow's run folder, indented for the report's plan), for any JSON object.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonPieces } from '../../lambda/core/json-pieces.ts';
import { propertyRuns } from '../support/properties.ts';

const joined = (value: Record<string, unknown>, key: string, indent?: number): string =>
  [...jsonPieces(value, [key], indent)].join('');

describe('jsonPieces', () => {
  it('joins to exactly what JSON.stringify writes, compact and indented, for any JSON object', () => {
    const objects = fc.record(
      {
        a: fc.jsonValue(),
        repositories: fc.oneof(fc.array(fc.jsonValue()), fc.jsonValue()),
        z: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        objects,
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.constantFrom(0, 1, 2, 4),
        (o, extra, indent) => {
          const value = { ...extra, ...o };
          expect(joined(value, 'repositories', indent)).toBe(JSON.stringify(value, null, indent));
        },
      ),
      { numRuns: propertyRuns(500) },
    );
  });

  it('leaves out what JSON.stringify leaves out, and writes null for it inside the array', () => {
    const value = {
      a: undefined,
      f: () => 1,
      repositories: [1, undefined, { b: undefined }],
      d: new Date(0),
    };
    expect(joined(value, 'repositories')).toBe(JSON.stringify(value));
    expect(joined(value, 'repositories', 2)).toBe(JSON.stringify(value, null, 2));
    expect(joined({}, 'repositories', 2)).toBe('{}');
  });

  it('gives each element of each large array a piece of its own', () => {
    const pieces = [
      ...jsonPieces({ registry: 'r', repositories: [{ n: 1 }, { n: 2 }, { n: 3 }], done: true }, [
        'repositories',
      ]),
    ];
    expect(pieces).toEqual([
      '{',
      '"registry":"r"',
      ',"repositories":[',
      '{"n":1}',
      ',{"n":2}',
      ',{"n":3}',
      ']',
      ',"done":true',
      '}',
    ]);
  });

  it('splits every array it is told of', () => {
    const value = { a: [1, 2], b: 'x', c: [[3], { d: 4 }] };
    expect([...jsonPieces(value, ['a', 'c'], 2)].join('')).toBe(JSON.stringify(value, null, 2));
    expect([...jsonPieces(value, ['a', 'c'])]).toEqual([
      '{',
      '"a":[',
      '1',
      ',2',
      ']',
      ',"b":"x"',
      ',"c":[',
      '[3]',
      ',{"d":4}',
      ']',
      '}',
    ]);
  });
});
