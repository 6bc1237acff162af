// The installed entry point, bin/registry-janitor.js, run as a user runs it (its own process) in a copy of the
// checkout: it builds the bundle on first use, rebuilds it when a source changed (never running the old one),
// falls back to tsx with one line on stderr when it cannot build, and behaves exactly as the TypeScript through
// tsx did: the same output and exit codes, the GC script found beside the bundle.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { copyCheckout, run, viaBin, viaTsx, type Run } from '../support/checkout-copy.ts';
import { startRegistry } from '../support/registry-kind.ts';

interface Stamp {
  main: string;
  outputs: string[];
  inputs: Record<string, [number, number, string] | null>;
}

const stampOf = (dir: string): Stamp => JSON.parse(readFileSync(join(dir, 'dist/cli.json'), 'utf8')) as Stamp;

/** Edit a file of the copy, keeping its length, so only the content (and mtime) tells the change. */
function edit(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  expect(text).toContain(from);
  writeFileSync(file, text.replace(from, to));
}

const NOTICE_LINE = /^registry-janitor: running the TypeScript through tsx \(slower start\): .+$/;
/** The fallback's notice as the whole of stderr: one line. */
const NOTICE = /^registry-janitor: running the TypeScript through tsx \(slower start\): .+\n$/;
const HELP_FIRST_LINE = 'registry-janitor: keep a Docker registry (CNCF distribution) within its disk.';

const work = mkdtempSync(join(tmpdir(), 'rj-bundle-'));
// The read-only case runs as nobody, who must reach the copies.
chmodSync(work, 0o755);
let tsxHelp: Run;

