// Human-readable renderings of a plan and a report, for the CLI and the logs. The JSON documents are the
// complete record; these show every deletion and summarise what stays.
import { createdMillis } from './manifest.ts';
import type { KeptTag, Plan, Report, RepositoryPlan, UntaggedDecision } from './model.ts';
import { plural } from './plural.ts';
import { untaggedOutcome } from './untagged-outcome.ts';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export { plural };
export const short = (digest: string): string =>
  digest.replace(/^(sha256:)?([0-9a-f]{12})[0-9a-f]*$/, 'sha256:$2');

/** Whether the repository's rule judged tags by age: only then was a missing date looked for. */
function agesRead(repo: RepositoryPlan): boolean {
  // Under an age rule a tag without a usable date is always kept as unknown-age, so the reasons tell.
  return repo.kept.some((k) =>
    k.reasons.some((r) => r.startsWith('newest:') || r === 'younger-than-days' || r === 'unknown-age'),
  );
}

/**
 * A tag's date as the plan shows it: the day, or why there is none. Protected and unmatched repositories and
 * name-only rules never read image configs, so there a missing date was not read rather than absent.
 */
export function tagDate(repo: RepositoryPlan, created: string | undefined): string {
  if (createdMillis(created) !== undefined) return created!.slice(0, 10);
  if (created !== undefined) return 'no usable date';
  if (repo.action === 'protected') return 'not read (protected)';
  if (repo.action === 'untouched') return 'not read (no rule)';
  return agesRead(repo) ? 'no usable date' : 'not read (name-only rule)';
}

/** Kept tags newest first, then in natural order (r5 before r10); tags without a usable date last. */
export function keptInOrder(kept: readonly KeptTag[]): KeptTag[] {
  const ms = (k: KeptTag): number => createdMillis(k.created) ?? -Infinity;
  return [...kept].sort((a, b) => ms(b) - ms(a) || NATURAL.compare(a.tag, b.tag));
}

const NATURAL = new Intl.Collator('en', { numeric: true });

/**
 * The plan as text. `errors: false` leaves the errors out (the CLI prints them to stderr with formatPlanErrors);
 * a plan with no repository and errors is then empty.
 */
export function formatPlan(plan: Plan, options: { verbose?: boolean; errors?: boolean } = {}): string {
  const errors = options.errors ?? true;
  if (plan.repositories.length === 0 && plan.errors.length > 0) {
    // Nothing could be listed: the errors are the whole story.
    return errors ? formatPlanErrors(plan) : '';
  }
  const lines: string[] = [];
  lines.push(
    `Plan for ${plan.registry} at ${plan.generatedAt}${plan.complete ? '' : '  [INCOMPLETE: will not be applied]'}`,
  );
  lines.push('');
  const now = Date.parse(plan.generatedAt);
  for (const repo of plan.repositories)
    lines.push(...formatRepository(repo, options.verbose ?? false, now, plan.undo?.until));
  const s = plan.summary;
  const history =
    s.untaggedDeleted === undefined
      ? ''
      : ` (${s.untaggedDeleted} of them untagged history, about ${formatBytes(s.untaggedBytesFreed ?? 0)} of the ` +
        `space; ${s.untaggedKept ?? 0} untagged kept)`;
  lines.push(
    `Summary: ${plural(s.repositories, 'repository', 'repositories')}, ${plural(s.tags, 'tag')}: ${s.tagsKept} kept, ` +
      `${s.tagsDeleted} to delete (${(s.deleteFraction * 100).toFixed(1)}%), ` +
      `${plural(s.manifestsDeleted, 'manifest')} to delete${history}, ` +
      (plan.undo === undefined
        ? `about ${formatBytes(s.bytesFreed)} freed after garbage-collect.`
        : `about ${formatBytes(s.bytesPending ?? 0)} untagged tonight, reclaimed after ${when(plan.undo.until)}; ` +
          `about ${formatBytes(s.bytesFreed)} reclaimed tonight (the sweep, freed after garbage-collect).`),
  );
  const mode = applyMode(plan);
  if (mode !== undefined) lines.push(mode);
  if (plan.history) {
    lines.push(
      plan.history.complete
        ? `Untagged history listed from ${plan.history.source}.`
        : `Untagged history from ${plan.history.source} could not be listed: ${plan.history.problem ?? 'incomplete'}; ` +
            `no untagged manifest is deleted in this run.`,
    );
  }
  if (plan.warnings.length > 0) {
    lines.push('', `Warnings (${plan.warnings.length}):`);
    for (const w of plan.warnings)
      lines.push(
        `  ${w.repository ? `${w.repository}: ` : ''}${w.reference ? `${w.reference}: ` : ''}${w.message}`,
      );
  }
  if (errors && plan.errors.length > 0) lines.push('', formatPlanErrors(plan).trimEnd());
  return lines.join('\n') + '\n';
}

