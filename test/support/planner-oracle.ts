// What must stay, computed independently of the planner for its property tests: everything reachable from what
// stays (kept tags, tags removed alone, and with a listing the untagged revisions the plan does not delete),
// through index children and referrers whose subject stays.
import type { Inventory, ManifestInfo, Plan, RepositoryInventory } from '../../lambda/core/model.ts';

/** The digests and their descendants present in the repository. */
export function closureOf(
  roots: Iterable<string>,
  manifests: ReadonlyMap<string, ManifestInfo>,
  repo: Pick<RepositoryInventory, 'missing'>,
): Set<string> {
  const missing = new Set(repo.missing);
  const out = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (out.has(d) || missing.has(d)) continue;
    out.add(d);
    for (const c of manifests.get(d)?.children ?? []) stack.push(c.digest);
  }
  return out;
}

/** `repository: digest (why it must stay)` for every planned deletion of something that stays; [] when safe. */
export function deletedButStaying(inventory: Inventory, plan: Plan): string[] {
  const out: string[] = [];
  const history = inventory.history?.complete === true;
  for (const p of plan.repositories) {
    const repo = inventory.repositories.find((r) => r.name === p.name)!;
    const deleted = new Set(p.deleteManifests.map((m) => m.digest));
    const deletedTags = new Map(
      p.deleteTags.filter((t) => t.method === 'manifest').map((t) => [t.tag, t.digest]),
    );
    const roots = repo.tags.filter((t) => deletedTags.get(t.tag) !== t.digest).map((t) => t.digest);
    if (history) roots.push(...(repo.untagged ?? []).map((r) => r.digest).filter((d) => !deleted.has(d)));
    // Referrers of what stays stay too: a fixpoint over the repository's manifests.
    const known = [
      ...repo.tags.map((t) => t.digest),
      ...(history ? (repo.untagged ?? []).map((r) => r.digest) : []),
    ];
    let staying = closureOf(roots, inventory.manifests, repo);
    for (let grew = true; grew;) {
      grew = false;
      for (const d of known) {
        const subject = inventory.manifests.get(d)?.subject;
        if (!staying.has(d) && subject !== undefined && staying.has(subject)) {
          staying = closureOf([...staying, d], inventory.manifests, repo);
          grew = true;
        }
      }
    }
    for (const d of deleted) if (staying.has(d)) out.push(`${p.name}: ${d}`);
  }
  return out;
}
