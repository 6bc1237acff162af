// A realistic registry for integration tests and the demo: Docker and OCI images over shared base layers,
// multi-arch indexes, tag aliases, signatures, a reproducible (1970) image, a protected and an unmatched
// repository, and optionally a repository with hundreds of tags (pagination); and, on filesystem storage, the
// untagged history CI pushes leave behind.
import {
  pushImage,
  pushIndex,
  pushReferrer,
  type Descriptor,
  type PushedImage,
  type SeedTarget,
} from './seed.ts';

export const SCENARIO_POLICY = String.raw`rules:
  - repositories: ["legacy/**"]
    protect: true
  - repositories: ["team1/**", "team2/**"]
    keep:
      newest: 2
      youngerThanDays: 7
      tags: ["latest", "stable"]
      tagsRegex: ["^v\\d+\\.\\d+\\.\\d+$"]
    untagged:
      deleteAfterDays: 14
`;

export interface Scenario {
  /** Tags the policy keeps, per repository. */
  readonly kept: Record<string, string[]>;
  /** Tags the policy deletes, per repository. */
  readonly deleted: Record<string, string[]>;
  /** Manifest digests that must be gone after apply. */
  readonly deletedDigests: Record<string, string[]>;
  /** Layers only deleted images use: gone after garbage-collect. */
  readonly freedLayers: Record<string, string[]>;
  readonly digests: Record<string, string>;
}

const DAY = 86_400_000;