/**
 * Why the journal's entry goes tonight: the sweep of what an earlier run untagged, or what an interrupted run left
 * (the planner's own words, from the repository's journal decisions).
 */
export function leftoverReason(repo: RepositoryPlan, digest: string): string {
  const reason = repo.journal?.find((j) => j.digest === digest)?.reason;
  return reason === undefined
    ? 'left by an interrupted run (journal); nothing that stays references it'
    : `journal: ${reason}`;
}

/** An ISO 8601 time as the text shows it: to the minute, in UTC. */
export const when = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

/** How apply carries the plan out: two-phase with its undo window, or by digest with the race that leaves. */
export function applyMode(plan: Plan): string | undefined {
  const u = plan.undo;
  const pending = plan.summary.manifestsPending ?? 0;
  if (u === undefined) {
    if (!plan.repositories.some((r) => r.deleteManifests.some((m) => m.tags.length > 0))) return undefined;
    return (
      'No storage listing: apply deletes by digest, which removes every tag on the manifest. A promotion pushed ' +
      "between apply's re-check of its repository and the DELETE (the same manifest under a new tag) loses its " +
      'tag, and nothing can bring it back. With a listing (--storage) apply untags instead.'
    );
  }
  if (pending === 0) return undefined;
  return u.hours === 0
    ? `Two-phase, undo window 0: apply removes the tags, then this same run deletes the ${plural(pending, 'manifest')} ` +
        'left untagged, each only if still untagged at a re-check and not pushed again.'
    : `Two-phase: apply removes the tags tonight and leaves ${plural(pending, 'manifest')} untagged; restore ` +
        `brings them back until ${when(u.until)} (${u.hours} h), then a later run's sweep deletes each one still ` +
        'untagged and not pushed again.';
}

/** The plan's errors (why it is incomplete), or '' when there are none. */
export function formatPlanErrors(plan: Plan): string {
  if (plan.errors.length === 0) return '';
  const list = plan.errors.map(
    (e) => `  ${e.repository ? `${e.repository}: ` : ''}${e.reference ? `${e.reference}: ` : ''}${e.message}`,
  );
  if (plan.repositories.length === 0) {
    return `No plan for ${plan.registry}: the registry could not be read.\n${list.join('\n')}\n`;
  }
  return `Errors (${plan.errors.length}): the plan is incomplete and will not be applied:\n${list.join('\n')}\n`;
}

/** Why an untagged manifest stays or goes, in words. */
export function untaggedReason(u: UntaggedDecision, now: number): string {
  const age = Math.floor((now - Date.parse(u.pushedAt)) / 86_400_000);
  const ago = Number.isNaN(age)
    ? 'at an unknown time'
    : age < 1
      ? 'less than a day ago'
      : `${plural(age, 'day')} ago`;
  const by = u.by === undefined ? '' : ` ${u.by.startsWith('sha256:') ? short(u.by) : u.by}`;
  switch (u.reason) {
    case 'expired':
      return `pushed ${ago}; nothing that stays references it`;
    case 'young':
      return `pushed ${ago}`;
    case 'referenced':
      return u.by !== undefined && !u.by.startsWith('sha256:')
        ? `platform image of${by}`
        : u.by === undefined
          ? 'used by a manifest that stays'
          : `used by${by}`;
    case 'subject-kept':
      return `referrer of${by}, which stays`;
    case 'protected':
      return 'protected repository';
    case 'no-rule':
      return 'no rule matches the repository';
    case 'no-untagged-rule':
      return 'the rule has no untagged block';
    case 'undo-window':
      return 'untagged by an earlier run; it can be restored until its undo window ends';
  }
}

