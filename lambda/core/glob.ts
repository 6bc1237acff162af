// Glob matching for repository names and tags: `*` within a path segment, `**` across segments, `?` one
// character, `[abc]` a class, `{a,b}` alternatives. Compiled to a small automaton that is run on all its states
// at once, so matching takes time linear in the name (times the pattern's size) whatever the pattern: globs
// come from the policy and from the invoke payload, and a backtracking RegExp took seconds on `*a*a*a*a*a*a*b`.

export class GlobSyntaxError extends Error {
  public override readonly name = 'GlobSyntaxError';
}

/** A compiled glob: anchored at both ends. */
export interface Glob {
  /** The pattern as written. */
  readonly source: string;
  test(value: string): boolean;
}

/** What a character test accepts; the ranges of a class are pairs of UTF-16 code units, inclusive. */
type CharTest =
  | { readonly kind: 'literal'; readonly code: number }
  | { readonly kind: 'not-slash' }
  | { readonly kind: 'not-line-break' }
  | { readonly kind: 'class'; readonly negated: boolean; readonly ranges: readonly number[] };

type Instruction =
  | { readonly op: 'char'; readonly test: CharTest }
  | { op: 'split'; x: number; y: number }
  | { op: 'jump'; x: number }
  | { readonly op: 'match' };

const SLASH = 0x2f;
const NOT_SLASH: CharTest = { kind: 'not-slash' };
// `.` in the RegExp this matcher replaced: anything but a line terminator (names never hold one; kept exact).
const NOT_LINE_BREAK: CharTest = { kind: 'not-line-break' };

function isLineBreak(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
}

function accepts(t: CharTest, c: number): boolean {
  switch (t.kind) {
    case 'literal':
      return c === t.code;
    case 'not-slash':
      return c !== SLASH;
    case 'not-line-break':
      return !isLineBreak(c);
    case 'class': {
      let inside = false;
      for (let i = 0; i < t.ranges.length; i += 2) {
        if (c >= t.ranges[i]! && c <= t.ranges[i + 1]!) {
          inside = true;
          break;
        }
      }
      return inside !== t.negated;
    }
  }
}

/** The program under construction: instructions appended in order, jumps patched once targets are known. */
class Program {
  public readonly code: Instruction[] = [];

  public char(test: CharTest): void {
    this.code.push({ op: 'char', test });
  }

  /** Zero or more characters passing `test`. */
  public star(test: CharTest): void {
    const loop = this.code.length;
    const split: Instruction = { op: 'split', x: loop + 1, y: -1 };
    this.code.push(split);
    this.char(test);
    this.code.push({ op: 'jump', x: loop });
    split.y = this.code.length;
  }

  /** Zero or more whole leading segments, what a "**" followed by "/" matches: ([^/]+/)* */
  public segments(): void {
    const loop = this.code.length;
    const enter: Instruction = { op: 'split', x: loop + 1, y: -1 };
    this.code.push(enter);
    const body = this.code.length;
    this.char(NOT_SLASH);
    const more: Instruction = { op: 'split', x: body, y: this.code.length + 1 };
    this.code.push(more);
    this.char({ kind: 'literal', code: SLASH });
    this.code.push({ op: 'jump', x: loop });
    enter.y = this.code.length;
  }
}

/** An alternation being compiled: where each alternative starts, and the jumps out of the finished ones. */
interface OpenAlternation {
  /** The split in front of the alternative being compiled; its `y` gets the next alternative. */
  lastSplit: Instruction & { op: 'split' };
  readonly exits: (Instruction & { op: 'jump' })[];
}

/** Compile a glob. `segmented`: `*` stops at `/` and `**` spans segments (repository names). */
export function compileGlob(pattern: string, segmented: boolean): Glob {
  const program = compile(pattern, segmented);
  const literal = literalOf(program);
  if (literal !== undefined) return { source: pattern, test: (value) => value === literal };
  const matcher = new Matcher(program);
  return { source: pattern, test: (value) => matcher.test(value) };
}

/**
 * Match with a freshly compiled glob (nothing remembered yet) and count the work done: characters read plus
 * instructions entered, at most one entry per instruction and character.
 */
