// `registry-janitor restore` as a user meets it before any request: exactly one of --run, --repository and --tag,
// a well-formed REPO:TAG, --force only with --tag, a run or tag the journal does not record named with what it
// does hold, flags of other commands refused, its own --help. Nothing listens at the registry URL, so a case that
// got as far as a request would fail.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, RESTORE_USAGE } from '../../lambda/cli/args.ts';
import { undoHint } from '../../lambda/cli/apply.ts';
import { EXIT } from '../../lambda/cli/main.ts';
import { exitOf, restoreSelection } from '../../lambda/cli/restore.ts';
import { encodeJournal, manifestDigest } from '../../lambda/core/journal.ts';
import type { RestoreReport } from '../../lambda/core/restore.ts';
import { cli } from '../support/cli.ts';

const NOWHERE = 'http://127.0.0.1:9';
const dir = mkdtempSync(join(tmpdir(), 'rj-restore-args-'));
chmodSync(dir, 0o700);
const bytes = new TextEncoder().encode(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: `sha256:${'a'.repeat(64)}`,
      size: 2,
    },
    layers: [],
  }),
);
const digest = manifestDigest(bytes);
const journal = join(dir, 'journal.json');
writeFileSync(
  journal,
  encodeJournal(NOWHERE, [
    {
      repository: 'team1/app',
      digest,
      after: [],
      recordedAt: '2026-12-02T03:15:00.000Z',
      untag: {
        runId: '20261202T031500Z-3f9a1c',
        tags: ['v1', 'v1-alias'],
        state: 'untagged',
        manifests: [
          {
            digest,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            bytes: Buffer.from(bytes).toString('base64'),
          },
        ],
      },
    },
  ]),
  { mode: 0o600 },
);
const base = ['restore', '--registry', NOWHERE, '--journal', journal];

describe('registry-janitor restore: bad input changes nothing', () => {
  it.each([
    [[], /^error: restore needs what to bring back: --run ID .*--repository REPO or --tag REPO:TAG\n$/],
    [
      ['--run', 'r1', '--tag', 'team1/app:v1'],
      /^error: give one of --run, --repository and --tag, not --run and --tag\n$/,
    ],
    [['--repository', 'team1/app', '--run', 'r1'], /not --run and --repository\n$/],
    [['--tag', 'team1/app'], /^error: --tag expects REPO:TAG, e.g. --tag team1\/app:v1, got "team1\/app"\n$/],
    [['--tag', 'team1/app:'], /--tag expects REPO:TAG/],
    [['--tag', 'team1/app@sha256:abc'], /--tag expects REPO:TAG/],
    [['--tag', 'Team1/App:v1'], /^error: --tag: "Team1\/App" is not a repository name/],
    [['--tag', 'team1/app:-v1'], /^error: --tag: "-v1" is not a tag/],
    [['--repository', 'team1/**'], /"team1\/\*\*" is not a repository name .*not a glob/],
    [['--repository', 'team1/app', '--force'], /^error: --force goes with --tag only/],
    [['--run', 'r1', '--force'], /^error: --force goes with --tag only/],
    [
      ['--run', 'r1', '--policy', 'p.yaml'],
      /^error: --policy is not used by restore \(see restore --help\)\n$/,
    ],
    [
      ['--run', 'r1', '--repositories', 'team1/**'],
      /--repositories is not used by restore; restore takes one repository name with --repository REPO/,
    ],
    [['--run', 'r1', '--yes'], /--yes is not used by restore/],
  ])('%j', async (args, message) => {
    const r = await cli([...base, ...args]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(message);
    expect(r.out).toBe('');
  });

  it('a run id the journal does not record names the runs it does', async () => {
    const r = await cli([...base, '--run', '20261201T031500Z-000000']);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toContain(
      `error: the journal ${journal} records no tag removed by run 20261201T031500Z-000000; the runs it knows: 20261202T031500Z-3f9a1c`,
    );
  });

  it('a tag in no record names the removed tags of its repository', async () => {
    const r = await cli([...base, '--tag', 'team1/app:v2']);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toContain(
      'records no tag removed by tag team1/app:v2; the removed tags it knows in team1/app: v1, v1-alias',
    );
  });

  it('a repository in no record names the repositories it knows', async () => {
    const r = await cli([...base, '--repository', 'team2/app']);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toContain('the repositories it knows: team1/app');
  });

  it('a missing journal says where it looked and what to give', async () => {
    const r = await cli([
      'restore',
      '--registry',
      NOWHERE,
      '--run',
      'r1',
      '--journal',
      join(dir, 'none.json'),
    ]);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(/holds no removed tags at all .*Give the same --journal \(or --cache\)/);
  });

  it('the journal is found as apply finds it: beside --cache, else under $XDG_STATE_HOME', async () => {
    const beside = await cli([
      'restore',
      '--registry',
      NOWHERE,
      '--run',
      'r1',
      '--cache',
      join(dir, 'cache'),
    ]);
    expect(beside.err).toContain(`the journal ${join(dir, 'cache.journal.json')} records`);
    const state = await cli(['restore', '--registry', NOWHERE, '--run', 'r1'], {
      env: { XDG_STATE_HOME: dir },
    });
    expect(state.err).toContain(
      `the journal ${join(dir, 'registry-janitor', 'journal-127.0.0.1_9.json')} records`,
    );
    const none = await cli(['restore', '--registry', NOWHERE, '--run', 'r1']);
    expect(none.code).toBe(EXIT.badInput);
    expect(none.err).toMatch(/^error: restore reads the journal apply wrote, and neither --journal/);
  });

  it.each([
    [
      ['plan', '--registry', NOWHERE, '--policy', 'p.yaml', '--dry-run'],
      /^error: --dry-run goes with restore, not plan; plan is the dry run of apply\n$/,
    ],
    [
      ['apply', '--registry', NOWHERE, '--policy', 'p.yaml', '--run', 'r1'],
      /^error: --run goes with restore, not apply\n$/,
    ],
    [
      ['apply', '--registry', NOWHERE, '--policy', 'p.yaml', '--force', '--tag', 'a:b'],
      /^error: --force, --tag go with restore, not apply\n$/,
    ],
  ])('restore flags given to another command: %j', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(EXIT.badInput);
    expect(r.err).toMatch(message);
  });
});

