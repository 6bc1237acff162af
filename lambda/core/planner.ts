// The planner: plan(inventory, policy, now) decides, per repository, which tags stay (and why) and what goes,
// without touching the network. It reads like the policy: first matching rule, keep criteria, referrers follow
// their subjects, then the safety closure: nothing any kept tag reaches is ever deleted.
import { JanitorError } from './errors.ts';
import { createdMillis, referrerSubject } from './manifest.ts';
import type {
  DeletedTag,
  Inventory,
  JournalDecision,
  JournalItem,
  KeepReason,
  KeptTag,
  ManifestDeletion,
  ManifestInfo,
  Plan,
  RepositoryInventory,
  RepositoryPlan,
  Revision,
  ScanProblem,
  TagRef,
  UntaggedDecision,
  UntaggedReason,
} from './model.ts';
import { ruleFor, type CompiledRule, type Policy } from './policy.ts';
import { EMPTY } from './compact.ts';
import { DigestSet } from './digest-set.ts';
import { plural } from './plural.ts';
import { compareStrings } from './scan.ts';
import { pushedSinceUntag, undoUntil, windowPassed } from './undo.ts';

const DAY_MS = 86_400_000;

/** How a plan is carried out. */
export interface PlanOptions {
  /**
   * Two-phase (a storage listing is configured): the plan untags what it would delete, and the sweep deletes what
   * an earlier run untagged once this many hours have passed. Absent: delete by digest, and what an earlier
   * two-phase run untagged waits for a run with a listing.
   */
  readonly undoWindowHours?: number;
}

export function plan(inventory: Inventory, policy: Policy, now: Date, options: PlanOptions = {}): Plan {
  // A failed or partial listing is no listing: nothing untagged is judged, tags are planned as without one.
  const history = inventory.history?.complete === true;
  const undo = options.undoWindowHours;
  const drafts = inventory.repositories.map((repo) =>
    planRepository(repo, inventory.manifests, policy, now, history, undo),
  );
  const bytes = estimateBytesFreed(inventory, drafts);
  const repositories: RepositoryPlan[] = drafts.map((d) => {
    const freed = bytes.get(d.plan.name);
    const { untagged, ...rest } = d.plan;
    return {
      ...rest,
      ...(untagged ? { untagged: { ...untagged, bytesFreed: freed?.untagged ?? 0 } } : {}),
      bytesFreed: freed?.all ?? 0,
      ...(undo !== undefined ? { bytesPending: freed?.pending ?? 0 } : {}),
    };
  });

  const tags = repositories.reduce((n, r) => n + r.kept.length + r.deleteTags.length, 0);
  const tagsDeleted = repositories.reduce((n, r) => n + r.deleteTags.length, 0);
  const warnings: ScanProblem[] = [
    ...inventory.warnings,
    ...(inventory.history && !history
      ? [
          {
            message:
              `untagged history was not listed (${inventory.history.problem ?? 'the listing is incomplete'}), so ` +
              `no untagged manifest is deleted in this run; tags are planned as without a listing`,
          },
        ]
      : []),
    ...repositories.flatMap((r) => r.warnings.map((message) => ({ repository: r.name, message }))),
  ];
  const untaggedDeleted = repositories.reduce((n, r) => n + (r.untagged?.deleted.length ?? 0), 0);
  const untaggedKept = repositories.reduce((n, r) => n + (r.untagged?.kept.length ?? 0), 0);
  return {
    registry: inventory.registry,
    generatedAt: now.toISOString(),
    complete: inventory.errors.length === 0,
    errors: inventory.errors,
    warnings,
    summary: {
      repositories: repositories.length,
      tags,
      tagsKept: tags - tagsDeleted,
      tagsDeleted,
      manifestsDeleted: repositories.reduce((n, r) => n + r.deleteManifests.length, 0),
      bytesFreed: repositories.reduce((n, r) => n + r.bytesFreed, 0),
      deleteFraction: tags === 0 ? 0 : tagsDeleted / tags,
      ...(history
        ? {
            manifests: drafts.reduce((n, d) => n + (d.manifests ?? 0), 0),
            untaggedDeleted,
            untaggedKept,
            untaggedBytesFreed: repositories.reduce((n, r) => n + (r.untagged?.bytesFreed ?? 0), 0),
          }
        : {}),
      ...(undo !== undefined
        ? {
            manifestsPending: repositories.reduce(
              (n, r) => n + r.deleteManifests.filter((m) => m.deferred).length,
              0,
            ),
            bytesPending: repositories.reduce((n, r) => n + (r.bytesPending ?? 0), 0),
          }
        : {}),
    },
    repositories,
    ...(inventory.history ? { history: inventory.history } : {}),
    ...(undo !== undefined ? { undo: { hours: undo, until: undoUntil(now, undo) } } : {}),
  };
}