function formatRepository(
  repo: RepositoryPlan,
  verbose: boolean,
  now: number,
  until: string | undefined,
): string[] {
  const head =
    repo.action === 'untouched'
      ? `${repo.name}: no rule matches; ${plural(repo.kept.length, 'tag')} left untouched`
      : repo.action === 'protected'
        ? `${repo.name}: protected by rule #${repo.rule}; ${plural(repo.kept.length, 'tag')} kept`
        : `${repo.name}: rule #${repo.rule}; keep ${plural(repo.kept.length, 'tag')}, delete ${plural(repo.deleteTags.length, 'tag')} and ` +
          `${plural(repo.deleteManifests.length, 'manifest')}, about ${formatBytes(repo.bytesFreed)} freed` +
          (until === undefined || !repo.deleteManifests.some((m) => m.deferred)
            ? ''
            : ` tonight, about ${formatBytes(repo.bytesPending ?? 0)} after ${when(until)}`);
  const lines = [head];
  const untagged = repo.untagged;
  if (untagged && (untagged.deleted.length > 0 || untagged.kept.length > 0)) {
    lines.push(
      `  untagged: delete ${untagged.deleted.length}, keep ${untagged.kept.length}` +
        (verbose || untagged.kept.length === 0
          ? ''
          : `  (${countReasons(untagged.kept, now)}; --verbose lists them)`),
    );
  }
  const journal = repo.journal ?? [];
  if (journal.length > 0) {
    const n = (o: string) => journal.filter((j) => j.outcome === o).length;
    lines.push(
      `  journal (what earlier runs untagged or left): finish ${n('finish')}, drop ${n('drop')}, wait ${n('wait')}`,
    );
    for (const j of journal) {
      if (j.outcome === 'finish' && !verbose) continue;
      if (j.outcome === 'drop' && !verbose) continue;
      lines.push(`  ${j.outcome.padEnd(6)}  ${'(journal)'.padEnd(28)} ${short(j.digest)}  ${j.reason}`);
    }
  }
  if (repo.action === 'cleaned' || verbose) {
    if (verbose) {
      for (const k of keptInOrder(repo.kept)) {
        lines.push(
          `  keep    ${k.tag.padEnd(28)} ${short(k.digest)}  ${tagDate(repo, k.created).padEnd(10)}  ${k.reasons.join(', ')}`,
        );
      }
    } else if (repo.kept.length > 0) {
      lines.push(`  keep    ${keptSummary(repo.kept)}  (--verbose lists them)`);
    }
    const sharedWith = new Map(repo.kept.map((k) => [k.digest, k.tag]));
    const deferred = new Set(repo.deleteManifests.filter((m) => m.deferred).map((m) => m.digest));
    const later = until === undefined ? '' : `untagged tonight, reclaimed after ${when(until)}`;
    for (const t of repo.deleteTags) {
      const how =
        t.method === 'tag-only'
          ? `tag only: its image stays for ${sharedWith.get(t.digest) ?? 'a kept index that uses it'}`
          : deferred.has(t.digest)
            ? `${t.referrer ? 'referrer of a deleted image, ' : ''}${later}`
            : t.referrer
              ? 'referrer of a deleted image'
              : 'with its manifest';
      lines.push(
        `  DELETE  ${t.tag.padEnd(28)} ${short(t.digest)}  ${tagDate(repo, t.created).padEnd(10)}  ${how}`,
      );
    }
    for (const m of repo.deleteManifests.filter((d) => d.role !== 'root' && d.role !== 'untagged')) {
      const why =
        m.role === 'leftover'
          ? `  ${''.padEnd(10)}  ${leftoverReason(repo, m.digest)}`
          : m.deferred
            ? `  ${''.padEnd(10)}  goes with its ${m.role === 'child' ? 'index' : 'subject'}: ${later}`
            : '';
      lines.push(`  DELETE  ${`(${m.role} ${m.kind})`.padEnd(28)} ${short(m.digest)}${why}`);
    }
    for (const u of untagged?.deleted ?? []) {
      lines.push(
        `  DELETE  ${`(untagged ${u.kind})`.padEnd(28)} ${short(u.digest)}  ${u.pushedAt.slice(0, 10).padEnd(10)}  ${untaggedReason(u, now)}`,
      );
    }
    if (verbose) {
      for (const u of untagged?.kept ?? []) {
        lines.push(
          `  keep    ${`(untagged ${u.kind})`.padEnd(28)} ${short(u.digest)}  ${u.pushedAt.slice(0, 10).padEnd(10)}  ${untaggedReason(u, now)}`,
        );
      }
    }
    if (repo.action === 'cleaned') {
      for (const tag of repo.dangling ?? []) {
        lines.push(
          `  DELETE  ${tag.padEnd(28)} ${'-'.padEnd(12)}  ${''.padEnd(10)}  tag only: its manifest is already gone`,
        );
      }
    }
  }
  for (const w of repo.warnings) lines.push(`  warning: ${w}`);
  lines.push('');
  return lines;
}