export async function seedScenario(
  target: SeedTarget,
  options: { now?: Date; manyTags?: number; layerSize?: number } = {},
): Promise<Scenario> {
  const now = options.now ?? new Date();
  const ago = (days: number): string => new Date(now.getTime() - days * DAY).toISOString();
  const size = options.layerSize ?? 4096;
  const base = { seed: 'base-debian', size: size * 8 };
  const digests: Record<string, string> = {};
  const desc = (i: PushedImage, architecture: string): Descriptor => ({
    mediaType: i.mediaType,
    digest: i.digest,
    size: i.size,
    platform: { architecture, os: 'linux' },
  });

  // team1/api: Docker images on a shared base; aliases sharing digests with builds.
  const ages = [60, 50, 40, 30, 20, 10, 3, 1];
  const builds: PushedImage[] = [];
  for (const [i, days] of ages.entries()) {
    const image = await pushImage(target, 'team1/api', `build-${i + 1}`, {
      created: ago(days),
      layers: [base, { seed: `api-${i + 1}`, size }],
    });
    builds.push(image);
    digests[`team1/api:build-${i + 1}`] = image.digest;
  }
  await pushImage(target, 'team1/api', 'latest', {
    created: ago(1),
    layers: [base, { seed: 'api-8', size }],
    label: 'team1/api:build-8',
  });
  await pushImage(target, 'team1/api', 'stable', {
    created: ago(50),
    layers: [base, { seed: 'api-2', size }],
    label: 'team1/api:build-2',
  });
  await pushImage(target, 'team1/api', 'candidate', {
    created: ago(50),
    layers: [base, { seed: 'api-2', size }],
    label: 'team1/api:build-2',
  });
  await pushImage(target, 'team1/api', 'v1.0.0', {
    created: ago(60),
    layers: [base, { seed: 'api-1', size }],
    label: 'team1/api:build-1',
  });

  // team1/web: OCI multi-arch indexes with signatures (OCI referrers under cosign-style tags).
  const web: Record<string, { digest: string; children: PushedImage[] }> = {};
  for (const [version, days] of [
    ['1.9', 90],
    ['2.0', 60],
    ['2.1', 2],
  ] as const) {
    const amd = await pushImage(target, 'team1/web', null, {
      created: ago(days + 1),
      format: 'oci',
      layers: [
        { seed: 'base-alpine-amd64', size: size * 4 },
        { seed: `web-${version}-amd64`, size },
      ],
    });
    const arm = await pushImage(target, 'team1/web', null, {
      created: ago(days),
      format: 'oci',
      architecture: 'arm64',
      layers: [
        { seed: 'base-alpine-arm64', size: size * 4 },
        { seed: `web-${version}-arm64`, size },
      ],
    });
    const index = await pushIndex(target, 'team1/web', version, [desc(amd, 'amd64'), desc(arm, 'arm64')]);
    web[version] = { digest: index.digest, children: [amd, arm] };
    digests[`team1/web:${version}`] = index.digest;
    const subject = { mediaType: index.mediaType, digest: index.digest, size: index.size };
    const sigTag = `sha256-${index.digest.slice(7)}.sig`;
    const sig = await pushReferrer(
      target,
      'team1/web',
      sigTag,
      subject,
      'application/vnd.dev.cosign.artifact.sig.v1+json',
      `sig-${version}`,
    );
    digests[`team1/web:${sigTag}`] = sig.digest;
  }
  const amd20 = web['2.0']!.children[0]!;
  // A platform tag on a child of a kept index: the tag may go, the manifest must stay.
  const platformTag = await pushImage(target, 'team1/web', '2.0-amd64', {
    created: ago(61),
    format: 'oci',
    label: 'team1/web:untagged',
    layers: [
      { seed: 'base-alpine-amd64', size: size * 4 },
      { seed: 'web-2.0-amd64', size },
    ],
  });
  if (platformTag.digest !== amd20.digest)
    throw new Error('scenario: 2.0-amd64 should be the amd64 child of 2.0');

  // team2/repro: a reproducible build (1970) is kept: its age is unknown.
  for (const [tag, created] of [
    ['repro', '1970-01-01T00:00:00Z'],
    ['old-1', ago(100)],
    ['old-2', ago(200)],
    ['new', ago(1)],
  ] as const) {
    const image = await pushImage(target, 'team2/repro', tag, {
      created,
      layers: [base, { seed: `repro-${tag}`, size }],
    });
    digests[`team2/repro:${tag}`] = image.digest;
  }

  // legacy/tool is protected; misc/untouched matches no rule.
  await pushImage(target, 'legacy/tool', 'ancient', {
    created: ago(2000),
    layers: [{ seed: 'legacy', size }],
  });
  await pushImage(target, 'legacy/tool', 'older', {
    created: ago(3000),
    layers: [{ seed: 'legacy-2', size }],
  });
  await pushImage(target, 'misc/untouched', 'old', {
    created: ago(1000),
    layers: [base, { seed: 'misc', size }],
  });

  const kept: Record<string, string[]> = {
    'team1/api': ['build-7', 'build-8', 'latest', 'stable', 'v1.0.0'],
    'team1/web': [
      '2.0',
      '2.1',
      `sha256-${web['2.0']!.digest.slice(7)}.sig`,
      `sha256-${web['2.1']!.digest.slice(7)}.sig`,
    ],
    'team2/repro': ['new', 'old-1', 'repro'],
    'legacy/tool': ['ancient', 'older'],
    'misc/untouched': ['old'],
  };
  const deleted: Record<string, string[]> = {
    'team1/api': ['build-1', 'build-2', 'build-3', 'build-4', 'build-5', 'build-6', 'candidate'],
    'team1/web': ['1.9', '2.0-amd64', `sha256-${web['1.9']!.digest.slice(7)}.sig`],
    'team2/repro': ['old-2'],
  };
  const deletedDigests: Record<string, string[]> = {
    'team1/api': [3, 4, 5, 6].map((i) => builds[i - 1]!.digest),
    'team1/web': [
      web['1.9']!.digest,
      ...web['1.9']!.children.map((c) => c.digest),
      digests[`team1/web:sha256-${web['1.9']!.digest.slice(7)}.sig`]!,
    ],
    'team2/repro': [digests['team2/repro:old-2']!],
  };
  const freedLayers: Record<string, string[]> = {
    'team1/api': [3, 4, 5, 6].map((i) => builds[i - 1]!.layers[1]!.digest),
    'team1/web': web['1.9']!.children.map((c) => c.layers[1]!.digest),
  };

  if (options.manyTags) {
    // team2/many: hundreds of tags over a few images, ten days apart; the two newest images stay.
    const images: PushedImage[] = [];
    for (let k = 0; k < 13; k++) {
      images.push(
        await pushImage(target, 'team2/many', `img-${k}`, {
          created: ago(10 * (k + 1)),
          layers: [{ seed: `many-${k}`, size: 512 }],
        }),
      );
    }
    const tags: string[] = [];
    for (let i = 0; i < options.manyTags; i++) tags.push(`t-${String(i).padStart(3, '0')}`);
    const { pushManifest } = await import('./seed.ts');
    const bodies = await Promise.all(
      images.map(async (img) => {
        const res = await fetch(`${target.url}/v2/team2/many/manifests/${img.digest}`, {
          headers: {
            accept: img.mediaType,
            ...(target.authorization ? { authorization: target.authorization } : {}),
          },
        });
        return new Uint8Array(await res.arrayBuffer());
      }),
    );
    for (let i = 0; i < tags.length; i += 20) {
      await Promise.all(
        tags
          .slice(i, i + 20)
          .map((t, j) =>
            pushManifest(target, 'team2/many', t, images[(i + j) % 13]!.mediaType, bodies[(i + j) % 13]!),
          ),
      );
    }
    const keepIdx = new Set([0, 1]);
    const allTags = [
      ...tags.map((t, i) => ({ t, k: i % 13 })),
      ...images.map((_, k) => ({ t: `img-${k}`, k })),
    ];
    kept['team2/many'] = allTags
      .filter((x) => keepIdx.has(x.k))
      .map((x) => x.t)
      .sort();
    deleted['team2/many'] = allTags
      .filter((x) => !keepIdx.has(x.k))
      .map((x) => x.t)
      .sort();
    deletedDigests['team2/many'] = images.slice(2).map((i) => i.digest);
  }
  return { kept, deleted, deletedDigests, freedLayers, digests };
}

