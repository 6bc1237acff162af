// The live safety check right before a repository's deletes, whatever the plan says: what stays is derived again
// from the registry (every tag listed and resolved now, every untagged revision a complete listing shows), with
// everything it reaches, and no digest to delete may be among it.
import { errorMessage } from './errors.ts';
import type { HistorySource } from './history.ts';
import type { JournalEntry } from './journal.ts';
import { referrerSubject } from './manifest.ts';
import type { Inventory, ManifestInfo, Plan, RepositoryInventory, RepositoryPlan } from './model.ts';
import type { RegistryClient } from './ports.ts';
import { scanRegistry } from './scan.ts';

/**
 * What this run read of one repository. Manifests are immutable by digest, so what a digest references (its
 * children, its subject) is what was read; tags are mutable and are resolved again right before deleting.
 */
export interface LiveFacts {
  readonly manifests: ReadonlyMap<string, ManifestInfo>;
  /** The repository as this run read it; absent when it was not read (not in the catalog). */
  readonly repository: RepositoryInventory | undefined;
  /** Whether `repository.untagged` comes from a complete storage listing. */
  readonly history: boolean;
  /** Reads of this repository (or of the catalog) that failed in this run. */
  readonly errors: readonly string[];
  /**
   * What the journal names in this repository and the registry still holds: an interrupted run's leftovers,
   * which the plan may finish when nothing that stays reaches them. Absent or empty without a journal.
   */
  readonly journal?: ReadonlySet<string>;
}

/** The facts of each repository of an inventory read in this run. */
export function factsOf(inventory: Inventory): (repository: string) => LiveFacts {
  const byName = new Map(inventory.repositories.map((r) => [r.name, r]));
  const history = inventory.history?.complete === true;
  return (name) => ({
    manifests: inventory.manifests,
    repository: byName.get(name),
    history,
    journal: new Set(
      (byName.get(name)?.journal ?? []).filter((j) => j.state === 'present').map((j) => j.digest),
    ),
    errors: inventory.errors
      .filter((e) => e.repository === undefined || e.repository === name)
      .map((e) => [e.reference, e.message].filter(Boolean).join(': ')),
  });
}

/**
 * Read again, now, the repositories a plan made earlier changes (a saved plan): their tags, manifests and index
 * children, and their untagged history when a listing is given. No ages: the check needs what stays, not why.
 */
export async function rereadForCheck(
  client: RegistryClient,
  plan: Plan,
  history?: HistorySource,
  journal?: readonly JournalEntry[],
): Promise<Inventory> {
  const names = plan.repositories
    .filter((r) => r.deleteManifests.length > 0 || r.deleteTags.length > 0 || (r.dangling ?? []).length > 0)
    .map((r) => r.name);
  if (names.length === 0) {
    return { registry: client.baseUrl, repositories: [], manifests: new Map(), errors: [], warnings: [] };
  }
  // Repository names hold no glob metacharacters (distribution allows [a-z0-9._/-]); any other name matches nothing.
  const literal = names.filter((n) => /^[a-z0-9._/-]+$/.test(n));
  try {
    return await scanRegistry(client, {
      repositories: literal,
      ages: false,
      ...(history ? { history } : {}),
      ...(journal ? { journal } : {}),
    });
  } catch (err) {
    return {
      registry: client.baseUrl,
      repositories: [],
      manifests: new Map(),
      errors: [{ message: `re-reading the registry failed: ${errorMessage(err)}` }],
      warnings: [],
    };
  }
}

/**
 * Why deleting this repository's plan would take something that stays; empty when it would not. Pure.
 * `tags`: every tag the registry lists now, with the digest it resolves to now (null: its manifest is gone).
 */
export function liveConflicts(
  plan: RepositoryPlan,
  tags: ReadonlyMap<string, string | null>,
  facts: LiveFacts,
): string[] {
  const deleting = new Set(plan.deleteManifests.map((m) => m.digest));
  if (deleting.size === 0) return [];
  if (facts.errors.length > 0) return [`re-reading it failed (${facts.errors[0]})`];
  const repo = facts.repository;
  if (!repo) return ['it was not read in this run (it is not in the catalog now)'];
  const missing = new Set(repo.missing);
  const children = (digest: string): string[] =>
    (facts.manifests.get(digest)?.children ?? []).map((c) => c.digest).filter((d) => !missing.has(d));

  // A tag goes only with the manifest the plan deletes it with, and only if it still points there.
  const goesWith = new Map(
    plan.deleteTags.filter((t) => t.method === 'manifest').map((t) => [t.tag, t.digest]),
  );
  const out: string[] = [];
  const stays = new Map<string, string>();
  const gone: string[] = [];
  const pending: [string, string][] = [];
  for (const [tag, digest] of tags) {
    if (digest === null) continue;
    if (goesWith.get(tag) === digest && deleting.has(digest)) gone.push(digest);
    else pending.push([digest, `tag ${tag}`]);
  }
  const untagged = facts.history ? (repo.untagged ?? []) : [];
  for (const r of untagged) if (!deleting.has(r.digest)) pending.push([r.digest, `untagged ${r.digest}`]);

  // Everything what stays reaches: an index's children, transitively.
  while (pending.length > 0) {
    const [digest, by] = pending.pop()!;
    if (stays.has(digest)) continue;
    stays.set(digest, by);
    if (!facts.manifests.has(digest)) {
      out.push(`${digest} (${by}) was not read in this run, so what it references is unknown`);
      continue;
    }
    for (const c of children(digest)) if (!stays.has(c)) pending.push([c, by]);
  }

  // What the deletes may take: the manifests of the tags that go and their children, and untagged history.
  const accounted = new Set<string>();
  const reach = (roots: Iterable<string>): void => {
    const stack = [...roots];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (accounted.has(d) || !deleting.has(d)) continue;
      accounted.add(d);
      stack.push(...children(d));
    }
  };
  reach(gone);
  reach(untagged.map((r) => r.digest));
  reach(facts.journal ?? []);

  const referrerTags = new Map<string, string[]>();
  for (const [tag, digest] of tags) {
    const subject = referrerSubject(tag);
    if (digest !== null && subject !== undefined)
      referrerTags.set(digest, [...(referrerTags.get(digest) ?? []), subject]);
  }
  for (const m of plan.deleteManifests) {
    const d = m.digest;
    const by = stays.get(d);
    if (by !== undefined) {
      out.push(`${d} stays (${by} reaches it) but the plan deletes it`);
      continue;
    }
    // A referrer stays while its subject stays.
    const subjects = [facts.manifests.get(d)?.subject, ...(referrerTags.get(d) ?? [])];
    const kept = subjects.find((s) => s !== undefined && stays.has(s));
    if (kept !== undefined) {
      out.push(`${d} refers to ${kept}, which stays (${stays.get(kept)}), but the plan deletes it`);
      continue;
    }
    if (!accounted.has(d)) {
      out.push(
        facts.history
          ? `${d} is neither reached by a tag the plan deletes nor untagged history of the repository, nor left by an interrupted run (the journal)`
          : `${d} is reached by no tag the plan deletes, nor left by an interrupted run (the journal); untagged manifests are deleted only with a storage listing (--storage)`,
      );
    }
  }
  return out;
}
