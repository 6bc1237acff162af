// `npm run demo` as a new user runs it: the whole job on an embedded registry, two-phase as `apply --storage` runs
// it. Tonight: untagged history (listed from its storage) deleted and reclaimed by garbage-collect, the tags the
// policy deletes removed and their manifests left untagged, restorable for the undo window; tomorrow night (the
// demo's clock moved past the window) the sweep deletes those and garbage-collect reclaims them. Nothing is left
// behind in the temp folder afterwards.
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
    // Tonight: the tags go and their 9 manifests stay untagged (restorable); the history goes by digest.
    expect(r.stdout).toMatch(
      /Deleted 11 tags and 5 manifests .*; 5 of the manifests untagged history, about /,
    );
    expect(r.stdout).toMatch(/Untagged tonight, reclaimed after [-\d: ]+UTC: 9 manifests, about /);
    expect(r.stdout).toMatch(
      /registry-janitor restore --registry http:\/\/127\.0\.0\.1:\d+ --run \S+ --journal /,
    );
    // Tomorrow: the sweep deletes those 9, each as what an earlier run untagged (not as an interrupted run's).
    expect(r.stdout).toMatch(/Deleted 0 tags and 9 manifests /);
    const swept = r.stdout.split('\n').filter((l) => l.includes('journal: untagged by an earlier run'));
    expect(swept.length, r.stdout).toBeGreaterThan(0);
    expect(r.stdout).not.toContain('left by an interrupted run');
    // After each garbage-collect the disk freed covers that night's estimate: the history's tonight, the
    // untagged images' tomorrow.
    const disk =
      /after tonight \(([\d.]+) MiB freed; plan estimated ([\d.]+) MiB, untagged history\), [\d.]+ MiB after tomorrow \(([\d.]+) MiB freed; tonight's plan estimated ([\d.]+) MiB untagged tonight/.exec(
        r.stdout,
      );
    expect(disk, r.stdout).not.toBeNull();
    const [freedTonight, historyEstimate, freedTomorrow, pending] = disk!.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(historyEstimate).toBeGreaterThan(1);
    expect(freedTonight).toBeGreaterThanOrEqual(historyEstimate);
    expect(pending).toBeGreaterThan(1);
    expect(freedTomorrow).toBeGreaterThanOrEqual(pending);
    // tsx keeps its compile cache there (tsx-<uid>), reused by every later run; that one is not the demo's.
    expect(readdirSync(tmp).filter((f) => !/^tsx-\d+$/.test(f))).toEqual([]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
