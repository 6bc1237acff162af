// Carries out a plan: the checks before the first DELETE (complete plan, delete guard, the probe's answer), then
// per repository a re-check of what the plan was based on and deletes in dependency order (roots, children, referrers).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { DEFAULT_MAX_DELETE_FRACTION } from './contract.ts';
import { errorMessage, RegistryError, SafetyError } from './errors.ts';
import { MEDIA_TYPES, PLACEHOLDER_ANNOTATION } from './manifest.ts';
import { factsOf, liveConflicts, rereadForCheck, type LiveFacts } from './live-check.ts';
import type { Inventory, ManifestDeletion, Plan, Report, ReportEntry, RepositoryPlan } from './model.ts';
import { checkGuard } from './planner.ts';
import { noun, plural } from './plural.ts';
import type { ProbeResult, RegistryClient } from './ports.ts';
import type { RevisionTime } from './history.ts';
import { pushedSinceUntag, undoUntil, untagGroups } from './undo.ts';

/** Two-phase apply: how the plan's deferred manifests are untagged (their undo records already written). */
export interface UntagOptions {
  /** When the undo records were written (their untag time), ISO 8601. */
  readonly untaggedAt: string;
  readonly windowHours: number;
  /** The run id its undo records carry: `restore --run` takes it. */
  readonly runId?: string;
  /**
   * `repository@digest` of deferred manifests whose undo record could not be written, with why: their tags stay
   * tonight (reported skipped).
   */
  readonly unrecorded: ReadonlyMap<string, string>;
}

export interface DeleteOptions {
  /**
   * Repositories worked on at once. Default 16: with 8 DELETEs each that keeps the client's 64 connections busy
   * while some repositories are between steps (re-check, waves); 8 measured 1.4x the bare DELETEs, 16 1.14-1.22x.
   */
  readonly repositoryConcurrency?: number;
  /** DELETEs in flight within one repository. Default 8. */
  readonly deleteConcurrency?: number;
  readonly onProgress?: (progress: {
    repositoriesDone: number;
    repositoriesTotal: number;
    deleted: number;
  }) => void;
  readonly now?: () => Date;
  /**
   * Stops the run: once aborted no new DELETE (or placeholder PUT) is sent, those in flight finish, and what was
   * not started is reported as skipped with the abort's reason (a string), which becomes the report's `stopped`.
   */
  readonly signal?: AbortSignal;
  /**
   * Two-phase: the plan's deferred manifests lose their tags only (restorable until the window ends; a later
   * sweep deletes them). Without it a deferred manifest is deleted by digest like any other: the caller decides
   * (core/job.ts refuses a two-phase plan without a listing).
   */
  readonly untag?: UntagOptions;
  /**
   * The storage listing's point lookup (HistorySource.revisionTime): asked right before each DELETE by digest of
   * an untagged revision, which is not deleted when its link was rewritten since the listing (pushed again, a
   * promotion included). Without it, a two-phase run with a listing re-checks the repository's tags before each
   * chunk of DELETEs instead (as many as `deleteConcurrency`).
   */
  readonly revisionTime?: RevisionTime;
}

export interface ApplyOptions extends DeleteOptions {
  /** Refuse plans deleting more than this share of their tags. Default 0.5. */
  readonly maxDeleteFraction?: number;
  /** What the live re-check reads; default: the repositories the plan changes, read again now. */
  readonly inventory?: Inventory;
}

/** Whether a plan may be applied: complete, and within the delete guard. Computed once per run. */
export interface Applicability {
  readonly complete: boolean;
  readonly guard: { readonly ok: true } | { readonly ok: false; readonly message: string };
}

export function checkApplicable(plan: Plan, maxDeleteFraction: number): Applicability {
  return { complete: plan.complete, guard: checkGuard(plan, maxDeleteFraction) };
}