/**
 * Why the kept tags stay, apart from their count (the repository's line counts each tag once): a tag kept for
 * several reasons is counted under each, so the reasons can add up to more than the tags.
 */
export function keptSummary(kept: readonly KeptTag[]): string {
  const counts = new Map<string, number>();
  for (const k of kept) for (const r of k.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const several = kept.some((k) => k.reasons.length > 1);
  return (
    `why${several ? ' (a tag can have several reasons)' : ''}: ` +
    [...counts].map(([r, n]) => `${n} × ${r}`).join(', ')
  );
}

function countReasons(kept: readonly UntaggedDecision[], now: number): string {
  const counts = new Map<string, number>();
  for (const u of kept) {
    const why =
      u.reason === 'young'
        ? 'pushed within the grace'
        : u.reason === 'referenced' && u.by !== undefined && !u.by.startsWith('sha256:')
          ? 'platform image of a kept tag'
          : untaggedReason({ ...u, by: undefined }, now);
    counts.set(why, (counts.get(why) ?? 0) + 1);
  }
  // Most common first, then by name: the same plan reads the same whatever order its digests sort in.
  return [...counts]
    .sort(([a, m], [b, n]) => n - m || (a < b ? -1 : a > b ? 1 : 0))
    .map(([r, n]) => `${n} × ${r}`)
    .join(', ');
}

/** The apply report; given the plan it came from, it also says how much of it was untagged history. */
export function formatReport(report: Report, plan?: Plan): string {
  const untagged = plan ? untaggedOutcome(plan, report) : undefined;
  const history =
    untagged === undefined || untagged.planned === 0
      ? ''
      : `; ${untagged.deleted} of the manifests untagged history, about ${formatBytes(untagged.bytesFreedEstimate)}` +
        (untagged.failed > 0 ? `, ${untagged.failed} failed` : '') +
        (untagged.skipped > 0 ? `, ${untagged.skipped} skipped` : '');
  const lines = [
    `Deleted ${plural(report.tagsDeleted, 'tag')} and ${plural(report.manifestsDeleted, 'manifest')} on ${report.registry} ` +
      `(about ${formatBytes(report.bytesFreedEstimate)} ${report.undo ? 'reclaimed tonight, ' : ''}to free on the next ` +
      `garbage-collect${history}).`,
  ];
  if (report.undo) {
    const u = report.undo;
    lines.push(
      `Untagged tonight, reclaimed after ${when(u.undoUntil)}: ${plural(u.manifests, 'manifest')}, about ` +
        `${formatBytes(u.bytesPending)}; restore brings them back until then.`,
    );
  }
  for (const s of report.skippedRepositories) lines.push(`  skipped ${s.name}: ${s.reason}`);
  for (const f of report.failures) {
    lines.push(
      `  FAILED  ${f.repository} ${f.target === 'tag' ? `tag ${f.reference}` : f.reference}: ${f.reason ?? 'unknown'}`,
    );
  }
  const skippedManifests = report.entries.filter((e) => e.outcome === 'skipped' && e.target !== 'repository');
  // A stopped run leaves the rest of its plan unstarted: one line for all of it, not one per manifest.
  const unstarted = skippedManifests.filter(
    (e) => report.stopped !== undefined && e.reason?.startsWith('not started'),
  );
  for (const e of skippedManifests)
    if (!unstarted.includes(e)) lines.push(`  skipped ${e.repository} ${e.reference}: ${e.reason ?? ''}`);
  if (report.stopped !== undefined) {
    lines.push(`  stopped (${report.stopped}): ${plural(unstarted.length, 'deletion')} not started`);
  }
  return lines.join('\n') + '\n';
}
