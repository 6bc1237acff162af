// `npm run bench -- --mode history`: lists a synthetic filesystem storage of 100,000 revisions (200 repositories
// × 500, a fifth of them tagged) with the real lister, and times the planner over the same inventory with and
// without the listing. Prints one JSON line. The storage is made once under .bench/ and reused.
import { existsSync, mkdirSync, writeFileSync, utimesSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { listFilesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { REPOSITORIES_PATH, REVISIONS_PATH } from '../../lambda/core/history.ts';
import type { Inventory, ManifestInfo, RepositoryInventory } from '../../lambda/core/model.ts';
import { plan } from '../../lambda/core/planner.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-11-28T12:00:00Z');
const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

export interface HistoryBenchOptions {
  readonly dir: string;
  readonly repos: number;
  readonly revisions: number;
  readonly rounds: number;
}

/** A storage layout with `repos` × `revisions` revision links, pushed one day apart, newest last. */
function seedStorage(root: string, repos: number, revisions: number): void {
  const marker = join(root, `.seeded-${repos}x${revisions}`);
  if (existsSync(marker)) return;
  rmSync(root, { recursive: true, force: true });
  for (let r = 0; r < repos; r++) {
    const base = join(root, REPOSITORIES_PATH, `team${r % 10}/app${r}`, REVISIONS_PATH);
    for (let i = 0; i < revisions; i++) {
      const dir = join(base, hex(`${r}/${i}`));
      mkdirSync(dir, { recursive: true });
      const link = join(dir, 'link');
      writeFileSync(link, `sha256:${hex(`${r}/${i}`)}`);
      const t = new Date(NOW.getTime() - (revisions - i) * DAY);
      utimesSync(link, t, t);
    }
  }
  writeFileSync(marker, '');
}

/** The same registry as an inventory: every fifth revision tagged, the rest history; with or without a listing. */
function inventoryOf(repos: number, revisions: number, withHistory: boolean): Inventory {
  const manifests = new Map<string, ManifestInfo>();
  const repositories: RepositoryInventory[] = [];
  for (let r = 0; r < repos; r++) {
    const tags = [];
    const untagged = [];
    for (let i = 0; i < revisions; i++) {
      const digest = `sha256:${hex(`${r}/${i}`)}`;
      const created = new Date(NOW.getTime() - (revisions - i) * DAY).toISOString();
      manifests.set(digest, {
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        kind: 'image',
        size: 500,
        config: {
          digest: `sha256:${hex(`c${r}/${i}`)}`,
          size: 100,
          mediaType: 'application/vnd.oci.image.config.v1+json',
        },
        layers: [{ digest: `sha256:${hex(`l${r}/${i}`)}`, size: 1000 }],
        children: [],
        created,
        createdSource: 'config',
      });
      if (i % 5 === 0) tags.push({ tag: `build-${i}`, digest });
      else untagged.push({ digest, pushedAt: created });
    }
    tags.sort((a, b) => (a.tag < b.tag ? -1 : 1));
    untagged.sort((a, b) => (a.digest < b.digest ? -1 : 1));
    repositories.push({
      name: `team${r % 10}/app${r}`,
      tags,
      missing: [],
      untaggedSubjects: [],
      ...(withHistory ? { untagged } : {}),
    });
  }
  repositories.sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    registry: 'http://bench',
    repositories,
    manifests,
    errors: [],
    warnings: [],
    ...(withHistory ? { history: { source: 'bench', complete: true } } : {}),
  };
}

const best = async (rounds: number, f: () => unknown): Promise<number> => {
  let out = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await f();
    out = Math.min(out, performance.now() - t);
  }
  return out;
};

export async function historyBench(o: HistoryBenchOptions): Promise<Record<string, unknown>> {
  const root = join(o.dir, 'history-storage');
  const seedStart = performance.now();
  seedStorage(root, o.repos, o.revisions);
  const seedMs = performance.now() - seedStart;
  let listed = 0;
  const listMs = await best(o.rounds, async () => {
    const l = await listFilesystemHistory(root);
    listed = [...l.repositories.values()].reduce((n, r) => n + r.length, 0);
  });
  const policy = parsePolicy(
    'rules:\n  - repositories: ["**"]\n    keep: { newest: 10 }\n    untagged: { deleteAfterDays: 30 }\n',
  );
  const without = inventoryOf(o.repos, o.revisions, false);
  const withListing = inventoryOf(o.repos, o.revisions, true);
  const planWithout = await best(o.rounds, () => plan(without, policy, NOW));
  const planWith = await best(o.rounds, () => plan(withListing, policy, NOW));
  const p = plan(withListing, policy, NOW);
  return {
    mode: 'history',
    revisions: listed,
    repositories: o.repos,
    seedMs: Math.round(seedMs),
    listMs: Math.round(listMs),
    planWithoutListingMs: Math.round(planWithout),
    planWithListingMs: Math.round(planWith),
    planRatio: Math.round((planWith / planWithout) * 100) / 100,
    untaggedDeleted: p.summary.untaggedDeleted,
    tagsDeleted: p.summary.tagsDeleted,
  };
}
