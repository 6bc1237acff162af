// Random inventories and policies for the planner's property tests: images sharing layers, indexes sharing
// children (some missing), tags sharing digests, dangling tags, placeholders, referrers tagged by the OCI fallback
// scheme or untagged, and with a storage listing every revision's push time. Also what applying a plan does.
import fc from 'fast-check';
import { closureOf } from './planner-oracle.ts';
import type {
  Inventory,
  ManifestInfo,
  Plan,
  RepositoryInventory,
  Revision,
} from '../../lambda/core/model.ts';
import { validatePolicy, type Policy } from '../../lambda/core/policy.ts';
import { dg, manifest, referrerTag } from './inventory.ts';

export const NOW = new Date('2026-11-28T12:00:00Z');
const DAY = 86_400_000;

/** A repository as the registry holds it: its revisions (push times) and its tags. */
export interface WorldRepository {
  readonly name: string;
  readonly revisions: ReadonlyMap<string, string>;
  readonly tags: ReadonlyMap<string, string>;
  /** Listed tags whose manifest is gone. */
  readonly dangling: readonly string[];
}

/** What a registry holds: the manifests by digest (shared, as content-addressed) and its repositories. */
export interface World {
  readonly manifests: ReadonlyMap<string, ManifestInfo>;
  readonly repositories: readonly WorldRepository[];
  /** Whether a complete storage listing is available. */
  readonly listing: boolean;
}

const daysAgo = (d: number): string => new Date(NOW.getTime() - d * DAY).toISOString();

const arbDays = fc.oneof(fc.integer({ min: 0, max: 120 }), fc.constant(3), fc.constant(30));

const arbRepository = (name: string) =>
  fc.record({
    name: fc.constant(name),
    images: fc.array(
      fc.record({
        // null: no creation time; 9000: before 2000 (reproducible builds stamp 1970).
        created: fc.oneof({ weight: 6, arbitrary: arbDays }, fc.constant(null), fc.constant(9000)),
        layers: fc.uniqueArray(fc.integer({ min: 0, max: 5 }), { maxLength: 2 }),
      }),
      { minLength: 1, maxLength: 7 },
    ),
    indexes: fc.array(
      fc.record({
        children: fc.uniqueArray(fc.nat(20), { minLength: 1, maxLength: 3 }),
        missing: fc.boolean(),
        // Sometimes a subject on an index: it then stays while its subject stays, whatever its tag.
        subject: fc.option(fc.nat(20), { freq: 3 }),
      }),
      { maxLength: 3 },
    ),
    referrers: fc.array(fc.record({ subject: fc.nat(20), tagged: fc.boolean() }), { maxLength: 3 }),
    placeholders: fc.nat(1),
    // Each tag points at one of the repository's manifests (images, indexes, referrers' own tags aside).
    tags: fc.array(
      fc.tuple(fc.constantFrom('latest', 'main', 'v1', 'v1.1', 'v2', 'dev', 'x', 'y'), fc.nat(20)),
      {
        maxLength: 8,
      },
    ),
    dangling: fc.uniqueArray(fc.constantFrom('gone1', 'gone2'), { maxLength: 1 }),
    pushed: fc.array(arbDays, { minLength: 20, maxLength: 20 }),
  });

export const arbWorld: fc.Arbitrary<World> = fc
  .record({
    repos: fc.tuple(arbRepository('team/app'), fc.option(arbRepository('base/img'), { freq: 3 })),
    listing: fc.boolean(),
  })
  .map(({ repos, listing }) => {
    const manifests = new Map<string, ManifestInfo>();
    const repositories: WorldRepository[] = [];
    for (const r of repos) {
      if (r === null) continue;
      const ids: string[] = [];
      const add = (id: string, info: ManifestInfo): void => {
        manifests.set(info.digest, info);
        ids.push(id);
      };
      const missing = new Set<string>();
      r.images.forEach((im, i) => {
        const id = `${r.name}:img${i}`;
        const created =
          im.created === null ? null : im.created === 9000 ? '1970-01-01T00:00:00Z' : daysAgo(im.created);
        add(id, manifest(id, { image: created, layers: im.layers.map(String) }));
      });
      const images = [...ids];
      r.indexes.forEach((ix, i) => {
        const id = `${r.name}:idx${i}`;
        const children = ix.children.map((c) => images[c % images.length]!);
        if (ix.missing) {
          // A child the registry does not have (a partial push, or an index pushed without its platforms).
          const lost = `${r.name}:lost${i}`;
          children.push(lost);
          missing.add(dg(lost));
        }
        const subject = ix.subject === null ? undefined : ids[ix.subject % ids.length];
        add(id, manifest(id, { index: [...new Set(children)], ...(subject ? { subject } : {}) }));
      });
      const tags = new Map<string, string>();
      const referrerIds: string[] = [];
      r.referrers.forEach((ref, i) => {
        const subjectId = ids[ref.subject % ids.length]!;
        const id = `${r.name}:ref${i}`;
        add(id, manifest(id, { artifact: 'application/example', subject: subjectId }));
        referrerIds.push(id);
        if (ref.tagged) tags.set(referrerTag(subjectId, `.sig${i}`), dg(id));
      });
      for (let i = 0; i < r.placeholders; i++) {
        const id = `${r.name}:placeholder${i}`;
        const info = manifest(id, { index: [] });
        add(id, { ...info, placeholder: true });
        tags.set(`left${i}`, info.digest);
      }
      const targets = ids.filter((id) => !referrerIds.includes(id) && !id.includes('placeholder'));
      for (const [tag, n] of r.tags) tags.set(tag, dg(targets[n % targets.length]!));
      const revisions = new Map<string, string>();
      ids.forEach((id, i) => revisions.set(dg(id), daysAgo(r.pushed[i % r.pushed.length]!)));
      for (const m of missing) revisions.delete(m);
      repositories.push({ name: r.name, revisions, tags, dangling: r.dangling.filter((t) => !tags.has(t)) });
    }
    return { manifests, repositories, listing };
  });

