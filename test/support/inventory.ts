// Builds inventories for planner tests from a compact description: manifests named by short ids, repositories
// as tag → id maps. Digests are real sha256 strings derived from the ids.
import { createHash } from 'node:crypto';
import type {
  HistoryStatus,
  Inventory,
  ManifestInfo,
  RepositoryInventory,
  ScanProblem,
} from '../../lambda/core/model.ts';

export const dg = (id: string): string => 'sha256:' + createHash('sha256').update(id).digest('hex');

type Spec =
  | { image: string | null; layers?: string[]; size?: number; subject?: string }
  | { index: string[]; created?: string; subject?: string; attestations?: string[] }
  | { artifact: string; subject?: string; layers?: string[] };

export function img(created: string | null, layers: string[] = [], extra: { subject?: string } = {}): Spec {
  return { image: created, layers, ...extra };
}
export function idx(children: string[], extra: { attestations?: string[]; subject?: string } = {}): Spec {
  return { index: children, ...extra };
}
export function art(subject: string, layers: string[] = []): Spec {
  return { artifact: 'application/example', subject, layers };
}

export function manifest(id: string, spec: Spec): ManifestInfo {
  const digest = dg(id);
  if ('index' in spec) {
    return {
      digest,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      kind: 'index',
      size: 300,
      layers: [],
      children: [
        ...spec.index.map((c) => ({
          digest: dg(c),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
        })),
        ...(spec.attestations ?? []).map((c) => ({
          digest: dg(c),
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          attestation: true,
        })),
      ],
      ...(spec.subject ? { subject: dg(spec.subject) } : {}),
    };
  }
  if ('artifact' in spec) {
    return {
      digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      kind: 'artifact',
      size: 400,
      config: { digest: dg('empty-config'), size: 2, mediaType: 'application/vnd.oci.empty.v1+json' },
      layers: (spec.layers ?? []).map((l) => ({ digest: dg(`layer:${l}`), size: 1000 })),
      children: [],
      artifactType: spec.artifact,
      ...(spec.subject ? { subject: dg(spec.subject) } : {}),
    };
  }
  return {
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    kind: 'image',
    size: 500,
    config: { digest: dg(`config:${id}`), size: 100, mediaType: 'application/vnd.oci.image.config.v1+json' },
    layers: (spec.layers ?? []).map((l) => ({ digest: dg(`layer:${l}`), size: spec.size ?? 1000 })),
    children: [],
    ...(spec.image !== null ? { created: spec.image, createdSource: 'config' as const } : {}),
    ...(spec.subject ? { subject: dg(spec.subject) } : {}),
  };
}

export interface InventorySpec {
  manifests: Record<string, Spec>;
  /** repository → tag → manifest id (or a raw digest for referrer subjects). */
  repos: Record<string, Record<string, string>>;
  missing?: Record<string, string[]>;
  untaggedSubjects?: Record<string, string[]>;
  /**
   * A storage listing: repository → manifest id → push time, for every revision no tag points at directly.
   * Repositories it does not name have no untagged revisions. Absent: no listing.
   */
  untagged?: Record<string, Record<string, string>>;
  /**
   * The journal's entries as the scan found them: repository → entries (manifest id, when recorded, state
   * default 'present', what they still wait for by id).
   */
  journal?: Record<
    string,
    {
      id: string;
      recordedAt: string;
      state?: 'present' | 'gone' | 'unread';
      waitsFor?: string[];
      /** Two-phase: an earlier run untagged it (the sweep's candidate). */
      untagged?: boolean;
    }[]
  >;
  /** The listing's status (default: complete, from `untagged`). */
  history?: HistoryStatus;
  errors?: ScanProblem[];
}

/** The OCI fallback referrers tag of a manifest id. */
export const referrerTag = (id: string, suffix = ''): string => `sha256-${dg(id).slice(7)}${suffix}`;

export function inventory(spec: InventorySpec): Inventory {
  const manifests = new Map<string, ManifestInfo>();
  for (const [id, s] of Object.entries(spec.manifests)) manifests.set(dg(id), manifest(id, s));
  // Index ages come from children, as the scanner derives them.
  for (const [digest, info] of manifests) {
    if (info.kind !== 'index') continue;
    const ages = info.children
      .filter((c) => !c.attestation)
      .map((c) => manifests.get(c.digest)?.created)
      .filter((c): c is string => c !== undefined && Date.parse(c) >= Date.UTC(2000, 0, 1))
      .sort();
    const newest = ages[ages.length - 1];
    if (newest) manifests.set(digest, { ...info, created: newest, createdSource: 'children' });
  }
  const repositories: RepositoryInventory[] = Object.entries(spec.repos)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, tags]) => ({
      name,
      tags: Object.entries(tags)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([tag, id]) => ({ tag, digest: dg(id) })),
      missing: (spec.missing?.[name] ?? []).map(dg).sort(),
      untaggedSubjects: (spec.untaggedSubjects?.[name] ?? []).map(dg).sort(),
      ...(spec.untagged
        ? {
            untagged: Object.entries(spec.untagged[name] ?? {})
              .map(([id, pushedAt]) => ({ digest: dg(id), pushedAt }))
              .sort((a, b) => (a.digest < b.digest ? -1 : 1)),
          }
        : {}),
      ...(spec.journal?.[name]
        ? {
            journal: spec.journal[name].map((j) => ({
              digest: dg(j.id),
              recordedAt: j.recordedAt,
              state: j.state ?? ('present' as const),
              waitsFor: (j.waitsFor ?? []).map(dg),
              ...(j.untagged ? { untagged: true } : {}),
            })),
          }
        : {}),
    }));
  const history = spec.history ?? (spec.untagged ? { source: 'test', complete: true } : undefined);
  return {
    registry: 'http://registry.test',
    repositories,
    manifests,
    errors: spec.errors ?? [],
    warnings: [],
    ...(history ? { history } : {}),
  };
}
