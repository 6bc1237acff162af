import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../lambda/core/glob.ts';
import { parsePolicy, ruleFor } from '../../lambda/core/policy.ts';

const ISSUE_EXAMPLE = String.raw`rules:
  - repositories: ["legacy/**"]
    protect: true               # never delete anything in these repositories
  - repositories: ["team1/**", "team2/**"]
    keep:
      newest: 5                 # the 5 most recently created images
      youngerThanDays: 7        # anything created in the last 7 days
      tags: ["latest", "stable", "release-*"]   # globs
      tagsRegex: ["^v\\d+\\.\\d+\\.\\d+$"]
`;

describe('parsePolicy', () => {
  it('accepts the documented example as is', () => {
    const p = parsePolicy(ISSUE_EXAMPLE, 'policy.yaml');
    expect(p.rules).toHaveLength(2);
    expect(p.rules[0]!.protect).toBe(true);
    expect(p.rules[1]!.keep.newest).toBe(5);
    expect(p.rules[1]!.keep.tagsRegex[0]!.re.test('v1.22.3')).toBe(true);
    expect(p.rules[1]!.keep.tagsRegex[0]!.re.test('v1.22')).toBe(false);
  });

  it('accepts an untagged block and compiles it onto the rule', () => {
    const p = parsePolicy(
      'rules:\n  - repositories: ["ci/**"]\n    keep: { newest: 2 }\n    untagged: { deleteAfterDays: 14 }\n' +
        '  - repositories: ["**"]\n    keep: { newest: 2 }\n',
    );
    expect(p.rules[0]!.untagged).toEqual({ deleteAfterDays: 14 });
    expect(p.rules[1]!.untagged).toBeUndefined();
    expect(p.document.rules[0]).toEqual({
      repositories: ['ci/**'],
      keep: { newest: 2 },
      untagged: { deleteAfterDays: 14 },
    });
  });

  it('accepts the same policy as JSON', () => {
    const json = JSON.stringify({ rules: [{ repositories: ['**'], keep: { newest: 3, tags: ['latest'] } }] });
    expect(parsePolicy(json, 'p.json').document).toEqual({
      rules: [{ repositories: ['**'], keep: { newest: 3, tags: ['latest'] } }],
    });
  });

  it.each([
    [
      'a negative count',
      'keep: { newest: -1 }',
      'p.yaml: rules[0].keep.newest: expected a whole number >= 0',
    ],
    ['a fractional count', 'keep: { newest: 2.5 }', 'rules[0].keep.newest: expected a whole number >= 0'],
    [
      'a string for days',
      'keep: { youngerThanDays: "7" }',
      'rules[0].keep.youngerThanDays: expected a number of days >= 0',
    ],
    [
      'an unknown field, with a suggestion',
      'keep: { newst: 5 }',
      'rules[0].keep: unknown field "newst"; did you mean "newest"?',
    ],
    ['an unknown rule field', 'protect: true\n    exclude: [x]', 'rules[0]: unknown field "exclude"'],
    ['a bad glob', 'keep: { tags: ["rel-[0-9"] }', 'rules[0].keep.tags[0]: "rel-[0-9" is not a valid glob'],
    [
      'a bad regex',
      'keep: { tagsRegex: ["(v"] }',
      'rules[0].keep.tagsRegex[0]: "(v" is not a valid regular expression',
    ],
    ['neither protect nor keep', '', 'rules[0]: needs "protect: true" (keep everything) or a "keep" mapping'],
    ['protect and keep', 'protect: true\n    keep: { newest: 1 }', 'has both "protect: true" and "keep"'],
    ['an empty keep', 'keep: {}', 'rules[0].keep: names no criterion'],
    ['an empty tag list', 'keep: { tags: [] }', 'rules[0].keep.tags: expected at least one tag globs'],
    [
      'untagged days of 0',
      'keep: { newest: 1 }\n    untagged: { deleteAfterDays: 0 }',
      'rules[0].untagged.deleteAfterDays: expected a whole number of days >= 1, e.g. 14',
    ],
    [
      'fractional untagged days',
      'keep: { newest: 1 }\n    untagged: { deleteAfterDays: 1.5 }',
      'rules[0].untagged.deleteAfterDays: expected a whole number of days >= 1',
    ],
    [
      'quoted untagged days',
      'keep: { newest: 1 }\n    untagged: { deleteAfterDays: "14" }',
      'rules[0].untagged.deleteAfterDays: expected a whole number of days >= 1',
    ],
    [
      'a misspelt untagged field, with a suggestion',
      'keep: { newest: 1 }\n    untagged: { deleteAfterDay: 14 }',
      'rules[0].untagged: unknown field "deleteAfterDay"; did you mean "deleteAfterDays"?',
    ],
    [
      'untagged as a number',
      'keep: { newest: 1 }\n    untagged: 14',
      'rules[0].untagged: expected a mapping with deleteAfterDays',
    ],
    [
      'protect and untagged',
      'protect: true\n    untagged: { deleteAfterDays: 14 }',
      'has both "protect: true" and "untagged"',
    ],
  ])('rejects %s with a message naming the path', (_n, body, message) => {
    const text = `rules:\n  - repositories: ["team/**"]\n    ${body}\n`;
    expect(() => parsePolicy(text, 'p.yaml')).toThrow(message);
  });

  it.each([
    ['an empty file', '', 'p.yaml: the file is empty'],
    ['broken YAML', 'rules: [', /^p\.yaml:\d+:\d+: not valid YAML or JSON/],
    [
      'duplicate keys',
      'rules: []\nrules: []',
      /^p\.yaml:2:1: not valid YAML or JSON: Map keys must be unique/,
    ],
    ['no rules', 'rules: []', 'p.yaml: rules: expected at least one rule'],
    ['a list at the top', '- a', 'expected a mapping with a "rules" list'],
    [
      'capitals in a repository glob',
      'rules:\n  - repositories: ["Team/**"]\n    protect: true',
      'repository names are lowercase',
    ],
    [
      'a "**" inside a segment',
      'rules:\n  - repositories: ["team**"]\n    protect: true',
      '"**" must be a whole path segment',
    ],
  ])('rejects %s', (_n, text, message) => {
    expect(() => parsePolicy(text, 'p.yaml')).toThrow(message);
  });
});