describe('registry-janitor restore --help', () => {
  it('prints its own usage, also as help restore, and the main usage names it', async () => {
    for (const args of [
      ['restore', '--help'],
      ['help', 'restore'],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(EXIT.ok);
      expect(r.out).toBe(RESTORE_USAGE);
    }
    const main = await cli(['--help']);
    expect(main.out).toContain('registry-janitor restore --registry URL --run ID');
    for (const flag of [
      '--run ID',
      '--repository REPO',
      '--tag REPO:TAG',
      '--journal FILE',
      '--dry-run',
      '--force',
    ])
      expect(RESTORE_USAGE).toContain(flag);
    expect(RESTORE_USAGE).toMatch(/Exit codes: 0 .* 1 .* 2 bad input .* 3 a tag was left alone/s);
  });

  it.each([
    [{ failed: 0, skipped: 0 }, EXIT.ok],
    [{ failed: 0, skipped: 1 }, EXIT.refused],
    [{ failed: 1, skipped: 1 }, EXIT.failed],
  ])('exit code of %j is %i', (counts, code) => {
    const report = {
      registry: NOWHERE,
      dryRun: false,
      results: [],
      restored: 0,
      already: 0,
      ...counts,
    } satisfies RestoreReport;
    expect(exitOf(report)).toBe(code);
  });
});

describe("apply's undo line", () => {
  const undo = {
    manifests: 3,
    bytesPending: 1,
    undoUntil: '2026-12-03T03:15:00.000Z',
    runId: '20261202T031500Z-3f9a1c',
  };

  it.each([
    [{ registry: NOWHERE, journal: 'j.json' }, ['--journal', 'j.json']],
    [{ registry: NOWHERE, cache: 'c.bin' }, ['--cache', 'c.bin']],
    [{ registry: NOWHERE }, []],
  ])(
    'names the run, the deadline and a restore command that restore accepts (%j)',
    (values, journalFlags) => {
      const text = undoHint(undo, values);
      expect(text.split('\n')[0]).toBe(
        'Run 20261202T031500Z-3f9a1c: 3 manifests untagged, restorable until 2026-12-03T03:15:00.000Z with',
      );
      const command = text.split('\n')[1]!.trim().split(' ');
      expect(command.slice(0, 2)).toEqual(['registry-janitor', 'restore']);
      const parsed = parseCommandLine(command.slice(1));
      expect(restoreSelection(parsed.values)).toEqual({ run: undo.runId });
      expect(command.slice(2, 6)).toEqual(['--registry', NOWHERE, '--run', undo.runId]);
      expect(command.slice(6)).toEqual(journalFlags);
    },
  );
});