beforeAll(async () => {
  tsxHelp = await viaTsx(copyCheckout(work), ['--help']);
  expect(tsxHelp.code).toBe(0);
  expect(tsxHelp.stdout).toContain(HELP_FIRST_LINE);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('bin/registry-janitor.js builds, checks and runs the bundle', () => {
  it('builds dist/ on first use, then reuses it; --help is what the tsx path prints', async () => {
    const dir = copyCheckout(work);
    expect(existsSync(join(dir, 'dist'))).toBe(false);
    const first = await viaBin(dir, ['--help']);
    expect(first).toMatchObject({ code: 0, stdout: tsxHelp.stdout, stderr: '' });
    const stamp = stampOf(dir);
    expect(existsSync(join(dir, 'dist', stamp.main))).toBe(true);
    // Every bundled source is fingerprinted, the GC script (read beside the module) too.
    expect(Object.keys(stamp.inputs)).toEqual(
      expect.arrayContaining(['bin/cli.ts', 'lambda/cli/main.ts', 'lambda/gc/registry-gc.sh']),
    );
    expect(readFileSync(join(dir, 'dist', dirname(stamp.main), 'registry-gc.sh'), 'utf8')).toBe(
      readFileSync(join(dir, 'lambda/gc/registry-gc.sh'), 'utf8'),
    );

    const second = await viaBin(dir, ['--help']);
    expect(second).toMatchObject({ code: 0, stdout: tsxHelp.stdout, stderr: '' });
    expect(stampOf(dir).main).toBe(stamp.main);
  });

  it('rebuilds when a source or the GC script changed, and not when a file was only touched', async () => {
    const dir = copyCheckout(work);
    expect((await viaBin(dir, ['--help'])).code).toBe(0);
    const built = stampOf(dir).main;

    // Touched, same bytes (a checkout, a copy): the content decides, no rebuild.
    const args = join(dir, 'lambda/cli/args.ts');
    const later = new Date(statSync(args).mtimeMs + 5_000);
    utimesSync(args, later, later);
    expect((await viaBin(dir, ['--help'])).stdout).toBe(tsxHelp.stdout);
    expect(stampOf(dir).main).toBe(built);

    // Changed, same length: the new text, from a new bundle.
    edit(args, 'keep a Docker registry', 'KEEP A DOCKER REGISTRY');
    const edited = await viaBin(dir, ['--help']);
    expect(edited.code).toBe(0);
    expect(edited.stdout).toContain('registry-janitor: KEEP A DOCKER REGISTRY');
    expect(edited.stderr).toBe('');
    const rebuilt = stampOf(dir).main;
    expect(rebuilt).not.toBe(built);

    // The GC script is not bundled but copied beside the bundle: a change to it is a change too.
    edit(join(dir, 'lambda/gc/registry-gc.sh'), 'log_dir=', 'log_dir=${SSM_unused:-}');
    expect((await viaBin(dir, ['--help'])).code).toBe(0);
    const again = stampOf(dir);
    expect(again.main).not.toBe(rebuilt);
    expect(readFileSync(join(dir, 'dist', dirname(again.main), 'registry-gc.sh'), 'utf8')).toContain(
      'log_dir=${SSM_unused:-}',
    );
  });

  it('a build that cannot be written runs the TypeScript through tsx, saying so in one line', async () => {
    const dir = copyCheckout(work);
    // Even root cannot make a folder where a file is.
    writeFileSync(join(dir, 'dist'), '');
    const r = await viaBin(dir, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(tsxHelp.stdout);
    expect(r.stderr).toMatch(NOTICE);
    expect(r.stderr).toContain(`cannot write ${join(dir, 'dist')}`);
    const bad = await viaBin(dir, ['plan', '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(NOTICE_LINE),
      'error: unknown option --bogus (see --help)',
    ]);
  });

  // A checkout the user cannot write to, whose bundle is out of date: the new sources run, never the old bundle.
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  const asRoot = process.getuid?.() === 0;
  it.skipIf(asRoot && !setpriv)(
    `a stale bundle in a read-only checkout is not run: the sources are, through tsx${asRoot && !setpriv ? ' (skipped: running as root without setpriv to drop to nobody)' : ''}`,
    async () => {
      const dir = copyCheckout(work);
      expect((await viaBin(dir, ['--help'])).code).toBe(0);
      edit(join(dir, 'lambda/cli/args.ts'), 'keep a Docker registry', 'KEEP A DOCKER REGISTRY');
      const readOnly = (mode: string): void => {
        const r = spawnSync('chmod', ['-R', mode, dir], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
      };
      readOnly('a-w');
      try {
        const prefix = asRoot
          ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']
          : undefined;
        const r = await viaBin(dir, ['--help'], { ...(prefix ? { prefix } : {}), env: { TMPDIR: tmpdir() } });
        expect(r.stdout).toContain('registry-janitor: KEEP A DOCKER REGISTRY');
        expect(r.stderr).toMatch(NOTICE);
        expect(r.code).toBe(0);
      } finally {
        readOnly('u+w');
      }
    },
  );
});

describe('the bundle behaves as the tsx path did', () => {
  let registry: LocalRegistry;
  let dir: string;
  let files: string;
  let fakeDocker: string;
  const policy = (name: string, body: string): string => {
    const file = join(files, name);
    writeFileSync(file, body);
    return file;
  };

  beforeAll(async () => {
    registry = await startRegistry('2.8');
    for (let i = 1; i <= 5; i++) {
      await pushImage(registry, 'app/web', `v${i}`, {
        created: new Date(Date.UTC(2025, 0, i)).toISOString(),
        layers: [{ seed: `bundle-${i}`, size: 128 }],
      });
    }
    dir = copyCheckout(work);
    files = join(work, 'files');
    mkdirSync(files, { recursive: true });
    // A docker that fails the first call: gc gets as far as running the GC script, which must be found.
    fakeDocker = join(files, 'bin');
    mkdirSync(fakeDocker, { recursive: true });
    writeFileSync(join(fakeDocker, 'docker'), '#!/bin/sh\necho "fake docker: $1" >&2\nexit 1\n', {
      mode: 0o755,
    });
    expect((await viaBin(dir, ['--help'])).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await registry?.dispose();
    const logs = '/var/log/registry-janitor';
    for (const f of existsSync(logs) ? readdirSync(logs) : []) {
      if (f.startsWith('gc-rj-bundle-none-')) rmSync(join(logs, f), { force: true });
    }
  });

  const keep = (n: number): string => `rules:\n  - repositories: ["**"]\n    keep: { newest: ${n} }\n`;
  const cases: [string, () => string[], number][] = [
    ['no command: the usage', () => [], 2],
    ['gc --help', () => ['gc', '--help'], 0],
    ['an unknown flag', () => ['plan', '--registri', registry.url], 2],
    ['an extra argument', () => ['plan', 'extra', '--registry', registry.url], 2],
    [
      'a YAML error in the policy',
      () => ['plan', '--registry', registry.url, '--policy', policy('bad.yaml', 'rules: [\n')],
      2,
    ],
    [
      'a plan within the guard',
      () => ['plan', '--registry', registry.url, '--policy', policy('ok.yaml', keep(4))],
      0,
    ],
    [
      'a plan the guard refuses',
      () => ['plan', '--registry', registry.url, '--policy', policy('all.yaml', keep(1))],
      3,
    ],
    [
      '--json',
      () => ['plan', '--json', '--registry', registry.url, '--policy', policy('ok.yaml', keep(4))],
      0,
    ],
    [
      'a registry that does not answer',
      () => ['plan', '--registry', 'http://127.0.0.1:9', '--policy', policy('ok.yaml', keep(4))],
      1,
    ],
    [
      'apply without --yes and no terminal',
      () => ['apply', '--registry', registry.url, '--policy', policy('ok.yaml', keep(4))],
      3,
    ],
    [
      'gc, whose GC script is read beside the bundle',
      () => ['gc', '--container', 'rj-bundle-none', '--mode', 'offline'],
      1,
    ],
  ];
  it.each(cases)('%s: the same output and exit code', async (_, args, code) => {
    const env = { PATH: `${fakeDocker}:${process.env.PATH ?? ''}` };
    const [bundled, tsx] = [await viaBin(dir, args(), { env }), await viaTsx(dir, args(), { env })];
    // Only the time of the plan and the GC log's file name (time and pid) differ between two runs.
    const now = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g;
    const same = (r: Run): Run => ({
      ...r,
      ms: 0,
      stdout: r.stdout.replace(now, '<now>'),
      stderr: r.stderr.replace(/gc-rj-bundle-none-\S+\.log/g, 'gc-rj-bundle-none-….log'),
    });
    expect(same(bundled)).toEqual(same(tsx));
    expect(bundled.code).toBe(code);
    if (args().includes('--container')) expect(bundled.stderr).toContain('fake docker: inspect');
  });

  it('npm run cli goes through it too', async () => {
    const r = await run(dir, ['npm', 'run', '-s', 'cli', '--', '--help']);
    expect(r).toMatchObject({ code: 0, stdout: tsxHelp.stdout, stderr: '' });
  });
});
