// The registry both promotion-race tests clean: 4 repositories of 10 builds (a shared base layer, a layer and a
// config of their own; `latest` on the newest) and one of 4 multi-arch indexes (two platform images each). Under
// "keep the newest 2 and latest/release-*", 8 builds per repository and 2 indexes go: the images a CI job might
// promote while apply runs.
import { pushImage, pushIndex, pushManifest, type PushedImage } from '../../lambda/demo/seed.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { parsePolicy } from '../../lambda/core/policy.ts';
import { readCandidate, withOwnBlobs, type Candidate } from './promoter.ts';

export const RACE_BUILDS = 10;

/** The policy every round plans with: keep the newest 2 and `latest`/`release-*` (promotions are `release-…`). */
export const RACE_POLICY_YAML = `rules:
  - repositories: ["app/**"]
    keep:
      newest: 2
      tags: ["latest", "release-*"]
`;

export const RACE_POLICY = parsePolicy(RACE_POLICY_YAML, 'policy.yaml');

/** Pushes the scenario to `registryUrl`; `seed` keeps each round's layers apart from the others'. */
export async function seedRaceScenario(registryUrl: string, seed: string): Promise<void> {
  const t = { url: registryUrl };
  const created = (k: number) => `2026-01-${String(k + 1).padStart(2, '0')}T00:00:00Z`;
  await Promise.all(
    [0, 1, 2, 3].map(async (r) => {
      const repo = `app/r${r}`;
      let newest: PushedImage | undefined;
      for (let k = 0; k < RACE_BUILDS; k++) {
        newest = await pushImage(t, repo, `b${k}`, {
          created: created(k),
          layers: [
            { seed: `${seed}-${repo}-base`, size: 1024 },
            { seed: `${seed}-${repo}-b${k}`, size: 2048 },
          ],
          label: `${seed}-${repo}-b${k}`,
        });
      }
      const body = await fetch(`${registryUrl}/v2/${repo}/manifests/${newest!.digest}`, {
        headers: { accept: newest!.mediaType },
      });
      await pushManifest(t, repo, 'latest', newest!.mediaType, new Uint8Array(await body.arrayBuffer()));
    }),
  );
  for (let k = 0; k < 4; k++) {
    const children = await Promise.all(
      ['amd64', 'arm64'].map((arch) =>
        pushImage(t, 'app/multi', null, {
          created: created(k),
          layers: [{ seed: `${seed}-multi-${k}-${arch}`, size: 2048 }],
          label: `${seed}-multi-${k}-${arch}`,
          architecture: arch,
          format: 'oci',
        }),
      ),
    );
    await pushIndex(
      t,
      'app/multi',
      `m${k}`,
      children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.size,
        platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
      })),
    );
  }
}

/**
 * What a plan deletes, as images to promote (the tags' manifests: an index's children go with it and are checked
 * as its needs, each with the blobs no kept image shares), and every kept tag's image.
 */
export async function raceCandidates(
  registryUrl: string,
  plan: Plan,
): Promise<{ candidates: Candidate[]; kept: { image: Candidate; tag: string }[] }> {
  const raw: Candidate[] = [];
  const kept: { image: Candidate; tag: string }[] = [];
  for (const repo of plan.repositories) {
    for (const m of repo.deleteManifests)
      if (m.tags.length > 0) raw.push(await readCandidate(registryUrl, repo.name, m.digest, m.tags));
    for (const k of repo.kept)
      kept.push({ image: await readCandidate(registryUrl, repo.name, k.digest, [k.tag]), tag: k.tag });
  }
  const candidates = withOwnBlobs(
    raw,
    kept.map((k) => k.image),
  );
  return { candidates, kept };
}
