// The retention policy: parsed from YAML or JSON, validated with zod, and compiled into matchers. Every error
// names the path in the file and how to fix it.
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { compileGlob, GlobSyntaxError, type Glob } from './glob.ts';
import { PolicyError } from './errors.ts';
import { closest } from './suggest.ts';

const wholeNumber = (what: string) =>
  z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .min(0, { error: `expected ${what}` });

const patternList = (what: string) =>
  z
    .array(z.string({ error: `expected a list of ${what}, e.g. ["latest"]` }), {
      error: `expected a list of ${what}, e.g. ["latest"]`,
    })
    .min(1, { error: `expected at least one ${what}; remove the field to use none` });

const keepSchema = z.strictObject(
  {
    newest: wholeNumber('a whole number >= 0').optional(),
    youngerThanDays: z
      .number({ error: 'expected a number of days >= 0, e.g. 7' })
      .min(0, { error: 'expected a number of days >= 0, e.g. 7' })
      .optional(),
    tags: patternList('tag globs').optional(),
    tagsRegex: patternList('regular expressions').optional(),
  },
  { error: 'expected a mapping with newest, youngerThanDays, tags and/or tagsRegex' },
);

const untaggedSchema = z.strictObject(
  {
    deleteAfterDays: z
      .number({ error: 'expected a whole number of days >= 1, e.g. 14' })
      .int({ error: 'expected a whole number of days >= 1, e.g. 14' })
      .min(1, { error: 'expected a whole number of days >= 1, e.g. 14' }),
  },
  { error: 'expected a mapping with deleteAfterDays, e.g. { deleteAfterDays: 14 }' },
);

const ruleSchema = z.strictObject(
  {
    repositories: z
      .array(z.string({ error: 'expected a list of repository globs, e.g. ["team1/**"]' }), {
        error: 'expected a list of repository globs, e.g. ["team1/**"]',
      })
      .min(1, { error: 'expected at least one repository glob, e.g. ["team1/**"]' }),
    protect: z.boolean({ error: 'expected true or false' }).optional(),
    keep: keepSchema.optional(),
    untagged: untaggedSchema.optional(),
  },
  { error: 'expected a mapping with repositories and protect or keep' },
);

const policySchema = z.strictObject(
  {
    rules: z
      .array(ruleSchema, { error: 'expected a list of rules' })
      .min(1, { error: 'expected at least one rule' }),
  },
  { error: 'expected a mapping with a "rules" list' },
);

export type PolicyDocument = z.infer<typeof policySchema>;
export type KeepCriteria = z.infer<typeof keepSchema>;
export type UntaggedCriteria = z.infer<typeof untaggedSchema>;

/** A validated policy: the document as written (serialisable) plus compiled matchers. */
export interface Policy {
  readonly document: PolicyDocument;
  readonly rules: readonly CompiledRule[];
}

export interface CompiledRule {
  readonly index: number;
  readonly repositories: readonly Glob[];
  readonly protect: boolean;
  readonly keep: {
    readonly newest?: number;
    readonly youngerThanDays?: number;
    readonly tags: readonly { readonly source: string; readonly re: Glob }[];
    readonly tagsRegex: readonly { readonly source: string; readonly re: RegExp }[];
  };
  /**
   * Untagged manifests (history) whose revision was pushed more than this many days ago are deletion
   * candidates. Absent: the repository's untagged manifests are left alone.
   */
  readonly untagged?: UntaggedCriteria;
}

const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': ['rules'],
  rule: ['repositories', 'protect', 'keep', 'untagged'],
  keep: ['newest', 'youngerThanDays', 'tags', 'tagsRegex'],
  untagged: ['deleteAfterDays'],
};

