// The progress line on a real terminal: the CLI (bin/registry-janitor.js, in a copy of the checkout) run under a
// pseudo-terminal by util-linux `script`, against a registry slowed by a delay proxy. On the terminal the scan
// shows count, rate and ETA, and the output ends with a newline, also when Ctrl-C interrupts it; with stderr not
// a terminal nothing of it appears.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { pushImage } from '../../lambda/demo/seed.ts';
import { startDelayProxy, type DelayProxy } from '../bench/delay-proxy.ts';
import { cleanEnv, copyCheckout, viaBin } from '../support/checkout-copy.ts';
import { startRegistry } from '../support/registry-kind.ts';

const REPOSITORIES = 40;
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux');
const SKIP = hasScript ? '' : ' (skipped: util-linux script(1) not found)';

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface Terminal {
  readonly code: number | null;
  /** Everything the terminal showed (stdout and stderr, with the terminal's \r\n line ends). */
  readonly screen: string;
}

/**
 * `argv` under a new pseudo-terminal (`script -qfec CMD /dev/null`); `interruptWhen` is called with what the
 * terminal has shown so far and, when it returns true, Ctrl-C is typed (the terminal sends SIGINT).
 */
function underTerminal(
  cwd: string,
  argv: string[],
  interruptWhen?: (screen: string) => boolean,
): Promise<Terminal> {
  const child = spawn('script', ['-qfec', argv.map(quote).join(' '), '/dev/null'], {
    cwd,
    env: cleanEnv({ TERM: 'xterm' }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let typed = false;
  child.stdout.on('data', (d: Buffer) => {
    screen += d.toString();
    if (!typed && interruptWhen?.(screen)) {
      typed = true;
      child.stdin.write('\x03');
    }
  });
  child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, screen })));
}

/** One drawn state of the progress line with its count, rate and ETA. */
const WITH_ETA = /scanning (\d+)\/40 repositories, \d+ tags?, [\d.]+ repositories\/s, ETA \d+:\d\d/;

describe.skipIf(!hasScript)(`the progress line on a real terminal${SKIP}`, () => {
  let registry: LocalRegistry;
  let proxy: DelayProxy;
  let dir: string;
  let policy: string;
  const plan = (): string[] => [
    process.execPath,
    join(dir, 'bin/registry-janitor.js'),
    'plan',
    '--registry',
    proxy.url,
    '--policy',
    policy,
    // One request at a time through 2 x 25 ms: the scan lasts seconds, so the line is redrawn.
    '--concurrency',
    '1',
  ];

  beforeAll(async () => {
    registry = await startRegistry('2.8');
    for (let i = 0; i < REPOSITORIES; i++) {
      await pushImage(registry, `tty/r${String(i).padStart(2, '0')}`, 'v1', {
        created: new Date(Date.UTC(2025, 0, 1)).toISOString(),
        layers: [{ seed: `tty-${i}`, size: 64 }],
      });
    }
    proxy = await startDelayProxy(Number(new URL(registry.url).port), 25);
    const parent = mkdtempSync(join(tmpdir(), 'rj-tty-'));
    dir = copyCheckout(parent);
    policy = join(dir, 'policy.yaml');
    writeFileSync(policy, 'rules:\n  - repositories: ["**"]\n    keep: { newest: 1 }\n');
    // Built before the measured runs.
    expect((await viaBin(dir, ['--help'])).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await registry?.dispose();
    if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('shows count, rate and ETA while scanning, and ends the line', async () => {
    const t = await underTerminal(dir, plan());
    expect(t.code, t.screen).toBe(0);
    const drawn = t.screen.split('\r\x1b[K').filter((s) => WITH_ETA.test(s));
    // Redrawn in place as the count grows.
    expect(drawn.length, t.screen).toBeGreaterThan(1);
    expect(t.screen).toMatch(
      /scanning 40\/40 repositories, 40 tags, [\d.]+ repositories\/s, done in \d+:\d\d\r\n/,
    );
    expect(t.screen).toContain('Plan for ');
    expect(t.screen.endsWith('\r\n')).toBe(true);
  });

  it('Ctrl-C mid-scan ends the line with a newline and exits 130', async () => {
    const t = await underTerminal(dir, plan(), (screen) => {
      const counts = [...screen.matchAll(new RegExp(WITH_ETA, 'g'))].map((m) => Number(m[1]));
      return counts.some((n) => n >= 5);
    });
    expect(t.code, t.screen).toBe(130);
    expect(t.screen).toMatch(WITH_ETA);
    expect(t.screen).toMatch(
      /ETA \d+:\d\d\r\n(?:\r\n)?Interrupted by SIGINT before anything was deleted\.\r\n$/,
    );
    expect(t.screen).not.toContain('Plan for ');
  });

  it('with stderr not a terminal there is no progress line at all', async () => {
    const r = await viaBin(dir, plan().slice(2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Plan for ');
    expect(r.stdout + r.stderr).not.toMatch(/scanning|ETA/);
    expect(r.stdout + r.stderr).not.toContain('\r');
    expect(r.stdout + r.stderr).not.toContain('\x1b[K');
  });
});