/** Why a plan must not be applied (the incomplete inventory first), or undefined when it may be. */
export function refusal(plan: Plan, applicable: Applicability): string | undefined {
  if (!applicable.complete) {
    const first = plan.errors
      .slice(0, 5)
      .map((e) => `  ${[e.repository, e.reference].filter(Boolean).join('@') || 'registry'}: ${e.message}`)
      .join('\n');
    return (
      `the plan is incomplete: ${plural(plan.errors.length, 'read')} failed, so nothing was deleted (an inventory is ` +
      `incomplete when any read fails).\n${first}\nFix the cause (network, credentials, registry health) and run again.`
    );
  }
  if (!applicable.guard.ok) return `refusing to apply: ${applicable.guard.message}`;
  return undefined;
}

/** Check everything about the plan that must hold before the first DELETE. Throws SafetyError. */
export function assertApplicable(plan: Plan, maxDeleteFraction: number): void {
  const reason = refusal(plan, checkApplicable(plan, maxDeleteFraction));
  if (reason !== undefined) throw new SafetyError(reason);
}

/** The repositories a plan changes, in plan order. */
export function repositoriesToChange(plan: Plan): RepositoryPlan[] {
  return plan.repositories.filter(
    (r) => r.deleteTags.length > 0 || r.deleteManifests.length > 0 || danglingToRemove(r).length > 0,
  );
}

/** The probe's answer as a refusal: a registry that refuses deletes gets none. Throws SafetyError. */
export function assertDeletesWork(probe: ProbeResult): void {
  if (!probe.deletesEnabled) {
    throw new SafetyError(`nothing was deleted: ${probe.problem ?? 'the registry refuses deletes'}`);
  }
}

/**
 * Guard, probe and delete in one call, for callers outside a job (the benchmark, the engine tests). A job runs
 * the same steps itself, each once (core/job.ts).
 */
export async function applyPlan(
  plan: Plan,
  client: RegistryClient,
  options: ApplyOptions = {},
): Promise<Report> {
  assertApplicable(plan, options.maxDeleteFraction ?? DEFAULT_MAX_DELETE_FRACTION);
  const first = repositoriesToChange(plan)[0];
  const probe = first ? await client.probe(first.name) : { deletesEnabled: true, tagDelete: false };
  assertDeletesWork(probe);
  const inventory = options.inventory ?? (await rereadForCheck(client, plan));
  return deletePlan(plan, client, probe, inventory, options);
}

/**
 * Carry out a plan the caller has checked (assertApplicable) on a registry whose deletes work (the probe): per
 * repository, re-check what the plan was based on and derive again what stays (from `inventory`, read in this
 * run, and the tags as they are now: core/live-check.ts), then delete in dependency order.
 */