interface Draft {
  readonly plan: Omit<RepositoryPlan, 'bytesFreed' | 'untagged'> & {
    readonly untagged?: Omit<NonNullable<RepositoryPlan['untagged']>, 'bytesFreed'>;
  };
  /** Digests this repository keeps (tags and everything they reach). */
  readonly retained: ReadonlySet<string>;
  /** The facts of each of `plan.deleteManifests`, in its order (looked up once, for the bytes estimate). */
  readonly deletedFacts: readonly (ManifestInfo | undefined)[];
  /** With a listing: the manifests it holds (tagged, reached from tags, and untagged history). */
  readonly manifests?: number;
}

function planRepository(
  repo: RepositoryInventory,
  manifests: ReadonlyMap<string, ManifestInfo>,
  policy: Policy,
  now: Date,
  useHistory: boolean,
  undoWindowHours: number | undefined,
): Draft {
  const rule = ruleFor(policy, repo.name);
  const created = (digest: string): string | undefined => manifests.get(digest)?.created;
  const revisions = useHistory ? (repo.untagged ?? EMPTY) : undefined;
  const keepAll = (reason: KeepReason): Draft => {
    const reasons = [reason];
    const retained = closure(
      [...repo.tags.map((t) => t.digest), ...(revisions ?? EMPTY).map((r) => r.digest)],
      manifests,
      repo,
    );
    const untagged = revisions
      ? {
          deleted: EMPTY,
          kept: judgeAll(revisions, repo, manifests, reason === 'protected' ? 'protected' : 'no-rule'),
        }
      : undefined;
    return {
      plan: {
        name: repo.name,
        rule: rule?.index ?? null,
        action: rule ? 'protected' : 'untouched',
        kept: repo.tags.map((t) => keptTag(t, reasons, created(t.digest))),
        deleteTags: [],
        deleteManifests: [],
        ...(repo.dangling ? { dangling: repo.dangling } : {}),
        ...(untagged ? { untagged } : {}),
        ...(repo.journal
          ? {
              journal: repo.journal.map((j) =>
                decision(
                  j.digest,
                  'drop',
                  reason === 'protected'
                    ? 'the repository is protected now'
                    : 'no rule of the policy matches the repository now',
                ),
              ),
            }
          : {}),
        warnings: [],
      },
      retained,
      deletedFacts: EMPTY,
      ...(revisions ? { manifests: retained.size } : {}),
    };
  };
  if (!rule) return keepAll('no-rule');
  if (rule.protect) return keepAll('protected');

  const warnings: string[] = [];
  if (repo.dangling) {
    warnings.push(
      `${repo.dangling.length === 1 ? '1 tag whose manifest is already gone is' : `${repo.dangling.length} tags whose manifest is already gone are`} removed: ${repo.dangling.join(', ')}`,
    );
  }
  const reasons = new Map<string, KeepReason[]>();
  const keep = (tag: string, reason: KeepReason): void => {
    const list = reasons.get(tag);
    if (list) list.push(reason);
    else reasons.set(tag, [reason]);
  };
  const ordinary: TagRef[] = [];
  const referrers: TagRef[] = [];
  const leftovers: TagRef[] = [];
  for (const t of repo.tags) {
    if (manifests.get(t.digest)?.placeholder) leftovers.push(t);
    else (referrerSubject(t.tag) ? referrers : ordinary).push(t);
  }
  if (leftovers.length > 0) {
    // An interrupted run removed these tags' images already; finish the job instead of judging them.
    warnings.push(
      `${leftovers.length === 1 ? '1 tag still points' : `${leftovers.length} tags still point`} at a placeholder left by an interrupted run and ${leftovers.length === 1 ? 'is' : 'are'} removed: ` +
        leftovers.map((t) => t.tag).join(', '),
    );
  }

  keepByName(rule, ordinary, keep);
  keepByAge(rule, ordinary, manifests, now, keep, warnings);

  // History: untagged revisions no tag reaches. Without an `untagged` block they all stay; with one, those
  // pushed within the grace stay (a multi-arch push may be in progress: children first, the index last).
  const history = revisions ? untaggedHistory(revisions, repo, manifests) : undefined;
  const manifestCount = history ? history.reached + history.revisions.length : undefined;
  // The journal: what an interrupted run was about to delete. Each entry is a candidate only as far as the
  // registry shows it is still there and (with a listing) not pushed again since it was recorded; whether it
  // goes is decided below with everything else, so nothing that stays, or that anything staying reaches, goes.
  const journal = journalCandidates(repo, revisions, now, undoWindowHours);
  // What an earlier two-phase run untagged goes with what it holds (an index's children), never as history by
  // itself: while its undo window runs all of it stays, and once swept the children go with it.
  const swept = closure(
    [...journal.candidates.values()].filter((j) => j.untagged).map((j) => j.digest),
    manifests,
    repo,
  );
  const decided = new Map<string, { reason: UntaggedReason; by?: string }>();
  let candidates: Revision[] = [];
  if (history) {
    const days = rule.untagged?.deleteAfterDays;
    const cutoff = days === undefined ? undefined : now.getTime() - days * DAY_MS;
    for (const r of history.revisions) {
      if (journal.hold.has(r.digest)) decided.set(r.digest, { reason: 'undo-window' });
      else if (journal.candidates.has(r.digest) || swept.has(r.digest)) continue;
      if (cutoff === undefined) decided.set(r.digest, { reason: 'no-untagged-rule' });
      // An unparseable push time is never old.
      else if (!(Date.parse(r.pushedAt) < cutoff)) decided.set(r.digest, { reason: 'young' });
      else candidates.push(r);
    }
  }

  // Everything a kept tag or a staying untagged manifest reaches is kept: its manifest and, for an index,
  // every descendant.
  const kept = closure(
    [...ordinary.filter((t) => reasons.has(t.tag)).map((t) => t.digest), ...decided.keys(), ...journal.hold],
    manifests,
    repo,
  );

  // Referrers follow their subjects, tagged (sha256-<hex>, .sig) or untagged (`subject`), to a fixpoint: a
  // signature of a kept SBOM is kept too. Without a listing, a subject pushed without a tag cannot be judged,
  // so its referrers stay.
  const untracked = new Set(history ? EMPTY : repo.untaggedSubjects);
  // A manifest whose `subject` stays stays too, whatever its tag is called (a signature pushed under an
  // ordinary tag, an index with a subject): the same rule the live re-check applies before deleting.
  let pending = [
    ...referrers,
    ...ordinary.filter((t) => !reasons.has(t.tag) && manifests.get(t.digest)?.subject),
  ];
  for (let changed = true; changed;) {
    changed = false;
    const still: TagRef[] = [];
    for (const r of pending) {
      const subject = referrerSubject(r.tag) ?? manifests.get(r.digest)!.subject!;
      if (kept.has(subject) || untracked.has(subject)) {
        keep(r.tag, kept.has(subject) ? 'subject-kept' : 'referrer-subject-untracked');
        for (const d of closure([r.digest], manifests, repo)) kept.add(d);
        changed = true;
      } else still.push(r);
    }
    pending = still;
    const left: Revision[] = [];
    for (const c of candidates) {
      const subject = manifests.get(c.digest)?.subject;
      if (kept.has(c.digest)) decided.set(c.digest, { reason: 'referenced' });
      else if (subject !== undefined && kept.has(subject)) {
        decided.set(c.digest, { reason: 'subject-kept' });
        for (const d of closure([c.digest], manifests, repo)) kept.add(d);
        changed = true;
      } else left.push(c);
    }
    candidates = left;
    for (const d of journal.candidates.keys()) {
      if (journal.decided.has(d)) continue;
      const subject = manifests.get(d)?.subject;
      if (kept.has(d)) {
        journal.decided.set(d, decision(d, 'drop', 'a tag or a manifest that stays reaches it'));
      } else if (subject !== undefined && kept.has(subject)) {
        journal.decided.set(d, decision(d, 'drop', `its subject ${subject} stays`));
        for (const k of closure([d], manifests, repo)) kept.add(k);
        changed = true;
      }
    }
  }
  if (untracked.size > 0) {
    warnings.push(
      `referrers of ${plural(untracked.size, 'manifest')} pushed without a tag are kept, since nothing here judges untagged manifests`,
    );
  }

  const keptTags: KeptTag[] = [];
  const deleteTags: DeletedTag[] = [];
  for (const t of repo.tags) {
    const why = reasons.get(t.tag);
    if (why) {
      keptTags.push(keptTag(t, why, created(t.digest)));
    } else {
      deleteTags.push(
        deletedTag(
          t,
          kept.has(t.digest) ? 'tag-only' : 'manifest',
          created(t.digest),
          referrerSubject(t.tag) !== undefined,
        ),
      );
    }
  }

  const expired = candidates.map((c) => c.digest);
  // A leftover goes only once what it had to wait for (its index, its subject) is gone or goes in this plan.
  let finishing = [...journal.candidates.keys()].filter((d) => !journal.decided.has(d));
  let deleteManifests: ManifestDeletion[];
  let deletedFacts: (ManifestInfo | undefined)[];
  for (;;) {
    ({ deletions: deleteManifests, facts: deletedFacts } = orderDeletions(
      deleteTags,
      expired,
      finishing,
      manifests,
      repo,
      kept,
    ));
    const deleting = new Set(deleteManifests.map((m) => m.digest));
    const waiting = finishing.filter((d) =>
      journal.candidates.get(d)!.waitsFor.some((w) => !deleting.has(w)),
    );
    if (waiting.length === 0) break;
    for (const d of waiting) {
      const first = journal.candidates.get(d)!.waitsFor.find((w) => !deleting.has(w))!;
      journal.decided.set(d, decision(d, 'wait', `${first}, which had to go first, is still there`));
    }
    finishing = finishing.filter((d) => !journal.decided.has(d));
  }
  for (const d of finishing) {
    journal.decided.set(
      d,
      journal.candidates.get(d)!.untagged
        ? {
            ...decision(
              d,
              'finish',
              'untagged by an earlier run, its undo window has passed, not pushed again since; nothing that stays references it',
            ),
            swept: true as const,
          }
        : decision(d, 'finish', 'left by an interrupted run; nothing that stays references it'),
    );
  }
  if (undoWindowHours !== undefined) deleteManifests = deferTagged(deleteManifests);
  for (const d of deleteManifests) {
    if (kept.has(d.digest)) {
      throw new JanitorError(
        `internal safety check failed: ${repo.name}@${d.digest} is both kept and deleted`,
      );
    }
  }
  return {
    plan: {
      name: repo.name,
      rule: rule.index,
      action: 'cleaned',
      kept: keptTags,
      deleteTags,
      deleteManifests,
      ...(repo.dangling ? { dangling: repo.dangling } : {}),
      ...(revisions
        ? { untagged: untaggedSection(revisions, candidates, decided, keptTags, repo, manifests) }
        : {}),
      ...(repo.journal
        ? { journal: (repo.journal ?? EMPTY).map((j) => journal.decided.get(j.digest)!) }
        : {}),
      warnings,
    },
    retained: kept,
    deletedFacts,
    ...(manifestCount !== undefined ? { manifests: manifestCount } : {}),
  };
}