/** A policy over those repositories: protect, keep by count, age or name, and untagged history. */
export const arbPolicy: fc.Arbitrary<Policy> = fc
  .array(
    fc.record({
      repositories: fc.constantFrom(['**'], ['team/**'], ['base/**'], ['team/app', 'base/img']),
      protect: fc.constantFrom(false, false, false, true),
      keep: fc.record(
        {
          newest: fc.nat(3),
          youngerThanDays: fc.integer({ min: 0, max: 60 }),
          tags: fc.constantFrom(['latest'], ['v1*'], ['main', 'dev']),
        },
        { requiredKeys: [] },
      ),
      untagged: fc.option(fc.record({ deleteAfterDays: fc.integer({ min: 1, max: 60 }) }), { freq: 2 }),
    }),
    { minLength: 1, maxLength: 3 },
  )
  .map((rules) =>
    validatePolicy(
      {
        rules: rules.map((r) =>
          r.protect
            ? { repositories: r.repositories, protect: true }
            : {
                repositories: r.repositories,
                keep: Object.keys(r.keep).length > 0 ? r.keep : { newest: 0 },
                ...(r.untagged ? { untagged: r.untagged } : {}),
              },
        ),
      },
      'property',
    ),
  );

/** The inventory the scanner would build of this world (untagged revisions only with a listing). */
export function inventoryOf(world: World): Inventory {
  const repositories: RepositoryInventory[] = world.repositories.map((r) => {
    const tagRefs = [...r.tags]
      .filter(([, digest]) => r.revisions.has(digest))
      .map(([tag, digest]) => ({ tag, digest }))
      .sort((a, b) => (a.tag < b.tag ? -1 : 1));
    const missing = new Set<string>();
    for (const d of r.revisions.keys())
      for (const c of world.manifests.get(d)?.children ?? [])
        if (!r.revisions.has(c.digest)) missing.add(c.digest);
    const base: RepositoryInventory = {
      name: r.name,
      tags: tagRefs,
      missing: [...missing].sort(),
      untaggedSubjects: [],
    };
    const tagged = new Set(tagRefs.map((t) => t.digest));
    const reached = closureOf(tagged, world.manifests, base);
    const untaggedSubjects = [
      ...new Set(
        tagRefs
          .map((t) => /^sha256-([a-f0-9]{64})/.exec(t.tag)?.[1])
          .filter((hex): hex is string => hex !== undefined)
          .map((hex) => `sha256:${hex}`)
          .filter((s) => r.revisions.has(s) && !reached.has(s)),
      ),
    ].sort();
    const dangling = [
      ...r.dangling,
      ...[...r.tags].filter(([, d]) => !r.revisions.has(d)).map(([t]) => t),
    ].sort();
    const untagged: Revision[] = [...r.revisions]
      .filter(([d]) => !tagged.has(d))
      .map(([digest, pushedAt]) => ({ digest, pushedAt }))
      .sort((a, b) => (a.digest < b.digest ? -1 : 1));
    return {
      ...base,
      untaggedSubjects,
      ...(dangling.length > 0 ? { dangling } : {}),
      ...(world.listing ? { untagged } : {}),
    };
  });
  return {
    registry: 'http://registry.test',
    repositories,
    manifests: world.manifests,
    errors: [],
    warnings: [],
    ...(world.listing ? { history: { source: 'test', complete: true } } : {}),
  };
}

/** The world after the plan was carried out: a DELETE by digest takes every tag on it, as distribution does. */
export function applyInMemory(world: World, plan: Plan): World {
  return {
    ...world,
    repositories: world.repositories.map((r) => {
      const p = plan.repositories.find((x) => x.name === r.name);
      if (!p) return r;
      const gone = new Set(p.deleteManifests.map((m) => m.digest));
      const untag = new Set(p.deleteTags.map((t) => t.tag));
      const revisions = new Map([...r.revisions].filter(([d]) => !gone.has(d)));
      const tags = new Map([...r.tags].filter(([tag, d]) => !untag.has(tag) && !gone.has(d)));
      return { ...r, revisions, tags, dangling: p.action === 'cleaned' ? [] : r.dangling };
    }),
  };
}