export async function deletePlan(
  plan: Plan,
  client: RegistryClient,
  probe: ProbeResult,
  inventory: Inventory,
  options: DeleteOptions = {},
): Promise<Report> {
  const facts = factsOf(inventory);
  const listedIn = new Map(inventory.repositories.map((r) => [r.name, r]));
  const signal = options.signal;
  const now = options.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const work = repositoriesToChange(plan);
  const entries: ReportEntry[] = [];
  const skipped: { name: string; reason: string }[] = [];
  let bytes = 0;
  let pending = 0;
  if (work.length > 0) {
    let done = 0;
    let deleted = 0;
    const limit = pLimit(options.repositoryConcurrency ?? 16);
    await Promise.all(
      work.map((repo) =>
        limit(async () => {
          const reason = signal?.aborted
            ? `not started: ${stopReason(signal)}`
            : await recheck(client, repo, facts(repo.name));
          if (reason) {
            skipped.push({ name: repo.name, reason });
            entries.push({
              repository: repo.name,
              target: 'repository',
              reference: '*',
              outcome: 'skipped',
              reason,
            });
          } else {
            const result = await applyRepository(
              client,
              repo,
              probe,
              options.deleteConcurrency ?? 8,
              signal,
              options.untag,
              digestCheck(listedIn.get(repo.name), options, inventory.history !== undefined, () =>
                recheck(client, repo, facts(repo.name)),
              ),
            );
            entries.push(...result);
            if (!result.some((e) => e.outcome === 'failed' || e.outcome === 'skipped')) {
              bytes += repo.bytesFreed;
              pending += repo.bytesPending ?? 0;
            }
            deleted += result.filter((e) => e.outcome === 'deleted').length;
          }
          done += 1;
          options.onProgress?.({ repositoriesDone: done, repositoriesTotal: work.length, deleted });
        }),
      ),
    );
  }
  entries.sort((a, b) => (a.repository < b.repository ? -1 : a.repository > b.repository ? 1 : 0));
  skipped.sort((a, b) => (a.name < b.name ? -1 : 1));
  const gone = entries.filter((e) => e.outcome === 'deleted' || e.outcome === 'already-gone');
  const untagged = entries.filter((e) => e.outcome === 'untagged').length;
  return {
    registry: plan.registry,
    startedAt,
    finishedAt: now().toISOString(),
    tagsDeleted: gone.reduce((n, e) => n + (e.tags?.length ?? 0), 0),
    manifestsDeleted: gone.filter((e) => e.target === 'manifest').length,
    bytesFreedEstimate: bytes,
    ...(options.untag && untagged > 0
      ? {
          undo: {
            manifests: untagged,
            bytesPending: pending,
            undoUntil: undoUntil(options.untag.untaggedAt, options.untag.windowHours),
            ...(options.untag.runId !== undefined ? { runId: options.untag.runId } : {}),
          },
        }
      : {}),
    skippedRepositories: skipped,
    failures: entries.filter((e) => e.outcome === 'failed'),
    entries,
    ...(signal?.aborted ? { stopped: stopReason(signal) } : {}),
  };
}

function stopReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return typeof reason === 'string'
    ? reason
    : reason instanceof Error
      ? reason.message
      : 'the run was stopped';
}

/**
 * Right before deleting: the tag list must be the one planned, every tag must still point where it did (anything
 * else means someone pushed meanwhile), and nothing that stays may be among the deletions (live-check.ts).
 * Returns why the repository is skipped, or undefined.
 */
async function recheck(
  client: RegistryClient,
  repo: RepositoryPlan,
  facts: LiveFacts,
): Promise<string | undefined> {
  try {
    const now = new Set(await client.listTags(repo.name));
    const dangling = repo.dangling ?? [];
    const planned = new Map<string, string | null>([
      ...repo.kept.map((t): [string, string] => [t.tag, t.digest]),
      ...repo.deleteTags.map((t): [string, string] => [t.tag, t.digest]),
      ...dangling.map((tag): [string, null] => [tag, null]),
    ]);
    const added = [...now].filter((t) => !planned.has(t));
    const removed = [...planned.keys()].filter((t) => !now.has(t));
    if (added.length > 0 || removed.length > 0) {
      const parts = [];
      if (added.length > 0) parts.push(`new tags ${added.slice(0, 5).join(', ')}`);
      if (removed.length > 0) parts.push(`tags gone ${removed.slice(0, 5).join(', ')}`);
      return `the repository changed since planning (${parts.join('; ')}); run again to plan with the new state`;
    }
    // Every tag, resolved now: a tag pushed (or moved) onto a manifest the plan deletes makes it stay, and a
    // dangling tag that resolves again was pushed meanwhile.
    const limit = pLimit(16);
    const live = new Map<string, string | null>();
    await Promise.all(
      [...now].map((tag) =>
        limit(async () => {
          live.set(tag, await client.headManifest(repo.name, tag));
        }),
      ),
    );
    const changed = [...planned].filter(([tag, digest]) => live.get(tag) !== digest).map(([tag]) => tag);
    if (changed.length > 0) {
      return `${noun(changed.length, 'tag')} ${changed.slice(0, 5).join(', ')} now ${noun(changed.length, 'points', 'point')} elsewhere than when planned; run again to plan with the new state`;
    }
    const conflicts = liveConflicts(repo, live, facts);
    if (conflicts.length > 0) {
      const more = conflicts.length > 3 ? ` (and ${conflicts.length - 3} more)` : '';
      return (
        `the live re-check found the plan deleting what stays: ${conflicts.slice(0, 3).join('; ')}${more}; nothing ` +
        'was deleted here. Plan again from the policy (a saved plan must be applied as it was written)'
      );
    }
    return undefined;
  } catch (err) {
    return `re-checking the repository before deleting failed: ${errorMessage(err)}`;
  }
}

