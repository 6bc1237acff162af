// Untagged history counted apart from the tags: what a plan deletes of it, and what became of those deletes in a
// run's report. The Lambda logs and publishes these figures; the CLI's apply report names them.
import type { Plan, Report } from './model.ts';

export interface UntaggedOutcome {
  /** Untagged manifests the plan deletes (its untagged sections' `deleted`). */
  readonly planned: number;
  /** The plan's estimate of the bytes that deleting them frees beyond the tags' deletions. */
  readonly plannedBytes: number;
  /** Deleted, or already gone when the run got to them. */
  readonly deleted: number;
  /** Their DELETE failed. */
  readonly failed: number;
  /** Not attempted: the repository was skipped by the re-check, a deletion they wait for failed, or the run stopped. */
  readonly skipped: number;
  /**
   * The estimate for the repositories whose deletes all went through (the rule the report's
   * `bytesFreedEstimate` follows); garbage-collect frees it.
   */
  readonly bytesFreedEstimate: number;
}

/**
 * Untagged history in a plan and, after the deletes, in their report. Undefined when the plan had no complete
 * storage listing: then it judged no untagged manifest at all.
 */
export function untaggedOutcome(plan: Plan, report?: Report): UntaggedOutcome | undefined {
  if (plan.summary.untaggedDeleted === undefined) return undefined;
  let planned = 0;
  let plannedBytes = 0;
  let deleted = 0;
  let failed = 0;
  let bytesFreedEstimate = 0;
  const entries = new Map<string, Report['entries'][number][]>();
  for (const e of report?.entries ?? []) {
    const list = entries.get(e.repository);
    if (list) list.push(e);
    else entries.set(e.repository, [e]);
  }
  for (const repo of plan.repositories) {
    const history = repo.untagged;
    if (!history || history.deleted.length === 0) continue;
    planned += history.deleted.length;
    plannedBytes += history.bytesFreed;
    const mine = entries.get(repo.name) ?? [];
    const outcome = new Map(mine.filter((e) => e.target === 'manifest').map((e) => [e.reference, e.outcome]));
    let gone = 0;
    for (const u of history.deleted) {
      const o = outcome.get(u.digest);
      if (o === 'deleted' || o === 'already-gone') gone += 1;
      else if (o === 'failed') failed += 1;
    }
    deleted += gone;
    if (
      gone === history.deleted.length &&
      !mine.some((e) => e.outcome === 'failed' || e.outcome === 'skipped')
    )
      bytesFreedEstimate += history.bytesFreed;
  }
  return {
    planned,
    plannedBytes,
    deleted,
    failed,
    skipped: report ? planned - deleted - failed : 0,
    bytesFreedEstimate,
  };
}

/**
 * Of a run's deletions, the sweep's: the manifests earlier two-phase runs untagged whose undo window had passed
 * (the plan's journal decisions marked `swept`), with the children and referrers that went after them, and with
 * undo window 0 what this run untagged and then deleted itself (the plan's `deferred`); counted when the report
 * has them deleted (or already gone).
 */
export function sweptCount(plan: Plan, report: Report): number {
  const swept = new Map<string, Set<string>>();
  for (const repo of plan.repositories) {
    const mine = new Set((repo.journal ?? []).filter((j) => j.swept).map((j) => j.digest));
    for (const m of repo.deleteManifests) if (m.deferred) mine.add(m.digest);
    if (mine.size === 0) continue;
    // Deletions are in dependency order: what waits for a swept manifest comes after it.
    for (const m of repo.deleteManifests) if (m.after.some((a) => mine.has(a))) mine.add(m.digest);
    swept.set(repo.name, mine);
  }
  if (swept.size === 0) return 0;
  let count = 0;
  for (const e of report.entries) {
    if (e.target !== 'manifest' || (e.outcome !== 'deleted' && e.outcome !== 'already-gone')) continue;
    if (swept.get(e.repository)?.has(e.reference)) count += 1;
  }
  return count;
}