/**
 * A plan made without a listing (delete by digest), to be applied two-phase: what it deletes with tags is only
 * untagged tonight. Its bytes estimate is left as it was made (all of it counted as reclaimed tonight).
 */
export function asTwoPhase(p: Plan, undoWindowHours: number, now: Date): Plan {
  return {
    ...p,
    repositories: p.repositories.map((r) => ({ ...r, deleteManifests: deferTagged([...r.deleteManifests]) })),
    undo: { hours: undoWindowHours, until: undoUntil(now, undoWindowHours) },
  };
}

/**
 * Two-phase: what the plan deletes by digest becomes untag-only tonight (`deferred`): every manifest with tags the
 * plan deletes, and whatever has to wait for one of them (the children of an untagged index, its referrers). The
 * rest (history, leftovers, the sweep of earlier runs) is deleted by digest tonight.
 */
function deferTagged(deletions: ManifestDeletion[]): ManifestDeletion[] {
  const deferred = new Set(deletions.filter((m) => m.tags.length > 0).map((m) => m.digest));
  for (let grew = true; grew;) {
    grew = false;
    for (const m of deletions) {
      if (!deferred.has(m.digest) && m.after.some((a) => deferred.has(a))) {
        deferred.add(m.digest);
        grew = true;
      }
    }
  }
  if (deferred.size === 0) return deletions;
  return deletions.map((m) => (deferred.has(m.digest) ? { ...m, deferred: true as const } : m));
}

