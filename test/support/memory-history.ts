// The storage listing of a MemoryRegistry, for the core's two-phase tests: every manifest with the push time the
// test sets, with or without the point lookup of one revision link that the sweep asks right before each DELETE.
import type { HistorySource } from '../../lambda/core/history.ts';
import { MemoryRegistry } from './memory-registry.ts';

export interface MemoryHistoryOptions {
  /** The push time of a manifest `pushed` does not name. */
  readonly old: string;
  /** Offer HistorySource.revisionTime (the filesystem's and S3's point lookup); recorded in `lookups`. */
  readonly lookup?: boolean;
  /** Makes the point lookup throw, as an S3 HeadObject refused would. */
  readonly lookupFails?: () => boolean;
}

/**
 * The registry's storage listing: every manifest of each repository, pushed when `pushed` says (else `old`).
 * The point lookup reads the same: null once the registry no longer holds the manifest.
 */
export function memoryHistory(
  registry: MemoryRegistry,
  pushed: Map<string, string>,
  options: MemoryHistoryOptions,
): HistorySource & { lookups: string[] } {
  const lookups: string[] = [];
  const time = (digest: string): string => pushed.get(digest) ?? options.old;
  return {
    source: 'memory',
    lookups,
    list: () =>
      Promise.resolve({
        source: 'memory',
        repositories: new Map(
          registry.repositoryNames().map((name) => [
            name,
            registry
              .manifestsOf(name)
              .sort()
              .map((digest) => ({ digest, pushedAt: time(digest) })),
          ]),
        ),
      }),
    ...(options.lookup
      ? {
          revisionTime: (repository: string, digest: string): Promise<string | null> => {
            lookups.push(digest);
            if (options.lookupFails?.()) return Promise.reject(new Error('AccessDenied: s3:GetObject'));
            return Promise.resolve(registry.hasManifest(repository, digest) ? time(digest) : null);
          },
        }
      : {}),
  };
}

/**
 * The two-phase tests' registry at `now`: in app/x, `new` (a day old) stays under "keep newest 1"; an index `old`
 * (also `old-alias`) of two platform images and an image `plain`, weeks old, are what a run untags. The listing
 * has every manifest pushed 30 days before `now` unless `pushed` says otherwise.
 */
export function seedUntagScenario(
  tagDelete: boolean,
  now: Date,
  options: Omit<MemoryHistoryOptions, 'old'> = {},
) {
  const daysAgo = (n: number): string => new Date(now.getTime() - n * 86_400_000).toISOString();
  const registry = new MemoryRegistry({ tagDelete });
  const layer = (seed: string) => [{ seed, size: 100 }];
  registry.addImage('app/x', 'new', { created: daysAgo(1), layers: layer('n') });
  const c1 = registry.addImage('app/x', null, { created: daysAgo(40), layers: layer('c1') });
  const c2 = registry.addImage('app/x', null, {
    created: daysAgo(40),
    layers: layer('c2'),
    architecture: 'arm64',
  });
  const ix = registry.addIndex('app/x', 'old', [c1, c2]);
  registry.tag('app/x', 'old-alias', ix.digest);
  const plain = registry.addImage('app/x', 'plain', { created: daysAgo(50), layers: layer('p') });
  const pushed = new Map<string, string>();
  const history = memoryHistory(registry, pushed, { old: daysAgo(30), ...options });
  return { registry, c1, c2, ix, plain, pushed, history };
}
