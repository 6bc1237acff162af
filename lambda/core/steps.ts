// The job's steps, each one function that both ways of running it call: the single run (core/job.ts, which the
// CLI, the demo and a manual Lambda invoke use) and the Step Functions workflow (lambda/workflow/, one invocation
// per step or per batch of repositories). Pure: the steps talk to the registry through the RegistryClient port
// and leave storing what passes between them (S3 in the workflow, memory in the single run) to their callers.
import pLimit from 'p-limit';
import { ManifestCompactor } from './compact.ts';
import { compileGlob } from './glob.ts';
import { errorMessage } from './errors.ts';
import { jsonPieces } from './json-pieces.ts';
import {
  checkApplicable,
  deletePlan,
  repositoriesToChange,
  type Applicability,
  type DeleteOptions,
} from './executor.ts';
import type { HistorySource } from './history.ts';
import type { JournalEntry } from './journal.ts';
import { rereadForCheck } from './live-check.ts';
import type {
  Inventory,
  ManifestInfo,
  Plan,
  RepositoryInventory,
  Report,
  ScanProblem,
  TagRef,
} from './model.ts';
import { plan as makePlan, type PlanOptions } from './planner.ts';
import { ruleFor, type Policy } from './policy.ts';
import type { ManifestCache, ProbeResult, RegistryClient } from './ports.ts';
import { compareStrings, scanRegistry, type ScanProgress } from './scan.ts';
import { verifyKept, type VerifyResult } from './verify.ts';

/** What the delete probe found. */
export type ProbeStep =
  | {
      readonly status: 'done';
      readonly repository: string;
      readonly deletesEnabled: boolean;
      readonly tagDelete: boolean;
      readonly problem?: string;
    }
  | { readonly status: 'skipped'; readonly reason: string };

/** The repositories a run judges: the catalog, narrowed by the run's globs, sorted; or why it could not be listed. */
export interface CatalogSelection {
  readonly names: readonly string[];
  /** The catalog could not be listed: the inventory is incomplete and nothing is deleted. */
  readonly error?: string;
}

export async function listSelected(
  client: RegistryClient,
  globs: readonly string[] | undefined,
): Promise<CatalogSelection> {
  let names: string[];
  try {
    names = await client.listRepositories();
  } catch (err) {
    return { names: [], error: `listing repositories failed: ${errorMessage(err)}` };
  }
  const filters = globs?.map((g) => compileGlob(g, true));
  return {
    names: [...new Set(names)].filter((n) => !filters || filters.some((f) => f.test(n))).sort(compareStrings),
  };
}

/**
 * DELETE of the zero digest in the first repository the run may clean (a repository protected or matched by no
 * rule is never deleted from, and a token may not grant delete there). `names` in catalog order.
 */
export async function probeFirstCleanable(
  client: RegistryClient,
  policy: Policy,
  names: readonly string[],
  globs?: readonly string[],
): Promise<ProbeStep> {
  const filters = globs?.map((g) => compileGlob(g, true));
  const candidate = names.find((name) => {
    if (filters && !filters.some((f) => f.test(name))) return false;
    const rule = ruleFor(policy, name);
    return rule !== undefined && !rule.protect;
  });
  if (candidate === undefined) {
    return { status: 'skipped', reason: 'no repository in the catalog is cleaned by the policy' };
  }
  return probeStepOf(candidate, await client.probe(candidate));
}

export function probeStepOf(repository: string, result: ProbeResult): ProbeStep {
  return {
    status: 'done',
    repository,
    deletesEnabled: result.deletesEnabled,
    tagDelete: result.tagDelete,
    ...(result.problem !== undefined ? { problem: result.problem } : {}),
  };
}

/**
 * Repositories in batches for the workflow's Map states: in order, a batch closed once it holds `maxTags` tags or
 * `maxRepositories` repositories (a repository is never split; one bigger than `maxTags` is a batch of its own).
 * A repository whose tag count is unknown counts as `maxTags / maxRepositories` tags.
 */