describe('globs', () => {
  it.each([
    ['team1/**', 'team1/app', true],
    ['team1/**', 'team1/a/b/c', true],
    ['team1/**', 'team1', false],
    ['team1/**', 'team10/app', false],
    ['team1/*', 'team1/app', true],
    ['team1/*', 'team1/a/b', false],
    ['**/cache', 'cache', true],
    ['**/cache', 'a/b/cache', true],
    ['**', 'anything/at/all', true],
    ['team{1,2}/*', 'team2/x', true],
    ['app-?', 'app-1', true],
    ['app-?', 'app-12', false],
    ['app-[0-9]', 'app-7', true],
    ['app-[!0-9]', 'app-7', false],
    ['a.b', 'aXb', false],
  ])('repository glob %s on %s: %s', (glob, name, expected) => {
    expect(compileGlob(glob, true).test(name)).toBe(expected);
  });

  it.each([
    ['release-*', 'release-2024.1', true],
    ['release-*', 'prerelease-1', false],
    ['*-rc*', '1.0-rc2', true],
    ['latest', 'latest-1', false],
  ])('tag glob %s on %s: %s', (glob, tag, expected) => {
    expect(compileGlob(glob, false).test(tag)).toBe(expected);
  });

  it('picks the first rule that matches', () => {
    const p = parsePolicy(ISSUE_EXAMPLE, 'p');
    expect(ruleFor(p, 'legacy/x/y')?.index).toBe(0);
    expect(ruleFor(p, 'team2/api')?.index).toBe(1);
    expect(ruleFor(p, 'team3/api')).toBeUndefined();
  });

  it('shows a YAML syntax error at its line, with a caret under the column and no dangling colon', () => {
    const text = 'rules:\n  - repositories: ["a/**"\n    keep:\n      newest: 5\n';
    const message = (() => {
      try {
        parsePolicy(text, 'p.yaml');
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    const [head, shown, caret] = message.split('\n');
    expect(head).toMatch(/^p\.yaml:3:5: not valid YAML or JSON: Flow sequence .*end with a \]$/);
    expect(shown).toBe('  3 |     keep:');
    expect(caret).toBe('    |     ^');
  });

  it('says that a quoted number is a string', () => {
    const text = 'rules:\n  - repositories: ["a/**"]\n    keep:\n      newest: "5"\n';
    expect(() => parsePolicy(text, 'p.yaml')).toThrow(
      'p.yaml: rules[0].keep.newest: expected a whole number >= 0, but "5" is a quoted string; write newest: 5 without quotes',
    );
  });

  it('suggests "repositories" for a misspelt "repository", and says it once', () => {
    const text = 'rules:\n  - repository: ["a/**"]\n    keep: { newest: 5 }\n';
    expect(() => parsePolicy(text, 'p.yaml')).toThrow(
      /^p\.yaml: rules\[0\]: unknown field "repository"; did you mean "repositories"\? known fields are repositories, protect, keep, untagged$/,
    );
  });
});
