// `npm run demo` as a new user runs it: the whole job on an embedded registry, and nothing left behind in the
// temp folder afterwards.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;

it('the demo runs the whole job and leaves nothing in the temp folder', () => {
  // A temp folder of its own, so that what other tests create meanwhile does not count.
  const tmp = mkdtempSync(join(tmpdir(), 'rj-demo-tmp-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/demo.ts'], {
      cwd: ROOT,
      env: { ...process.env, TMPDIR: tmp },
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Verified after restart: 15 kept tags/);
    // tsx keeps its compile cache there (tsx-<uid>), reused by every later run; that one is not the demo's.
    expect(readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f))).toEqual([]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