/**
 * What the sweep checks right before each DELETE by digest of an untagged revision, beyond the repository's
 * re-check: that it was not pushed again since (its revision link's time now, from the listing's point lookup),
 * or, for a listing without one, the repository's tags again before each chunk of DELETEs.
 */
interface DigestCheck {
  /** The listing's time of each untagged revision of the repository. */
  readonly listed: ReadonlyMap<string, string>;
  /** When an earlier two-phase run untagged it (the journal's time). */
  readonly untaggedAt: ReadonlyMap<string, string>;
  readonly revisionTime?: RevisionTime;
  /** Without a point lookup: the repository's re-check, run again; returns why the rest is not deleted. */
  readonly recheck?: () => Promise<string | undefined>;
}

function digestCheck(
  repo: Inventory['repositories'][number] | undefined,
  options: DeleteOptions,
  listing: boolean,
  again: () => Promise<string | undefined>,
): DigestCheck | undefined {
  if (!repo?.untagged || repo.untagged.length === 0) return undefined;
  const listed = new Map(repo.untagged.map((r) => [r.digest, r.pushedAt]));
  const untaggedAt = new Map(
    (repo.journal ?? []).filter((j) => j.untagged).map((j) => [j.digest, j.recordedAt]),
  );
  if (options.revisionTime) return { listed, untaggedAt, revisionTime: options.revisionTime };
  // Two-phase only: there the sweep's DELETEs come before any tag of the repository is removed, so the re-check
  // still finds the tags as planned.
  return listing && options.untag ? { listed, untaggedAt, recheck: again } : undefined;
}

/** Whole seconds: an S3 HeadObject's LastModified has none of the listing's milliseconds. */
function seconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/**
 * Right before the DELETE of `m`: its revision link as it is now. Gone: nothing to send. Rewritten since the
 * listing, or since a run untagged it: pushed again, it stays. For a child or referrer, the index or subject this
 * run deleted first must still be gone (pushed again, it would reference what is about to go). Returns the entry
 * to report instead of deleting, or undefined to delete.
 */
async function pushedAgain(
  check: DigestCheck | undefined,
  repository: string,
  m: ManifestDeletion,
  outcome: ReadonlyMap<string, ReportEntry['outcome']>,
): Promise<ReportEntry | undefined> {
  const lookup = check?.revisionTime;
  const listed = check?.listed.get(m.digest);
  if (!check || !lookup || listed === undefined) return undefined;
  try {
    for (const d of m.after) {
      if (!isGone(outcome.get(d) ?? 'failed')) continue;
      const back = await lookup(repository, d);
      if (back !== null) {
        return entry(
          repository,
          m,
          'skipped',
          `${d}, deleted first in this run, was pushed again (${back}) before this DELETE; it stays, with what it references`,
        );
      }
    }
    const now = await lookup(repository, m.digest);
    if (now === null) {
      return entry(
        repository,
        m,
        'already-gone',
        'its revision was gone right before its DELETE; none was sent',
      );
    }
    const since = check.untaggedAt.get(m.digest);
    const moved = !(seconds(now) <= seconds(listed)) || (since !== undefined && pushedSinceUntag(now, since));
    if (moved) {
      return entry(
        repository,
        m,
        'skipped',
        `pushed again (${now}) since ${since !== undefined ? `it was untagged (${since})` : `the listing (${listed})`}, seen right before its DELETE: someone promoted it, so it stays`,
      );
    }
    return undefined;
  } catch (err) {
    return entry(
      repository,
      m,
      'failed',
      `checking right before its DELETE whether it was pushed again failed (${errorMessage(err)}); it stays tonight and the next run tries again`,
    );
  }
}

