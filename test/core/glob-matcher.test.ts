// The glob matcher runs in time linear in the name: patterns that made a backtracking RegExp take seconds to
// hours finish at once, and on small random globs it agrees with a RegExp translation of the same grammar.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, GlobSyntaxError, matchWithWork } from '../../lambda/core/glob.ts';
import { propertyRuns } from '../support/properties.ts';

/**
 * The glob grammar translated to a RegExp, as the matcher before this one did (a class's members escaped,
 * so that a "]" right after "[" is a member, as the grammar reads it). Exponential on some patterns, so only
 * ever run on small ones here.
 */
function referenceRegExp(pattern: string, segmented: boolean): RegExp {
  if (pattern.length === 0) throw new GlobSyntaxError('empty');
  let out = '';
  let i = 0;
  let inAlternation = false;
  const escape = (c: string) => (/[.+^$()|\\*?[\]{}]/.test(c) ? '\\' + c : c);
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        if (pattern[i + 2] === '*') throw new GlobSyntaxError('***');
        if (!segmented) {
          out += '.*';
          i += 2;
          continue;
        }
        const before = i === 0 || pattern[i - 1] === '/';
        const after = i + 2 === pattern.length || pattern[i + 2] === '/';
        if (!before || !after) throw new GlobSyntaxError('**');
        if (i + 2 === pattern.length) {
          out += '.*';
          i += 2;
        } else {
          out += '(?:[^/]+/)*';
          i += 3;
        }
        continue;
      }
      out += segmented ? '[^/]*' : '.*';
    } else if (c === '?') {
      out += segmented ? '[^/]' : '.';
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) throw new GlobSyntaxError('[');
      let body = pattern.slice(i + 1, end);
      let negate = '';
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = '^';
        body = body.slice(1);
      }
      out += '[' + negate + body.replace(/[\\\]^]/g, '\\$&') + ']';
      i = end + 1;
      continue;
    } else if (c === '{') {
      if (inAlternation || pattern.indexOf('}', i) === -1) throw new GlobSyntaxError('{');
      inAlternation = true;
      out += '(?:';
    } else if (c === '}' && inAlternation) {
      inAlternation = false;
      out += ')';
    } else if (c === ',' && inAlternation) {
      out += '|';
    } else if (c === ']' || c === '}') {
      throw new GlobSyntaxError(c);
    } else if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new GlobSyntaxError('\\');
      out += escape(next);
      i += 2;
      continue;
    } else {
      out += escape(c);
    }
    i += 1;
  }
  // An unclosed "{" (its "}" inside a class) and a backwards range make this throw a SyntaxError.
  return new RegExp('^' + out + '$');
}

/** Which of the two throws, or what each answers. */
function outcome(f: () => boolean): string {
  try {
    return String(f());
  } catch {
    return 'error';
  }
}

// Small alphabets, so that random globs and names meet often.
const globChar = fc.constantFrom(
  'a',
  'b',
  '/',
  '-',
  '.',
  '*',
  '**',
  '**/',
  '?',
  '[ab]',
  '[!a]',
  '[^/]',
  '[a-c]',
  '[]a]',
  '[b-a]',
  '[a-]',
  '{',
  '}',
  ',',
  '{a,b}',
  '{a/**/b,*}',
  '\\*',
  '\\',
  ']',
  '!',
  '^',
);
const nameChar = fc.constantFrom('a', 'b', 'c', '/', '-', '.', '*', ']', '!', '^', '\n');

describe('glob matching', () => {
  // Each took seconds to hours with the backtracking RegExp (20 s for the second at 50 characters).
  it.each([
    ['*a*a*a*a*a*a*b', 'a'.repeat(60), true],
    ['*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(128), false],
    ['**/a*a*a*a*a*a*a*a*a*b', Array.from({ length: 20 }, () => 'aaaa').join('/'), true],
    ['{*a*a*a*a*a*a*a*a*b,*a*a*a*a*a*a*a*c}', 'a'.repeat(100), true],
  ])('%s against a long name without a match: linear work', (glob, name, segmented) => {
    const { matched, work } = matchWithWork(glob, segmented, name);
    expect(matched).toBe(false);
    // Each instruction (at most 4 per pattern character) is entered at most once per position, and each
    // thread alive at a position is stepped once.
    expect(work).toBeLessThanOrEqual(2 * 4 * (glob.length + 1) * (name.length + 1));
    expect(compileGlob(glob, segmented).test(name)).toBe(false);
  });

  it.each([
    ['[]a]', ']', true],
    ['[]a]', 'a', true],
    ['[]a]', 'b', false],
    ['[!]', 'x', true],
    ['[a\\]', '\\', true],
    ['[a-c-e]', '-', true],
    ['[a-c-e]', 'd', false],
  ])('class %s on %s: %s', (glob, name, expected) => {
    expect(compileGlob(glob, false).test(name)).toBe(expected);
  });

  it.each([
    ['[z-a]', /range "z-a" is backwards/],
    ['{a[}]', /"\{" at position 1 is never closed/],
    ['{a,{b}}', /nested/],
    ['a]', /"\]" at position 2 has no opening/],
    ['***', /"\*\*\*" is not a glob/],
  ])('%s is refused with a GlobSyntaxError saying why', (glob, why) => {
    expect(() => compileGlob(glob, true)).toThrow(GlobSyntaxError);
    expect(() => compileGlob(glob, true)).toThrow(why);
  });

  it('agrees with the RegExp translation of the grammar on random small globs and names', () => {
    fc.assert(
      fc.property(
        fc.array(globChar, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')),
        fc.array(nameChar, { maxLength: 8 }).map((parts) => parts.join('')),
        fc.boolean(),
        (glob, name, segmented) => {
          const reference = outcome(() => referenceRegExp(glob, segmented).test(name));
          const actual = outcome(() => compileGlob(glob, segmented).test(name));
          expect(actual).toBe(reference);
        },
      ),
      { numRuns: propertyRuns(1000) },
    );
  });
});