/**
 * The journal's entries that may go, and those already decided: gone, unread, or (with a listing) pushed again
 * after the journal recorded them, which makes them someone's again (judged as history like any other). What an
 * earlier two-phase run untagged is a candidate (the sweep) only with a complete listing, once its undo window has
 * passed, and when its revision was not pushed since it was untagged; until then it is held (`hold`: it stays,
 * with everything it references).
 */
function journalCandidates(
  repo: RepositoryInventory,
  revisions: readonly Revision[] | undefined,
  now: Date,
  undoWindowHours: number | undefined,
): {
  candidates: Map<string, JournalItem>;
  decided: Map<string, JournalDecision>;
  hold: Set<string>;
} {
  const items = repo.journal ?? EMPTY;
  const candidates = new Map<string, JournalItem>();
  const decided = new Map<string, JournalDecision>();
  const hold = new Set<string>();
  const pushed = revisions ? new Map(revisions.map((r) => [r.digest, r.pushedAt])) : undefined;
  let tagged: Set<string> | undefined;
  const wait = (j: JournalItem, reason: string): void => {
    hold.add(j.digest);
    decided.set(j.digest, decision(j.digest, 'wait', reason));
  };
  for (const j of items) {
    const at = pushed?.get(j.digest);
    if (j.state === 'gone') decided.set(j.digest, decision(j.digest, 'drop', 'already gone'));
    else if (j.state === 'unread') {
      if (j.untagged) hold.add(j.digest);
      decided.set(j.digest, decision(j.digest, 'wait', 'it could not be read in this run'));
    } else if (j.untagged) {
      tagged ??= new Set(repo.tags.map((t) => t.digest));
      if (tagged.has(j.digest))
        decided.set(j.digest, decision(j.digest, 'drop', 'a tag points at it again (restored or pushed)'));
      else if (!pushed)
        wait(
          j,
          'untagged by an earlier run; it is swept only by a run with a complete storage listing (--storage), which shows it was not pushed again',
        );
      else if (at === undefined) wait(j, 'the storage listing does not show it as untagged history');
      else if (pushedSinceUntag(at, j.recordedAt))
        decided.set(
          j.digest,
          decision(j.digest, 'drop', `pushed again (${at}) after it was untagged (${j.recordedAt})`),
        );
      else if (undoWindowHours === undefined)
        wait(j, 'untagged by an earlier run; swept by a two-phase run (one with a storage listing)');
      else if (!windowPassed(j.recordedAt, undoWindowHours, now))
        wait(j, `its undo window runs until ${undoUntil(j.recordedAt, undoWindowHours)}`);
      else candidates.set(j.digest, j);
    } else if (at !== undefined && !(Date.parse(at) <= Date.parse(j.recordedAt)))
      decided.set(j.digest, decision(j.digest, 'drop', `pushed again (${at}) after the journal recorded it`));
    else candidates.set(j.digest, j);
  }
  return { candidates, decided, hold };
}