async function applyRepository(
  client: RegistryClient,
  repo: RepositoryPlan,
  probe: ProbeResult,
  concurrency: number,
  signal: AbortSignal | undefined,
  untag: UntagOptions | undefined,
  check: DigestCheck | undefined,
): Promise<ReportEntry[]> {
  if (untag) return untagRepository(client, repo, probe, pLimit(concurrency), signal, untag, check);
  const limit = pLimit(concurrency);
  const entries: ReportEntry[] = [];

  // Tags whose image stays (another kept tag shares it), and tags whose manifest is already gone: the tag only.
  const removals: TagRemoval[] = [
    ...repo.deleteTags.filter((t) => t.method === 'tag-only').map((t) => ({ tag: t.tag, dangling: false })),
    ...danglingToRemove(repo).map((tag) => ({ tag, dangling: true })),
  ];
  entries.push(...(await removeTags(client, repo.name, removals, probe, limit, signal)));

  entries.push(
    ...(await deleteInOrder(client, repo.name, repo.deleteManifests, probe, limit, signal, check)),
  );
  return entries;
}

/**
 * Two-phase, right after the repository's re-check: first what goes by digest tonight (history, leftovers, the
 * sweep of what earlier runs untagged, whose window has passed), then every tag the plan deletes is removed on its
 * own (the tag-only ones, the dangling ones, and those of the manifests it untags), in one batch (on 2.8 every
 * placeholder is written before any is deleted). A deferred manifest is reported 'untagged' once all its tags went.
 */
async function untagRepository(
  client: RegistryClient,
  repo: RepositoryPlan,
  probe: ProbeResult,
  limit: LimitFunction,
  signal: AbortSignal | undefined,
  untag: UntagOptions,
  check: DigestCheck | undefined,
): Promise<ReportEntry[]> {
  const entries = await deleteInOrder(
    client,
    repo.name,
    repo.deleteManifests.filter((m) => !m.deferred),
    probe,
    limit,
    signal,
    check,
  );
  const groups = untagGroups(repo.deleteManifests);
  const recorded = (digest: string): boolean => !untag.unrecorded.has(`${repo.name}@${digest}`);
  const removals: TagRemoval[] = [
    ...repo.deleteTags.filter((t) => t.method === 'tag-only').map((t) => ({ tag: t.tag, dangling: false })),
    ...danglingToRemove(repo).map((tag) => ({ tag, dangling: true })),
    ...[...groups.keys()]
      .filter(recorded)
      .flatMap((d) => repo.deleteManifests.find((m) => m.digest === d)!.tags)
      .map((tag) => ({ tag, dangling: false })),
  ];
  const tagResults = await removeTags(client, repo.name, removals, probe, limit, signal);
  entries.push(...tagResults);
  const tagOutcome = new Map(tagResults.map((e) => [e.reference, e]));
  const rootOf = new Map<string, string>();
  for (const [root, group] of groups) for (const d of group) if (!rootOf.has(d)) rootOf.set(d, root);
  const rootEntry = new Map<string, ReportEntry>();
  for (const m of repo.deleteManifests) {
    if (!m.deferred || !groups.has(m.digest)) continue;
    const unrecorded = untag.unrecorded.get(`${repo.name}@${m.digest}`);
    if (unrecorded !== undefined) {
      rootEntry.set(m.digest, entry(repo.name, m, 'skipped', unrecorded));
      continue;
    }
    const results = m.tags.map((t) => tagOutcome.get(t));
    const bad = results.find((r) => r === undefined || !isGone(r.outcome));
    rootEntry.set(
      m.digest,
      bad === undefined
        ? entry(
            repo.name,
            m,
            'untagged',
            `its tags were removed; restore can bring them back until ${undoUntil(untag.untaggedAt, untag.windowHours)}, then a later run deletes it`,
          )
        : entry(
            repo.name,
            m,
            bad.outcome === 'skipped' ? 'skipped' : 'failed',
            `tag ${bad.reference} was not removed (${bad.reason ?? bad.outcome})`,
          ),
    );
  }
  for (const m of repo.deleteManifests) {
    if (!m.deferred) continue;
    const own = rootEntry.get(m.digest);
    if (own) {
      entries.push(own);
      continue;
    }
    // A child or referrer going with an untagged manifest: it stays tonight, and the sweep takes it with it.
    const root = rootOf.get(m.digest);
    const parent = root === undefined ? undefined : rootEntry.get(root);
    entries.push(
      parent?.outcome === 'untagged'
        ? entry(repo.name, m, 'untagged', `it goes with ${root} when the sweep deletes that`)
        : entry(repo.name, m, 'skipped', `it goes with ${root ?? 'a manifest'} only, which was not untagged`),
    );
  }
  return entries;
}