export function batchRepositories(
  counts: readonly { readonly name: string; readonly tags: number | undefined }[],
  limits: { readonly maxTags: number; readonly maxRepositories: number },
): string[][] {
  const unknown = Math.max(1, Math.floor(limits.maxTags / limits.maxRepositories));
  const batches: string[][] = [];
  let current: string[] = [];
  let tags = 0;
  for (const { name, tags: n } of counts) {
    const weight = n ?? unknown;
    if (current.length > 0 && (tags + weight > limits.maxTags || current.length >= limits.maxRepositories)) {
      batches.push(current);
      current = [];
      tags = 0;
    }
    current.push(name);
    tags += weight;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Each repository's tag count, for batching (undefined where the list failed: the inventory records that). */
export async function countTags(
  client: RegistryClient,
  names: readonly string[],
  concurrency = 16,
): Promise<{ name: string; tags: number | undefined }[]> {
  const limit = pLimit(concurrency);
  return Promise.all(
    names.map((name) =>
      limit(async () => {
        try {
          return { name, tags: (await client.listTags(name)).length };
        } catch {
          return { name, tags: undefined };
        }
      }),
    ),
  );
}

export interface InventoryStepOptions {
  readonly policy: Policy;
  /** Narrow to repositories matching these globs. */
  readonly repositories?: readonly string[];
  /** Exactly these repositories (a workflow batch), without listing the catalog. */
  readonly names?: readonly string[];
  readonly cache?: ManifestCache;
  readonly history?: HistorySource;
  readonly onProgress?: (p: ScanProgress) => void;
  /** Repositories not started once aborted are failed reads (the plan is incomplete). */
  readonly signal?: AbortSignal;
  /** The journal's entries: what an interrupted run left is looked up, for the planner to judge. */
  readonly journal?: readonly JournalEntry[];
}

/** Inventory of the registry, or of one batch of its repositories. */
export function inventoryStep(client: RegistryClient, o: InventoryStepOptions): Promise<Inventory> {
  return scanRegistry(client, {
    policy: o.policy,
    ...(o.repositories ? { repositories: o.repositories } : {}),
    ...(o.names ? { names: o.names } : {}),
    ...(o.cache ? { cache: o.cache } : {}),
    ...(o.history ? { history: o.history } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.journal ? { journal: o.journal } : {}),
  });
}

/**
 * The inventories of a registry's batches as one, for the planner: repositories sorted by name, manifests united
 * (a digest names the same bytes in every batch), every batch's errors and warnings, and `errors` added (a
 * catalog that could not be listed, a batch that never wrote its part). A history is complete only when every
 * batch's is.
 */
export function mergeInventories(
  registry: string,
  parts: readonly Inventory[],
  errors: readonly ScanProblem[] = [],
): Inventory {
  const manifests = new Map<string, ManifestInfo>();
  const repositories: RepositoryInventory[] = [];
  const allErrors: ScanProblem[] = [...errors];
  const warnings: ScanProblem[] = [];
  for (const part of parts) {
    for (const [digest, info] of part.manifests) if (!manifests.has(digest)) manifests.set(digest, info);
    repositories.push(...part.repositories);
    allErrors.push(...part.errors);
    warnings.push(...part.warnings);
  }
  repositories.sort((a, b) => compareStrings(a.name, b.name));
  const histories = parts.map((p) => p.history).filter((h) => h !== undefined);
  const broken = histories.find((h) => !h.complete);
  const history =
    histories.length === 0
      ? undefined
      : histories.length < parts.length
        ? { source: histories[0]!.source, complete: false, problem: 'a batch read no untagged history' }
        : (broken ?? histories[0]!);
  const withoutHistory = history?.complete === false;
  return {
    registry,
    repositories: withoutHistory ? repositories.map(({ untagged: _, ...r }) => r) : repositories,
    manifests,
    errors: allErrors,
    warnings,
    ...(history ? { history } : {}),
  };
}

/** The one planner, and the guard's verdict on what it planned. */
export function planStep(
  inventory: Inventory,
  policy: Policy,
  now: Date,
  maxDeleteFraction: number,
  options: PlanOptions = {},
): { readonly plan: Plan; readonly applicable: Applicability } {
  const plan = makePlan(inventory, policy, now, options);
  return { plan, applicable: checkApplicable(plan, maxDeleteFraction) };
}

/** The part of a plan about these repositories (summary, completeness and errors stay the whole plan's). */
export function planFor(plan: Plan, names: readonly string[]): Plan {
  const only = new Set(names);
  return { ...plan, repositories: plan.repositories.filter((r) => only.has(r.name)) };
}

/** Only reached with nothing to delete (no probe was needed). */
const NO_TAG_DELETE: ProbeResult = { deletesEnabled: true, tagDelete: false };

export interface ApplyStepOptions {
  /** The probe's answer, from this run (tag deletes on v3). */
  readonly probe?: ProbeResult;
  /**
   * What the live re-check compares against, read in this invocation (the single run's inventory, read moments
   * ago). Without it the repositories the plan changes are read again now: a plan from a file (a saved plan, the
   * workflow's plan in S3) never decides by itself what stays.
   */
  readonly live?: Inventory;
  /** A storage listing, for the re-read of untagged history. */
  readonly history?: HistorySource;
  /** The journal's entries, for the re-read: the leftovers a plan may finish are looked up again. */
  readonly journal?: readonly JournalEntry[];
  readonly signal?: AbortSignal;
  readonly onProgress?: DeleteOptions['onProgress'];
  /** Two-phase: untag the plan's deferred manifests (DeleteOptions.untag). */
  readonly untag?: DeleteOptions['untag'];
  /** The listing's point lookup (DeleteOptions.revisionTime). @default `history`'s, when it has one */
  readonly revisionTime?: DeleteOptions['revisionTime'];
}

/**
 * The deletes of a checked plan (complete, within the guard, on a registry whose deletes work), each repository
 * re-checked against the registry right before. Safe to run again: a retried batch reads the registry again,
 * deletes only what that re-check allows, and counts what is already gone as gone.
 */
export async function applyStep(
  client: RegistryClient,
  plan: Plan,
  options: ApplyStepOptions = {},
): Promise<{ readonly live: Inventory; readonly report: Report }> {
  const live = options.live ?? (await rereadForCheck(client, plan, options.history, options.journal));
  const revisionTime = options.revisionTime ?? options.history?.revisionTime;
  const report = await deletePlan(plan, client, options.probe ?? NO_TAG_DELETE, live, {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.untag ? { untag: options.untag } : {}),
    ...(revisionTime ? { revisionTime } : {}),
  });
  return { live, report };
}

/** The repositories of a plan that the deletes change (the apply batches skip the rest). */
export const changedRepositories = (plan: Plan): string[] => repositoriesToChange(plan).map((r) => r.name);

export interface VerifyStepOptions {
  /** Only these repositories (a workflow batch). */
  readonly repositories?: readonly string[];
  /** Passes before giving up (right after garbage-collect the registry may still be starting). @default 4 */
  readonly attempts?: number;
  /** The n-th retry waits n times this. @default 2000 */
  readonly retryDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly onRetry?: (attempt: number, problems: readonly string[]) => void;
}

export type VerifyOutcome = VerifyResult & { readonly status: 'ok' | 'failed'; readonly attempts: number };

/** Every kept tag still resolves to its digest and what it reaches is still served; looked at again on problems. */
export async function verifyStep(
  client: RegistryClient,
  plan: Plan,
  inventory: Inventory,
  options: VerifyStepOptions = {},
): Promise<VerifyOutcome> {
  const attempts = Math.max(1, options.attempts ?? 4);
  const delayMs = options.retryDelayMs ?? 2000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt += 1) {
    const result = await verifyKept(
      plan,
      inventory,
      client,
      options.repositories ? { repositories: options.repositories } : {},
    );
    if (result.problems.length === 0) return { status: 'ok', attempts: attempt, ...result };
    if (attempt >= attempts) return { status: 'failed', attempts: attempt, ...result };
    options.onRetry?.(attempt, result.problems);
    await sleep(delayMs * attempt);
  }
}