function decision(digest: string, outcome: JournalDecision['outcome'], reason: string): JournalDecision {
  return { digest, outcome, reason };
}

/**
 * The revisions that are history: untagged, and reached by no tag (a tagged index's children are not); and
 * how many manifests the tags reach.
 */
function untaggedHistory(
  revisions: readonly Revision[],
  repo: RepositoryInventory,
  manifests: ReadonlyMap<string, ManifestInfo>,
): { revisions: Revision[]; reached: number } {
  const reached = closure(
    repo.tags.map((t) => t.digest),
    manifests,
    repo,
  );
  return { revisions: revisions.filter((r) => !reached.has(r.digest)), reached: reached.size };
}

/** Every untagged revision of a repository that keeps all of them, with one reason. */
function judgeAll(
  revisions: readonly Revision[],
  repo: RepositoryInventory,
  manifests: ReadonlyMap<string, ManifestInfo>,
  reason: 'protected' | 'no-rule',
): UntaggedDecision[] {
  return revisions.map((r) => untaggedDecision(r, manifests, reason));
}

/**
 * The plan's untagged section: what goes (expired) and what stays, with why. Untagged revisions a kept tag
 * reaches (the platform images of a kept index) are listed as kept by that tag; those a deleted tag reaches go
 * with it and are listed with the tag's deletions instead.
 */
function untaggedSection(
  revisions: readonly Revision[],
  expired: readonly Revision[],
  decided: ReadonlyMap<string, { reason: UntaggedReason; by?: string }>,
  keptTags: readonly KeptTag[],
  repo: RepositoryInventory,
  manifests: ReadonlyMap<string, ManifestInfo>,
): NonNullable<Draft['plan']['untagged']> {
  // The first kept tag reaching each digest, in one walk: a digest already claimed was walked below already.
  const byTag = new Map<string, string>();
  const stack: string[] = [];
  for (const t of keptTags) {
    stack.push(t.digest);
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (byTag.has(d)) continue;
      byTag.set(d, t.tag);
      for (const c of manifests.get(d)?.children ?? [])
        if (!repo.missing.includes(c.digest)) stack.push(c.digest);
    }
  }
  const holders = new Map<string, string>();
  for (const [digest] of decided) {
    for (const c of manifests.get(digest)?.children ?? [])
      if (!holders.has(c.digest)) holders.set(c.digest, digest);
  }
  const kept: UntaggedDecision[] = [];
  for (const r of revisions) {
    const d = decided.get(r.digest);
    if (d) {
      const subject = manifests.get(r.digest)?.subject;
      const by =
        d.reason === 'referenced'
          ? (byTag.get(r.digest) ?? holders.get(r.digest))
          : d.reason === 'subject-kept' && subject !== undefined
            ? (byTag.get(subject) ?? subject)
            : undefined;
      kept.push(untaggedDecision(r, manifests, d.reason, by));
    } else if (byTag.has(r.digest)) {
      kept.push(untaggedDecision(r, manifests, 'referenced', byTag.get(r.digest)));
    }
  }
  return { deleted: expired.map((r) => untaggedDecision(r, manifests, 'expired')), kept };
}