/** Parse and validate policy text (YAML or JSON). `source` names the file in messages. */
export function parsePolicy(text: string, source = 'policy'): Policy {
  let raw: unknown;
  try {
    raw = parseYaml(text, { uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    throw new PolicyError(yamlError(err, text, source), { cause: err });
  }
  if (raw === null || raw === undefined) {
    throw new PolicyError(
      `${source}: the file is empty; it needs a "rules" list (see the README's policy section)`,
    );
  }
  return validatePolicy(raw, source);
}

/** A YAML syntax error as `file:line:col: what`, then the offending line with a caret under the column. */
function yamlError(err: YAMLParseError, text: string, source: string): string {
  // The library's message ends with " at line L, column C:" and its own excerpt; ours replaces both.
  const what = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
  const pos = err.linePos?.[0];
  if (!pos) return `${source}: not valid YAML or JSON: ${what}`;
  const line = text.split(/\r?\n/)[pos.line - 1] ?? '';
  const gutter = `${pos.line} | `;
  return (
    `${source}:${pos.line}:${pos.col}: not valid YAML or JSON: ${what}\n` +
    `  ${gutter}${line}\n` +
    `  ${' '.repeat(gutter.length - 2)}| ${' '.repeat(Math.max(0, pos.col - 1))}^`
  );
}

/** Validate an already-parsed policy object (e.g. from the CDK construct's props or a Lambda env var). */
export function validatePolicy(raw: unknown, source = 'policy'): Policy {
  const result = policySchema.safeParse(raw);
  if (!result.success) {
    const { issues } = result.error;
    // A misspelt required field is said once, as the unknown field with its fix, not also as a missing one.
    const guessed = new Set(
      issues.flatMap((i) =>
        i.code === 'unrecognized_keys'
          ? i.keys.flatMap((k) => {
              const guess = closest(k, knownFields(formatPath(i.path)));
              return guess ? [formatPath([...i.path, guess])] : [];
            })
          : [],
      ),
    );
    const lines = issues
      .filter((i) => !(i.code === 'invalid_type' && guessed.has(formatPath(i.path))))
      .map((issue) => `${source}: ${describeIssue(issue, raw)}`);
    throw new PolicyError(lines.join('\n'));
  }
  const document = result.data;
  const problems: string[] = [];
  const rules = document.rules.map((rule, index) => compileRule(rule, index, problems));
  if (problems.length > 0) throw new PolicyError(problems.map((p) => `${source}: ${p}`).join('\n'));
  return { document, rules };
}

function compileRule(rule: PolicyDocument['rules'][number], index: number, problems: string[]): CompiledRule {
  const at = `rules[${index}]`;
  const hasKeep = rule.keep !== undefined;
  if (rule.protect === true && hasKeep) {
    problems.push(
      `${at}: has both "protect: true" and "keep"; a protected rule keeps everything, so remove "keep"`,
    );
  }
  if (rule.protect === true && rule.untagged !== undefined) {
    problems.push(
      `${at}: has both "protect: true" and "untagged"; a protected rule keeps every untagged manifest too, so remove "untagged"`,
    );
  }
  if (rule.protect !== true && !hasKeep) {
    problems.push(
      `${at}: needs "protect: true" (keep everything) or a "keep" mapping (what to keep); ` +
        `a rule with neither would delete every tag`,
    );
  }
  const keep = rule.keep ?? {};
  if (hasKeep && Object.values(keep).every((v) => v === undefined)) {
    problems.push(
      `${at}.keep: names no criterion; set at least one of newest, youngerThanDays, tags, tagsRegex ` +
        `(to delete everything with a known age, use "newest: 0")`,
    );
  }
  const repositories = rule.repositories.flatMap((glob, i) => {
    if (glob !== glob.toLowerCase()) {
      problems.push(`${at}.repositories[${i}]: "${glob}" has capitals, but repository names are lowercase`);
      return [];
    }
    if (glob.startsWith('/') || glob.endsWith('/')) {
      problems.push(`${at}.repositories[${i}]: "${glob}" must not start or end with "/" (e.g. "team1/**")`);
      return [];
    }
    return compile(glob, true, `${at}.repositories[${i}]`, problems);
  });
  const tags = (keep.tags ?? []).flatMap((glob, i) =>
    compile(glob, false, `${at}.keep.tags[${i}]`, problems).map((re) => ({ source: glob, re })),
  );
  const tagsRegex = (keep.tagsRegex ?? []).flatMap((source, i) => {
    try {
      return [{ source, re: new RegExp(source) }];
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      problems.push(`${at}.keep.tagsRegex[${i}]: "${source}" is not a valid regular expression (${why})`);
      return [];
    }
  });
  return {
    index,
    repositories,
    protect: rule.protect === true,
    keep: { newest: keep.newest, youngerThanDays: keep.youngerThanDays, tags, tagsRegex },
    ...(rule.untagged ? { untagged: rule.untagged } : {}),
  };
}

function compile(glob: string, segmented: boolean, at: string, problems: string[]): Glob[] {
  try {
    return [compileGlob(glob, segmented)];
  } catch (err) {
    if (!(err instanceof GlobSyntaxError)) throw err;
    problems.push(`${at}: "${glob}" is not a valid glob: ${err.message}`);
    return [];
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function knownFields(path: string): readonly string[] {
  const kind =
    path === '' ? '' : path.endsWith('.keep') ? 'keep' : path.endsWith('.untagged') ? 'untagged' : 'rule';
  return KNOWN_FIELDS[kind] ?? [];
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const part of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const path = formatPath(issue.path);
  const where = path === '' ? '(top level)' : path;
  if (issue.code === 'invalid_type' && (issue.expected === 'number' || issue.expected === 'boolean')) {
    const value = valueAt(raw, issue.path);
    if (typeof value === 'string') {
      // YAML reads `newest: "5"` as text: the number is right, the quotes are not.
      const field = String(issue.path[issue.path.length - 1]);
      return (
        `${where}: ${issue.message}, but ${JSON.stringify(value)} is a quoted string; ` +
        `write ${field}: ${value} without quotes`
      );
    }
  }
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(path);
    return issue.keys
      .map((key) => {
        const guess = closest(key, known);
        const hint = guess ? `did you mean "${guess}"? ` : '';
        return `${where}: unknown field "${key}"; ${hint}known fields are ${known.join(', ')}`;
      })
      .join('\n');
  }
  return `${where}: ${issue.message}`;
}

/** The first rule whose repository globs match, or undefined (the repository is left untouched). */
export function ruleFor(policy: Policy, repository: string): CompiledRule | undefined {
  return policy.rules.find((rule) => rule.repositories.some((re) => re.test(repository)));
}