/** The deletes' reports of several batches as one (entries and failures in repository order). */
export function mergeReports(registry: string, reports: readonly Report[], startedAt: string): Report {
  const by = <T>(list: readonly T[], key: (t: T) => string) =>
    [...list].sort((a, b) => compareStrings(key(a), key(b)));
  const stopped = reports.find((r) => r.stopped !== undefined)?.stopped;
  // Two-phase batches of one run: one undo window, the earliest deadline if they differ.
  const undos = reports.flatMap((r) => (r.undo ? [r.undo] : []));
  const undo =
    undos.length === 0
      ? undefined
      : {
          manifests: undos.reduce((n, u) => n + u.manifests, 0),
          bytesPending: undos.reduce((n, u) => n + u.bytesPending, 0),
          undoUntil: undos.map((u) => u.undoUntil).sort(compareStrings)[0]!,
          ...(undos[0]!.runId !== undefined ? { runId: undos[0]!.runId } : {}),
        };
  return {
    registry,
    startedAt,
    finishedAt:
      reports
        .map((r) => r.finishedAt)
        .sort(compareStrings)
        .at(-1) ?? startedAt,
    tagsDeleted: reports.reduce((n, r) => n + r.tagsDeleted, 0),
    manifestsDeleted: reports.reduce((n, r) => n + r.manifestsDeleted, 0),
    bytesFreedEstimate: reports.reduce((n, r) => n + r.bytesFreedEstimate, 0),
    skippedRepositories: by(
      reports.flatMap((r) => r.skippedRepositories),
      (s) => s.name,
    ),
    failures: by(
      reports.flatMap((r) => r.failures),
      (e) => e.repository,
    ),
    entries: by(
      reports.flatMap((r) => r.entries),
      (e) => e.repository,
    ),
    ...(stopped !== undefined ? { stopped } : {}),
    ...(undo ? { undo } : {}),
  };
}