export function matchWithWork(
  glob: string,
  segmented: boolean,
  value: string,
): { matched: boolean; work: number } {
  const matcher = new Matcher(compile(glob, segmented));
  const matched = matcher.test(value);
  return { matched, work: matcher.work };
}

function compile(pattern: string, segmented: boolean): readonly Instruction[] {
  if (pattern.length === 0) throw new GlobSyntaxError('the pattern is empty');
  const p = new Program();
  let open: OpenAlternation | undefined;
  let openedAt = 0;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        if (pattern[i + 2] === '*') throw new GlobSyntaxError(`"***" is not a glob; use "**" or "*"`);
        if (!segmented) {
          p.star(NOT_LINE_BREAK);
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
          p.star(NOT_LINE_BREAK);
          i += 2;
        } else {
          // "**/" matches zero or more leading segments.
          p.segments();
          i += 3;
        }
        continue;
      }
      p.star(segmented ? NOT_SLASH : NOT_LINE_BREAK);
    } else if (c === '?') {
      p.char(segmented ? NOT_SLASH : NOT_LINE_BREAK);
    } else if (c === '[') {
      // The first "]" after the opening one closes the class, so "[]a]" holds "]" and "a".
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) throw new GlobSyntaxError(`"[" at position ${i + 1} is never closed with "]"`);
      p.char(charClass(pattern.slice(i + 1, end), i));
      i = end + 1;
      continue;
    } else if (c === '{') {
      if (open) throw new GlobSyntaxError('nested "{" alternatives are not supported');
      if (pattern.indexOf('}', i) === -1) {
        throw new GlobSyntaxError(`"{" at position ${i + 1} is never closed with "}"`);
      }
      const split = { op: 'split' as const, x: p.code.length + 1, y: -1 };
      p.code.push(split);
      open = { lastSplit: split, exits: [] };
      openedAt = i;
    } else if (c === '}' && open) {
      // The last alternative is entered unconditionally; the earlier ones jump here when done.
      open.lastSplit.y = open.lastSplit.x;
      for (const exit of open.exits) exit.x = p.code.length;
      open = undefined;
    } else if (c === ',' && open) {
      const exit = { op: 'jump' as const, x: -1 };
      p.code.push(exit);
      open.exits.push(exit);
      const split = { op: 'split' as const, x: p.code.length + 1, y: -1 };
      open.lastSplit.y = p.code.length;
      p.code.push(split);
      open.lastSplit = split;
    } else if (c === ']' || c === '}') {
      throw new GlobSyntaxError(`"${c}" at position ${i + 1} has no opening "${c === ']' ? '[' : '{'}"`);
    } else if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new GlobSyntaxError('the pattern ends with a lone "\\"');
      p.char({ kind: 'literal', code: next.charCodeAt(0) });
      i += 2;
      continue;
    } else {
      p.char({ kind: 'literal', code: c.charCodeAt(0) });
    }
    i += 1;
  }
  if (open) {
    // Its "}" was inside a class, as in "{a[}]".
    throw new GlobSyntaxError(`"{" at position ${openedAt + 1} is never closed with "}"`);
  }
  p.code.push({ op: 'match' });
  return p.code;
}

/**
 * A class body (between the brackets): "!" or "^" first negates, "a-z" is a range, everything else (a
 * backslash too) stands for itself.
 */
function charClass(body: string, at: number): CharTest {
  const negated = body.startsWith('!') || body.startsWith('^');
  const members = negated ? body.slice(1) : body;
  const ranges: number[] = [];
  for (let j = 0; j < members.length;) {
    const from = members.charCodeAt(j);
    if (members[j + 1] === '-' && j + 2 < members.length) {
      const to = members.charCodeAt(j + 2);
      if (to < from) {
        throw new GlobSyntaxError(
          `"[" at position ${at + 1}: the range "${members.slice(j, j + 3)}" is backwards; write it low to high`,
        );
      }
      ranges.push(from, to);
      j += 3;
    } else {
      ranges.push(from, from);
      j += 1;
    }
  }
  return { kind: 'class', negated, ranges };
}