function untaggedDecision(
  r: Revision,
  manifests: ReadonlyMap<string, ManifestInfo>,
  reason: UntaggedReason,
  by?: string,
): UntaggedDecision {
  const kind = manifests.get(r.digest)?.kind ?? 'image';
  return by === undefined
    ? { digest: r.digest, kind, pushedAt: r.pushedAt, reason }
    : { digest: r.digest, kind, pushedAt: r.pushedAt, reason, by };
}

/** One tag to delete, built in one literal (properties added later would cost a second allocation each). */
function deletedTag(
  t: TagRef,
  method: DeletedTag['method'],
  created: string | undefined,
  referrer: boolean,
): DeletedTag {
  if (referrer) {
    return created === undefined
      ? { tag: t.tag, digest: t.digest, method, referrer }
      : { tag: t.tag, digest: t.digest, method, created, referrer };
  }
  return created === undefined
    ? { tag: t.tag, digest: t.digest, method }
    : { tag: t.tag, digest: t.digest, method, created };
}

/** One kept tag; `reasons` may be shared between tags (it is never changed after planning). */
function keptTag(t: TagRef, reasons: readonly KeepReason[], created: string | undefined): KeptTag {
  return created === undefined
    ? { tag: t.tag, digest: t.digest, reasons }
    : { tag: t.tag, digest: t.digest, reasons, created };
}

function keepByName(
  rule: CompiledRule,
  tags: readonly TagRef[],
  keep: (tag: string, r: KeepReason) => void,
): void {
  const byGlob = rule.keep.tags.map((g) => ({ re: g.re, reason: `tag:${g.source}` as const }));
  const byRegex = rule.keep.tagsRegex.map((g) => ({ re: g.re, reason: `tag-regex:${g.source}` as const }));
  for (const t of tags) {
    for (const g of byGlob) if (g.re.test(t.tag)) keep(t.tag, g.reason);
    for (const g of byRegex) if (g.re.test(t.tag)) keep(t.tag, g.reason);
  }
}

/**
 * Age criteria judge images (distinct digests), not tags: every tag of a kept image is kept. An image with no
 * usable creation time is never "older" than anything, and never takes or loses a `newest` place.
 */
function keepByAge(
  rule: CompiledRule,
  tags: readonly TagRef[],
  manifests: ReadonlyMap<string, ManifestInfo>,
  now: Date,
  keep: (tag: string, r: KeepReason) => void,
  warnings: string[],
): void {
  const { newest, youngerThanDays } = rule.keep;
  if (newest === undefined && youngerThanDays === undefined) return;
  const images = new Map<string, { ms: number | undefined; tags: string[] }>();
  for (const t of tags) {
    const image = images.get(t.digest);
    if (image) image.tags.push(t.tag);
    else images.set(t.digest, { ms: createdMillis(manifests.get(t.digest)?.created), tags: [t.tag] });
  }
  const unknown: string[] = [];
  const known: { ms: number; tags: string[] }[] = [];
  for (const image of images.values()) {
    if (image.ms === undefined) {
      unknown.push(...image.tags);
      for (const tag of image.tags) keep(tag, 'unknown-age');
    } else known.push({ ms: image.ms, tags: image.tags });
  }
  if (unknown.length > 0) {
    unknown.sort(compareStrings);
    const shown =
      unknown.slice(0, 10).join(', ') + (unknown.length > 10 ? `, … (${unknown.length} in all)` : '');
    warnings.push(
      `kept ${unknown.length === 1 ? '1 tag' : `${unknown.length} tags`} whose image has no usable creation time (missing, unparseable or before 2000, ` +
        `as reproducible builds stamp 1970): ${shown}`,
    );
  }
  if (youngerThanDays !== undefined) {
    const cutoff = now.getTime() - youngerThanDays * DAY_MS;
    for (const image of known)
      if (image.ms >= cutoff) for (const tag of image.tags) keep(tag, 'younger-than-days');
  }
  if (newest !== undefined && newest > 0 && known.length > 0) {
    known.sort((a, b) => b.ms - a.ms);
    // Images tied with the last place all stay: keeping one more is safe, dropping a tie is arbitrary.
    const threshold = known[Math.min(newest, known.length) - 1]!.ms;
    const reason = `newest:${newest}` as const;
    for (const image of known) if (image.ms >= threshold) for (const tag of image.tags) keep(tag, reason);
  }
}

