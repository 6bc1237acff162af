// `npm run demo` as a new user runs it: the whole job on an embedded registry, untagged history included (listed
// from its storage, deleted, reclaimed by garbage-collect), and nothing left behind in the temp folder afterwards.
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
    expect(r.stdout).toMatch(/Verified after restart: 17 kept tags/);

    // The seeded history is in the plan: team2/ci's two expired pushes of main and the old nightly index with its
    // two platform images go by digest, with their push times; the young push and the current index's images stay.
    expect(r.stdout).toContain('team2/ci: rule #1; keep 2 tags, delete 0 tags and 5 manifests');
    expect(r.stdout).toContain(
      '  untagged: delete 5, keep 3  (2 × platform image of a kept tag, 1 × pushed within the grace',
    );
    const history = r.stdout.split('\n').filter((l) => l.includes('(untagged '));
    expect(
      history.map((l) => /\(untagged (\w+)\).*pushed (\d+) days ago/.exec(l)?.slice(1).join(' ')).sort(),
    ).toEqual(['image 30', 'image 40', 'image 40', 'image 45', 'index 40']);
    expect(r.stdout).toMatch(
      /14 manifests to delete \(5 of them untagged history, about [\d.]+ MiB of the space/,
    );
    // Deleted: the report counts them apart.
    expect(r.stdout).toMatch(
      /Deleted 11 tags and 14 manifests .*; 5 of the manifests untagged history, about /,
    );
    // After garbage-collect the disk freed covers the whole estimate, the history's share included (without the
    // history, about 1.5 MiB less would go).
    const disk =
      /\(([\d.]+) MiB freed; plan estimated ([\d.]+) MiB, ([\d.]+) MiB of it untagged history\)/.exec(
        r.stdout,
      );
    expect(disk, r.stdout).not.toBeNull();
    const [freed, estimated, untagged] = disk!.slice(1).map(Number) as [number, number, number];
    expect(untagged).toBeGreaterThan(1);
    expect(freed).toBeGreaterThanOrEqual(estimated);
    // tsx keeps its compile cache there (tsx-<uid>), reused by every later run; that one is not the demo's.
    expect(readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f))).toEqual([]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
