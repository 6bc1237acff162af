// Glob matching for repository names and tags: `*` within a path segment, `**` across segments, `?` one
// character, `[abc]` a class, `{a,b}` alternatives. Compiled to an anchored RegExp; bad patterns throw.

export class GlobSyntaxError extends Error {
  public override readonly name = 'GlobSyntaxError';
}

const REGEX_SPECIAL = /[.+^$()|\\]/;

/** Compile a glob. `segmented`: `*` stops at `/` and `**` spans segments (repository names). */
export function compileGlob(pattern: string, segmented: boolean): RegExp {
  if (pattern.length === 0) throw new GlobSyntaxError('the pattern is empty');
  let out = '';
  let i = 0;
  let inAlternation = false;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        if (pattern[i + 2] === '*') throw new GlobSyntaxError(`"***" is not a glob; use "**" or "*"`);
        if (!segmented) {
          out += '.*';
          i += 2;
          continue;
        }
        const before = i === 0 || pattern[i - 1] === '/';
        const after = i + 2 === pattern.length || pattern[i + 2] === '/';
        if (!before || !after) {
          throw new GlobSyntaxError(`"**" must be a whole path segment (as in "team/**" or "**/cache")`);
        }
        if (i + 2 === pattern.length) {
          // "a/**" matches "a/x" and "a/x/y"; a trailing "**" alone matches everything.
          out += '.*';
          i += 2;
        } else {
          // "**/" matches zero or more leading segments.
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
      if (end === -1) throw new GlobSyntaxError(`"[" at position ${i + 1} is never closed with "]"`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end + 1;
      continue;
    } else if (c === '{') {
      if (inAlternation) throw new GlobSyntaxError('nested "{" alternatives are not supported');
      if (pattern.indexOf('}', i) === -1) {
        throw new GlobSyntaxError(`"{" at position ${i + 1} is never closed with "}"`);
      }
      inAlternation = true;
      out += '(?:';
    } else if (c === '}' && inAlternation) {
      inAlternation = false;
      out += ')';
    } else if (c === ',' && inAlternation) {
      out += '|';
    } else if (c === ']' || c === '}') {
      throw new GlobSyntaxError(`"${c}" at position ${i + 1} has no opening "${c === ']' ? '[' : '{'}"`);
    } else if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new GlobSyntaxError('the pattern ends with a lone "\\"');
      out += escapeChar(next);
      i += 2;
      continue;
    } else {
      out += escapeChar(c);
    }
    i += 1;
  }
  return new RegExp('^' + out + '$');
}

function escapeChar(c: string): string {
  return REGEX_SPECIAL.test(c) || c === '*' || c === '?' || c === '[' || c === ']' || c === '{' || c === '}'
    ? '\\' + c
    : c;
}

/** True when any of the compiled globs matches. */
export function matchesAny(globs: readonly RegExp[], value: string): boolean {
  return globs.some((g) => g.test(value));
}