/** The digests and all their descendants present in the repository. */
function closure(
  roots: Iterable<string>,
  manifests: ReadonlyMap<string, ManifestInfo>,
  repo: RepositoryInventory,
): Set<string> {
  const out = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (out.has(d)) continue;
    out.add(d);
    for (const c of manifests.get(d)?.children ?? [])
      if (!repo.missing.includes(c.digest)) stack.push(c.digest);
  }
  return out;
}

/**
 * Roots first (indexes, then images), then the children of deleted indexes that nothing kept references,
 * then history and leftovers of an interrupted run (the journal), then referrers and their children. An
 * interruption then leaves only unreferenced garbage. With the deletions, the facts of each (in the same order):
 * each manifest is looked up once here, not again by every later step that needs it.
 */
function orderDeletions(
  deleteTags: readonly DeletedTag[],
  expired: readonly string[],
  leftovers: readonly string[],
  manifests: ReadonlyMap<string, ManifestInfo>,
  repo: RepositoryInventory,
  kept: ReadonlySet<string>,
): { deletions: ManifestDeletion[]; facts: (ManifestInfo | undefined)[] } {
  const tagsOf = new Map<string, string[]>();
  const referrerRoots = new Set<string>();
  for (const t of deleteTags) {
    if (t.method !== 'manifest') continue;
    // A literal holds exactly its element; an array grown by push reserves room for 16 more (100 bytes
    // per deleted manifest, most of which have one tag).
    const list = tagsOf.get(t.digest);
    if (list) list.push(t.tag);
    else tagsOf.set(t.digest, [t.tag]);
    if (t.referrer) referrerRoots.add(t.digest);
  }
  for (const [digest] of tagsOf)
    if (tagsOf.get(digest)!.some((tag) => !referrerSubject(tag))) referrerRoots.delete(digest);

  const out: { -readonly [K in keyof ManifestDeletion]: ManifestDeletion[K] }[] = [];
  const facts: (ManifestInfo | undefined)[] = [];
  const seen = new Set<string>();
  const addGroup = (
    roots: string[],
    role: 'root' | 'untagged' | 'leftover' | 'referrer',
    childRole: 'child' | 'referrer',
  ): void => {
    // Indexes first, each part by digest.
    const indexes: Fact[] = [];
    const images: Fact[] = [];
    for (const digest of roots) {
      const info = manifests.get(digest);
      (info?.kind === 'index' ? indexes : images).push({ digest, info });
    }
    indexes.sort(byDigest);
    images.sort(byDigest);
    const first = indexes.length === 0 ? images : [...indexes, ...images];
    for (const { digest, info } of first) {
      seen.add(digest);
      out.push({
        digest,
        role,
        kind: info?.kind ?? 'image',
        tags: tagsOf.get(digest)?.sort(compareStrings) ?? EMPTY,
        after: EMPTY,
      });
      facts.push(info);
    }
    // Breadth first, so a parent index always goes before the children it references.
    let frontier = first;
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const { info } of frontier) {
        for (const c of info?.children ?? EMPTY) {
          if (seen.has(c.digest) || kept.has(c.digest) || repo.missing.includes(c.digest)) continue;
          seen.add(c.digest);
          next.push(c.digest);
        }
      }
      next.sort(compareStrings);
      frontier = next.map((digest) => ({ digest, info: manifests.get(digest) }));
      for (const { digest, info } of frontier) {
        out.push({ digest, role: childRole, kind: info?.kind ?? 'image', tags: EMPTY, after: EMPTY });
        facts.push(info);
      }
    }
  };
  addGroup(
    [...tagsOf.keys()].filter((d) => !referrerRoots.has(d)),
    'root',
    'child',
  );
  addGroup(
    expired.filter((d) => !seen.has(d)),
    'untagged',
    'child',
  );
  addGroup(
    leftovers.filter((d) => !seen.has(d)),
    'leftover',
    'child',
  );
  addGroup(
    [...referrerRoots].filter((d) => !seen.has(d)),
    'referrer',
    'referrer',
  );

  // Dependencies: a manifest goes only after every deleted index that references it, and a referrer only
  // after its subject.
  const deleting = new Set(out.map((m) => m.digest));
  const after = new Map<string, Set<string>>();
  const need = (d: string, first: string): void => {
    if (d === first) return;
    const set = after.get(d) ?? new Set<string>();
    set.add(first);
    after.set(d, set);
  };
  for (let i = 0; i < out.length; i++) {
    const m = out[i]!;
    const info = facts[i];
    for (const c of info?.children ?? EMPTY) if (deleting.has(c.digest)) need(c.digest, m.digest);
    for (const tag of m.tags) {
      const subject = referrerSubject(tag);
      if (subject && deleting.has(subject)) need(m.digest, subject);
    }
    const subject = info?.subject;
    if (subject && deleting.has(subject)) need(m.digest, subject);
  }
  for (const m of out) {
    const first = after.get(m.digest);
    if (first) m.after = [...first].sort(compareStrings);
  }
  return { deletions: out, facts };
}