/**
 * Manifests by digest, level by level: a deletion starts only when everything it depends on is gone. With a
 * `check`, each untagged revision is looked up right before its DELETE (pushedAgain); for a listing without a
 * point lookup, a level holding one goes in chunks as wide as the concurrency, each after the repository's tags
 * were re-checked again (the first chunk has the repository's re-check just before it).
 */
async function deleteInOrder(
  client: RegistryClient,
  repository: string,
  deletions: readonly ManifestDeletion[],
  probe: ProbeResult,
  limit: LimitFunction,
  signal: AbortSignal | undefined,
  check?: DigestCheck,
): Promise<ReportEntry[]> {
  const entries: ReportEntry[] = [];
  const repo = { name: repository };
  const outcome = new Map<string, ReportEntry['outcome']>();
  let first = true;
  let changed: string | undefined;
  for (const level of levels(deletions)) {
    const chunked = check?.recheck !== undefined && level.some((m) => check.listed.has(m.digest));
    const width = Math.max(1, limit.concurrency);
    const chunks = chunked
      ? Array.from({ length: Math.ceil(level.length / width) }, (_, i) =>
          level.slice(i * width, (i + 1) * width),
        )
      : [level];
    for (const chunk of chunks) {
      if (chunked && !first && changed === undefined && !signal?.aborted) changed = await check.recheck();
      first = false;
      const results = await Promise.all(
        chunk.map((m) =>
          limit(async (): Promise<ReportEntry> => {
            if (signal?.aborted) return entry(repo.name, m, 'skipped', `not started: ${stopReason(signal)}`);
            if (changed !== undefined) {
              return entry(
                repo.name,
                m,
                'skipped',
                `not deleted: re-checked right before its DELETE, ${changed}`,
              );
            }
            const blocked = m.after.filter((d) => outcome.has(d) && !isGone(outcome.get(d)!));
            if (blocked.length > 0) {
              return entry(
                repo.name,
                m,
                'skipped',
                `not deleted because ${blocked[0]} could not be deleted first`,
              );
            }
            return (
              (await pushedAgain(check, repo.name, m, outcome)) ?? deleteOne(client, repo.name, m, probe)
            );
          }),
        ),
      );
      for (const r of results) outcome.set(r.reference, r.outcome);
      entries.push(...results);
    }
  }
  return entries;
}

/** Dangling tags are removed from cleaned repositories only; protected and unmatched ones keep them. */
function danglingToRemove(repo: RepositoryPlan): readonly string[] {
  return repo.action === 'cleaned' ? (repo.dangling ?? []) : [];
}

/** A 5xx from the registry: the request may have been carried out in part. */
function isServerError(err: unknown): err is RegistryError {
  return err instanceof RegistryError && (err.details.status ?? 0) >= 500;
}

function isGone(o: ReportEntry['outcome']): boolean {
  return o === 'deleted' || o === 'already-gone';
}

function entry(
  repository: string,
  m: ManifestDeletion,
  outcome: ReportEntry['outcome'],
  reason?: string,
): ReportEntry {
  return {
    repository,
    target: 'manifest',
    reference: m.digest,
    tags: m.tags,
    outcome,
    ...(reason ? { reason } : {}),
  };
}

