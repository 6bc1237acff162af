// A copy of this checkout's CLI sources in a folder of its own (node_modules linked, not copied), so a test or the
// bench can build, age and break the CLI's bundle (bin/bundle.js, dist/) without touching the checkout's own;
// and the CLI run as a user runs it, in its own process: through bin/registry-janitor.js, or through tsx.
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));

/** What the bundle is built from, besides node_modules. */
const SOURCES = ['bin', 'lambda', 'package.json', 'tsconfig.json'];

/** A new copy under `parent` (default: the temp folder), readable by everyone (the read-only test runs as nobody). */
export function copyCheckout(parent: string = tmpdir()): string {
  const dir = mkdtempSync(join(parent, 'rj-checkout-'));
  chmodSync(dir, 0o755);
  for (const path of SOURCES) {
    cpSync(join(CHECKOUT, path), join(dir, path), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(CHECKOUT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  /** Run the command through this one (e.g. ['setpriv', '--reuid=65534', …]). */
  readonly prefix?: readonly string[];
}

/** This process's environment without what `npm run` adds (INIT_CWD would move the CLI's relative paths). */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && k !== 'INIT_CWD' && !k.startsWith('npm_')) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return { NO_COLOR: '1', ...env };
}

/** Run `argv` (argv[0] the program) in `cwd`, collecting its output. */
export function run(cwd: string, argv: readonly string[], options: RunOptions = {}): Promise<Run> {
  const all = [...(options.prefix ?? []), ...argv];
  const started = performance.now();
  const child = spawn(all[0]!, all.slice(1), {
    cwd,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

/** The installed entry point of the checkout at `dir`: the bundle, built if need be, or tsx. */
export const viaBin = (dir: string, args: readonly string[], options?: RunOptions): Promise<Run> =>
  run(dir, [process.execPath, join(dir, 'bin/registry-janitor.js'), ...args], options);

/** The TypeScript sources of the checkout at `dir` through tsx's loader, as before there was a bundle. */
export const viaTsx = (dir: string, args: readonly string[], options?: RunOptions): Promise<Run> =>
  run(dir, [process.execPath, '--import', 'tsx', join(dir, 'bin/cli.ts'), ...args], options);