/** What seedHistory left: the untagged manifests the scenario's policy deletes and keeps, and the layers freed. */
export interface HistoryScenario {
  readonly repository: string;
  /** Untagged manifests pushed longer ago than the grace that nothing staying references: they go. */
  readonly expired: readonly string[];
  /** Untagged manifests that stay: pushed within the grace, or the platform images of the tagged index. */
  readonly kept: readonly string[];
  /** Layers only the expired history uses: gone after garbage-collect. */
  readonly freedLayers: readonly string[];
}

/**
 * Untagged history, as CI leaves it, in team2/ci: `main` pushed four times (45, 30 and 10 days ago, and today:
 * the three earlier pushes are untagged now) and a multi-arch `nightly` index pushed twice (40 days ago and
 * today: the old index and its platform images are untagged). Each push's revision link gets its push time, so
 * a storage listing sees its age. The scenario's policy deletes history older than 14 days.
 */
export async function seedHistory(
  target: SeedTarget & { setPushedAt(repository: string, digest: string, when: Date): void },
  options: { now?: Date; layerSize?: number } = {},
): Promise<HistoryScenario> {
  const repository = 'team2/ci';
  const now = options.now ?? new Date();
  const at = (days: number): Date => new Date(now.getTime() - days * DAY);
  const size = options.layerSize ?? 4096;
  const base = { seed: 'base-debian', size: size * 8 };
  const expired: string[] = [];
  const kept: string[] = [];
  const freedLayers: string[] = [];

  for (const [k, days] of [45, 30, 10, 0].entries()) {
    const image = await pushImage(target, repository, 'main', {
      created: at(days).toISOString(),
      layers: [base, { seed: `ci-main-${k}`, size: size * 2 }],
      label: `team2/ci:main-${k}`,
    });
    if (days > 0) target.setPushedAt(repository, image.digest, at(days));
    if (days > 14) {
      expired.push(image.digest);
      freedLayers.push(image.layers[1]!.digest);
    } else if (days > 0) kept.push(image.digest);
  }

  for (const [k, days] of [40, 0].entries()) {
    const children: Descriptor[] = [];
    const pushed: PushedImage[] = [];
    for (const architecture of ['amd64', 'arm64']) {
      const child = await pushImage(target, repository, null, {
        created: at(days).toISOString(),
        format: 'oci',
        architecture,
        layers: [{ seed: `ci-nightly-${k}-${architecture}`, size }],
      });
      pushed.push(child);
      children.push({
        mediaType: child.mediaType,
        digest: child.digest,
        size: child.size,
        platform: { architecture, os: 'linux' },
      });
    }
    const index = await pushIndex(target, repository, 'nightly', children);
    if (days > 0) {
      for (const d of [...pushed.map((p) => p.digest), index.digest])
        target.setPushedAt(repository, d, at(days));
      expired.push(index.digest, ...pushed.map((p) => p.digest));
      freedLayers.push(...pushed.map((p) => p.layers[0]!.digest));
    } else kept.push(...pushed.map((p) => p.digest));
  }
  return { repository, expired, kept, freedLayers };
}
