// The command line as a new user meets it, before any request: one bound for --concurrency, a "did you mean"
// for a misspelt flag or command, no stray arguments, gc's own help, and a README that lists every flag.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GC_USAGE, RESTORE_USAGE, USAGE } from '../../lambda/cli/args.ts';
import { EXIT } from '../../lambda/cli/main.ts';
import { cli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'rj-args-'));
const policy = join(dir, 'policy.yaml');
writeFileSync(policy, 'rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n');
/** Nothing listens there: every case below must stop before a request. */
const NOWHERE = 'http://127.0.0.1:9';

describe('the command line', () => {
  it.each(['0', '1.5', '-1', '1025', 'many'])(
    '--concurrency %s: one bound, one line, no usage',
    async (value) => {
      const r = await cli(['plan', '--registry', NOWHERE, '--policy', policy, '--concurrency', value]);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toBe(`error: --concurrency expects a whole number from 1 to 1024, got "${value}"\n`);
      expect(r.out).toBe('');
    },
  );

  it('an unknown flag gets a "did you mean" and no usage', async () => {
    const r = await cli(['plan', '--registry', NOWHERE, '--polcy', policy]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toBe('error: unknown option --polcy; did you mean --policy? (see --help)\n');
  });

  it('an unknown command gets a "did you mean"', async () => {
    const r = await cli(['aply', '--registry', NOWHERE, '--policy', policy]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(/^error: unknown command "aply" \(did you mean "apply"\?\)/);
  });

  it.each([
    [['plan', '--registry', NOWHERE, '--policy', policy, 'team1/a', 'team1/b'], /"team1\/a" "team1\/b"/],
    [['apply', 'now', '--registry', NOWHERE, '--policy', policy], /"now" after "apply"/],
  ])('refuses extra arguments %j', async (args, what) => {
    const r = await cli(args);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(/^error: unexpected arguments? /);
    expect(r.err).toMatch(what);
  });

  it('--undo-window-hours without --storage is refused with why and the fix, before any request', async () => {
    for (const command of ['plan', 'apply']) {
      const r = await cli([command, '--registry', NOWHERE, '--policy', policy, '--undo-window-hours', '24']);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toMatch(/^error: --undo-window-hours needs --storage PATH: /);
      expect(r.err).toContain('only a storage listing lets the sweep see untagged manifests');
      expect(r.err).toContain('Add --storage');
      expect(r.out).toBe('');
    }
  });

  it.each(['-1', '1.5', '8761', 'day', ''])(
    '--undo-window-hours %j with --storage: the contract form, before any request',
    async (value) => {
      const args = ['plan', '--registry', NOWHERE, '--policy', policy, '--storage', dir];
      const r = await cli([...args, `--undo-window-hours=${value}`]);
      expect(r.code).toBe(EXIT.badInput);
      expect(r.err).toBe(
        `error: --undo-window-hours expects a whole number of hours from 0 to 8760, e.g. 24, got "${value}"\n`,
      );
    },
  );

  it('a flag without its value says so, instead of taking the next flag as the value', async () => {
    const r = await cli(['plan', '--registry', NOWHERE, '--policy', '--json']);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toBe('error: --policy needs a value, e.g. --policy FILE\n');
  });

  it('gc --help documents each of its flags with the default', async () => {
    for (const args of [
      ['gc', '--help'],
      ['help', 'gc'],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(EXIT.ok);
      expect(r.out).toBe(GC_USAGE);
    }
    expect(GC_USAGE).toMatch(/--container NAME .*\(default registry\)/);
    expect(GC_USAGE).toMatch(/--mode MODE .*\(default readonly\)/);
    expect(GC_USAGE).toMatch(
      /--config-path PATH .*\(default: the \.yml\/\.yaml file the\s+container was started with/,
    );
    expect(GC_USAGE).toMatch(/--delete-untagged .*\(default off; v3 only/);
  });

  it("the README's CLI reference lists every flag --help lists, and both save plans with plan --out", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const reference = readme.slice(readme.indexOf('### CLI reference'), readme.indexOf('## Deploy to AWS'));
    const flags = new Set(
      [...`${USAGE}${GC_USAGE}${RESTORE_USAGE}`.matchAll(/(?<![\w-])--[a-z][a-z-]+/g)].map((m) => m[0]),
    );
    expect(flags.size).toBeGreaterThan(20);
    for (const flag of flags) expect([flag, reference.includes(`\`${flag}`)]).toEqual([flag, true]);
    expect(USAGE).toContain('apply a plan saved with plan --out FILE');
    expect(reference).toContain('apply a plan saved with `plan --out FILE`');
    expect(`${USAGE}${reference}`).not.toMatch(/saved with `?plan --json/);
  });
});