/** The string a glob without wildcards stands for (matched by equality), or undefined. */
function literalOf(program: readonly Instruction[]): string | undefined {
  let out = '';
  for (const ins of program) {
    if (ins.op === 'match') return out;
    if (ins.op !== 'char' || ins.test.kind !== 'literal') return undefined;
    out += String.fromCharCode(ins.test.code);
  }
  return undefined;
}

/** A set of threads (the char and match instructions they wait at), with the sets it leads to by character. */
interface ThreadSet {
  readonly pcs: Int32Array;
  readonly accepting: boolean;
  /** Transitions worked out so far, by UTF-16 code unit: ASCII in an array (names are ASCII), the rest by map. */
  readonly ascii: (ThreadSet | undefined)[];
  readonly other: Map<number, ThreadSet>;
}

/** Thread sets remembered per glob; past this, transitions are worked out each time (still linear). */
const MAX_REMEMBERED_SETS = 256;

/**
 * Runs every thread of the automaton in step over the value (a Pike VM without captures), remembering each
 * set of threads and where it goes on each character, so a glob tested against many names is as fast as a
 * table lookup per character. Working out a transition enters each instruction at most once, so the work is
 * bounded by (value length + 1) × program length whatever is remembered.
 */
class Matcher {
  private readonly sets = new Map<string, ThreadSet>();
  /** Per instruction, the stamp of the transition that last added it (a second visit is a duplicate). */
  private readonly addedAt: Int32Array;
  private stamp = 0;
  private readonly start: ThreadSet;
  /** Instructions entered, for matchWithWork. */
  public work = 0;

  public constructor(private readonly program: readonly Instruction[]) {
    this.addedAt = new Int32Array(program.length);
    this.start = this.intern(this.follow([0]));
  }

  public test(value: string): boolean {
    let set = this.start;
    for (let position = 0; position < value.length; position++) {
      if (set.pcs.length === 0) return false;
      const c = value.charCodeAt(position);
      this.work++;
      set = (c < 128 ? set.ascii[c] : set.other.get(c)) ?? this.transition(set, c);
    }
    return set.accepting;
  }

  private transition(from: ThreadSet, c: number): ThreadSet {
    const moved: number[] = [];
    for (const pc of from.pcs) {
      this.work++;
      const ins = this.program[pc]!;
      if (ins.op === 'char' && accepts(ins.test, c)) moved.push(pc + 1);
    }
    const pcs = this.follow(moved);
    const key = pcs.join(',');
    const known = this.sets.get(key);
    const to = known ?? (this.sets.size >= MAX_REMEMBERED_SETS ? undefined : this.intern(pcs));
    if (!to) return this.make(pcs);
    if (c < 128) from.ascii[c] = to;
    else from.other.set(c, to);
    return to;
  }

  /** The char and match instructions reached from `starts` through jumps and splits, in program order. */
  private follow(starts: readonly number[]): Int32Array {
    if (++this.stamp === 0x7fffffff) {
      this.addedAt.fill(0);
      this.stamp = 1;
    }
    const stamp = this.stamp;
    const out: number[] = [];
    const stack = [...starts].reverse();
    while (stack.length > 0) {
      const pc = stack.pop()!;
      if (this.addedAt[pc] === stamp) continue;
      this.addedAt[pc] = stamp;
      this.work++;
      const ins = this.program[pc]!;
      if (ins.op === 'jump') stack.push(ins.x);
      else if (ins.op === 'split') stack.push(ins.y, ins.x);
      else out.push(pc);
    }
    return Int32Array.from(out.sort((a, b) => a - b));
  }

  private make(pcs: Int32Array): ThreadSet {
    const accepting = pcs.some((pc) => this.program[pc]!.op === 'match');
    return { pcs, accepting, ascii: new Array<ThreadSet | undefined>(128).fill(undefined), other: new Map() };
  }

  private intern(pcs: Int32Array): ThreadSet {
    const set = this.make(pcs);
    this.sets.set(pcs.join(','), set);
    return set;
  }
}

/** True when any of the compiled globs matches. */
export function matchesAny(globs: readonly Glob[], value: string): boolean {
  return globs.some((g) => g.test(value));
}