async function deleteOne(
  client: RegistryClient,
  repository: string,
  m: ManifestDeletion,
  probe: ProbeResult,
): Promise<ReportEntry> {
  try {
    const result = await client.deleteManifest(repository, m.digest);
    return entry(repository, m, result === 'deleted' ? 'deleted' : 'already-gone');
  } catch (err) {
    // distribution can answer 500 after it has deleted the manifest but before it untagged it (its tag lookup
    // failed): look before reporting, and remove the tags it left pointing at nothing.
    if (isServerError(err)) {
      try {
        if ((await client.headManifest(repository, m.digest)) === null) {
          return await removeLeftTags(client, repository, m, probe, err.details.status ?? 500);
        }
      } catch {
        // fall through to the failure below
      }
    }
    return entry(repository, m, 'failed', errorMessage(err));
  }
}

/** After a delete answered 5xx yet the manifest is gone: untag whichever of its tags still lead nowhere. */
async function removeLeftTags(
  client: RegistryClient,
  repository: string,
  m: ManifestDeletion,
  probe: ProbeResult,
  status: number,
): Promise<ReportEntry> {
  const said = `the registry answered ${status}, but the manifest is gone`;
  if (m.tags.length === 0) return entry(repository, m, 'deleted', said);
  const listed = new Set(await client.listTags(repository));
  const left: string[] = [];
  for (const tag of m.tags) {
    // Still listed and still leading nowhere; a tag that resolves again was pushed meanwhile and stays.
    if (listed.has(tag) && (await client.headManifest(repository, tag)) === null) left.push(tag);
  }
  if (left.length === 0) return entry(repository, m, 'deleted', said);
  const removed = await removeTags(
    client,
    repository,
    left.map((tag) => ({ tag, dangling: true })),
    probe,
    pLimit(1),
  );
  const failed = removed.filter((r) => r.outcome === 'failed').map((r) => r.reference);
  return failed.length === 0
    ? entry(
        repository,
        m,
        'deleted',
        `${said}; ${noun(left.length, 'tag')} ${left.join(', ')} it left behind ${noun(left.length, 'was', 'were')} removed`,
      )
    : entry(
        repository,
        m,
        'failed',
        `${said}, and ${noun(failed.length, 'tag')} ${failed.join(', ')} it left pointing at nothing could not be removed; the next run removes them`,
      );
}

interface TagRemoval {
  readonly tag: string;
  /** Its manifest is already gone. */
  readonly dangling: boolean;
}

/** Attempts at removing one placeholder when the registry answers 5xx (its tag lookup races other writes). */
const PLACEHOLDER_ATTEMPTS = 5;

/** Remove tags without touching the images they point at. */
async function removeTags(
  client: RegistryClient,
  repository: string,
  removals: readonly TagRemoval[],
  probe: ProbeResult,
  limit: LimitFunction,
  signal?: AbortSignal,
): Promise<ReportEntry[]> {
  const stopped = (r: TagRemoval): ReportEntry | undefined =>
    signal?.aborted ? result(r, 'skipped', `not started: ${stopReason(signal)}`) : undefined;
  const result = (r: TagRemoval, outcome: ReportEntry['outcome'], reason?: string): ReportEntry => {
    const why = r.dangling ? 'its manifest was already gone' : undefined;
    const text = [why, reason].filter(Boolean).join('; ');
    return {
      repository,
      target: 'tag',
      reference: r.tag,
      tags: r.dangling ? [] : [r.tag],
      outcome,
      ...(text ? { reason: text } : {}),
    };
  };
  if (probe.tagDelete) {
    return Promise.all(
      removals.map((r) =>
        limit(async () => {
          const skip = stopped(r);
          if (skip) return skip;
          try {
            const d = await client.deleteManifest(repository, r.tag);
            return result(r, d === 'deleted' ? 'deleted' : 'already-gone');
          } catch (err) {
            return result(r, 'failed', errorMessage(err));
          }
        }),
      ),
    );
  }
  // distribution 2.8 cannot delete a tag: point it at a tiny placeholder of its own, then delete that, which
  // untags it. Every placeholder is written before any is deleted: a delete reads every tag link of the
  // repository, and a link being rewritten at that moment reads as empty and fails the delete with a 500.
  const placed = await Promise.all(
    removals.map((r) =>
      limit(async () => {
        const skip = stopped(r);
        if (skip) return skip;
        const body = placeholderBody(repository, r.tag);
        try {
          return { r, body, digest: await client.putManifest(repository, r.tag, MEDIA_TYPES.ociIndex, body) };
        } catch (err) {
          return result(r, 'failed', errorMessage(err));
        }
      }),
    ),
  );
  return Promise.all(
    placed.map(async (p) => {
      if (!('body' in p)) return p;
      return limit(async () => {
        const failure = await dropPlaceholder(client, repository, p.r.tag, p.body, p.digest);
        return failure === undefined ? result(p.r, 'deleted') : result(p.r, 'failed', failure);
      });
    }),
  );
}