/** A digest with its facts, looked up once. */
interface Fact {
  readonly digest: string;
  readonly info: ManifestInfo | undefined;
}

const byDigest = (a: Fact, b: Fact): number => compareStrings(a.digest, b.digest);

/**
 * A blob is freed only if no manifest that stays, in any repository, references it (garbage-collect marks
 * across the whole registry). Each freed blob is counted once, in the first repository that frees it; within a
 * repository the tags' manifests claim first, so `untagged` is what deleting the history frees on top of them.
 */
function estimateBytesFreed(
  inventory: Inventory,
  drafts: readonly Draft[],
): Map<string, { all: number; untagged: number; pending: number }> {
  // One set: blobs a staying manifest holds, then each freed blob once it is counted (so it is not again). A
  // manifest is about three blobs (itself, a config, a layer or more; base layers shared).
  const manifests = drafts.reduce((n, d) => n + d.retained.size + d.deletedFacts.length, 0);
  const taken = new DigestSet(manifests * 3);
  for (const d of drafts) {
    for (const digest of d.retained) {
      const info = inventory.manifests.get(digest);
      if (!info) continue;
      taken.add(info.digest);
      for (const l of info.layers) taken.add(l.digest);
      if (info.config) taken.add(info.config.digest);
    }
  }
  const claim = (digest: string, size: number): number => (taken.add(digest) ? size : 0);
  const out = new Map<string, { all: number; untagged: number; pending: number }>();
  for (const d of drafts) {
    let all = 0;
    let untagged = 0;
    let pending = 0;
    const deletions = d.plan.deleteManifests;
    for (let i = 0; i < deletions.length; i++) {
      // The manifest itself, its layers and its config: what garbage-collect frees when nothing else uses them.
      const m = deletions[i]!;
      const info = d.deletedFacts[i];
      if (!info) continue;
      let bytes = claim(info.digest, info.size);
      for (const l of info.layers) bytes += claim(l.digest, l.size);
      if (info.config) bytes += claim(info.config.digest, info.config.size);
      // Two-phase: an untagged manifest's bytes are reclaimed after the undo window, not tonight.
      if (m.deferred) {
        pending += bytes;
        continue;
      }
      all += bytes;
      if (m.role === 'untagged') untagged += bytes;
    }
    out.set(d.plan.name, { all, untagged, pending });
  }
  return out;
}

/**
 * The delete guard: refuse a plan that deletes more than `maxFraction` of the tags it covers, or (with a storage
 * listing) of the manifests it covers. History has no tags, so a tag count alone would let a plan wipe it all.
 */
export function checkGuard(p: Plan, maxFraction: number): { ok: true } | { ok: false; message: string } {
  const s = p.summary;
  const manifestFraction = s.manifests ? s.manifestsDeleted / s.manifests : 0;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const raise = (x: number) => Math.min(1, Math.ceil(x * 100) / 100);
  const refuse = (what: string, fraction: number) => ({
    ok: false as const,
    message:
      `the plan deletes ${what} (${pct(fraction)}), more than ` +
      `the guard allows (${pct(maxFraction)}). Read the plan; if it is what you want, raise the guard ` +
      `(--max-delete-fraction ${raise(fraction)} on the CLI, -c maxDeleteFraction=${raise(fraction)} for the stack).`,
  });
  if (s.deleteFraction > maxFraction && s.deleteFraction >= manifestFraction)
    return refuse(`${s.tagsDeleted} of ${s.tags} tags`, s.deleteFraction);
  if (manifestFraction > maxFraction)
    return refuse(`${s.manifestsDeleted} of ${s.manifests ?? 0} manifests`, manifestFraction);
  return { ok: true };
}