/**
 * An inventory as plain JSON (its manifests as a list), to pass between invocations: its text a repository and a
 * manifest at a time, for a writer that sends it on as it goes.
 */
export function inventoryJsonPieces(inventory: Inventory): Generator<string> {
  return jsonPieces({ ...inventory, manifests: [...inventory.manifests.values()] }, [
    'repositories',
    'manifests',
  ]);
}

/**
 * The inverse of inventoryJsonPieces (joined). Throws a SyntaxError (or TypeError) on a body that is not one. Each manifest
 * is stored as the scan stores it (`compactor`, shared over a run's parts: one object of a fixed layout, media
 * types and layers shared) and each tag holds its manifest's own digest string: JSON.parse makes a fresh string
 * and object for every occurrence (at 101,000 tags, 151 MB of heap against the scan's 75 MB).
 */
export function inventoryFromJson(body: string, compactor = new ManifestCompactor()): Inventory {
  const raw = JSON.parse(body) as Omit<Inventory, 'manifests'> & { manifests: ManifestInfo[] };
  if (!Array.isArray(raw.manifests) || !Array.isArray(raw.repositories) || typeof raw.registry !== 'string')
    throw new TypeError('not an inventory part (registry, repositories and manifests expected)');
  const manifests = new Map<string, ManifestInfo>();
  for (const m of raw.manifests) manifests.set(m.digest, compactor.compact(m, m.created, m.createdSource));
  // (Array.isArray narrows a readonly array to any[].)
  const listed = raw.repositories as readonly RepositoryInventory[];
  const repositories = listed.map((r) => ({
    ...r,
    tags: r.tags.map((t: TagRef) => ({ tag: t.tag, digest: manifests.get(t.digest)?.digest ?? t.digest })),
  }));
  return { ...raw, repositories, manifests };
}