function placeholderBody(repository: string, tag: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [],
      annotations: {
        [PLACEHOLDER_ANNOTATION]: `${repository}:${tag}`,
        'io.github.registry-janitor.nonce': randomUUID(),
      },
    }),
  );
}

/**
 * Delete a placeholder, which untags its tag. A 5xx can come after the placeholder is gone but before the tag
 * is: then the same bytes are put again (same digest) and deleted again. Returns why it failed, or undefined.
 */
async function dropPlaceholder(
  client: RegistryClient,
  repository: string,
  tag: string,
  body: Uint8Array,
  digest: string,
): Promise<string | undefined> {
  let last = '';
  for (let attempt = 1; ; attempt++) {
    try {
      if ((await client.deleteManifest(repository, digest)) === 'deleted') return undefined;
      last = `the placeholder was gone before its tag`;
    } catch (err) {
      if (!isServerError(err)) {
        return `tag ${tag} now points at placeholder ${digest}, whose delete failed (${errorMessage(err)}); the next run removes it`;
      }
      last = errorMessage(err);
    }
    if (attempt >= PLACEHOLDER_ATTEMPTS) {
      return `tag ${tag} may still point at placeholder ${digest}: its delete failed ${attempt} times (${last}); the next run removes it`;
    }
    await sleep(Math.random() * 50 * 2 ** attempt);
    try {
      await client.putManifest(repository, tag, MEDIA_TYPES.ociIndex, body);
    } catch (err) {
      return `tag ${tag} may still point at placeholder ${digest}: putting it back to delete it again failed (${errorMessage(err)}); the next run removes it`;
    }
  }
}

/**
 * Group deletions into waves: each after every deletion it depends on (`after`), wherever the plan lists it.
 * A dependency cycle cannot come from content digests; if a plan holds one anyway, its members go last, in plan
 * order, rather than never.
 */
export function levels(deletions: readonly ManifestDeletion[]): ManifestDeletion[][] {
  const index = new Map(deletions.map((m, i) => [m.digest, i]));
  const waiting = deletions.map(() => 0);
  const dependents: number[][] = deletions.map(() => []);
  deletions.forEach((m, i) => {
    for (const d of new Set(m.after)) {
      const j = index.get(d);
      if (j === undefined || j === i) continue;
      waiting[i]!++;
      dependents[j]!.push(i);
    }
  });
  const out: ManifestDeletion[][] = [];
  const placed = new Set<number>();
  let wave = deletions.flatMap((_, i) => (waiting[i] === 0 ? [i] : []));
  while (wave.length > 0) {
    out.push(wave.map((i) => deletions[i]!));
    const next: number[] = [];
    for (const i of wave) {
      placed.add(i);
      for (const k of dependents[i]!) if (--waiting[k]! === 0) next.push(k);
    }
    wave = next.sort((x, y) => x - y);
  }
  const cyclic = deletions.filter((_, i) => !placed.has(i));
  if (cyclic.length > 0) out.push(cyclic);
  return out;
}
