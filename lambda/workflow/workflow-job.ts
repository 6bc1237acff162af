// The workflow's steps, one Lambda invocation each (the Map states' once per batch of repositories), over the same
// core steps as the single run (core/steps.ts): probe → inventory (per batch) → plan → apply (per batch) → collect →
// garbage-collect (Step Functions' own SSM loop, no Lambda waits) → verify (per batch) → report. What passes between
// them is in the run store (S3); the states pass the run id and a batch number, and each step returns a small
// summary. Safety never comes from the store: the plan is made from this run's inventory parts, and every apply
// batch reads its repositories again from the registry before deleting (the same live re-check as a saved plan).
// The journal works as in the single run: read once (probe), recorded before the first DELETE of any batch (plan,
// one writer while the apply batches run in parallel), and brought up to date after them all (collect).
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { parseInvokePayload, type JanitorConfig } from '../config.ts';
import {
  DEFAULT_DEADLINE_MARGIN_SECONDS,
  MAX_WORKFLOW_BATCHES,
  METRICS,
  PLAN_OUTCOMES,
  WORKFLOW_STEPS,
} from '../core/contract.ts';
import { ConfigError, JanitorError, SafetyError, errorMessage } from '../core/errors.ts';
import { ManifestCompactor } from '../core/compact.ts';
import { assertDeletesWork, refusal } from '../core/executor.ts';
import { GcCommandError, gcResultOf } from '../core/gc.ts';
import { gcParameters } from '../core/gc-script.ts';
import type { HistoryListing, HistorySource } from '../core/history.ts';
import { jsonPieces } from '../core/json-pieces.ts';
import {
  carryUntag,
  entriesToRecord,
  journalAfterDeletes,
  journalBeforeDeletes,
  journalNotUpdated,
  journalNotWritten,
  type JournalEntry,
  type JournalStore,
} from '../core/journal.ts';
import { confirmUntagged, untagIntent, type UntagIntent } from '../core/undo.ts';
import { sweptCount } from '../core/untagged-outcome.ts';
import type { Inventory, Plan, Report, RepositoryPlan, Revision, ScanProblem } from '../core/model.ts';
import type { CommandResult, RegistryClient } from '../core/ports.ts';
import { plural } from '../core/report.ts';
import { compareStrings } from '../core/scan.ts';
import {
  applyStep,
  batchRepositories,
  changedRepositories,
  countTags,
  inventoryFromJson,
  inventoryStep,
  inventoryJsonPieces,
  listSelected,
  mergeInventories,
  mergeReports,
  planFor,
  planStep,
  probeFirstCleanable,
  verifyStep,
  type ProbeStep,
  type VerifyOutcome,
} from '../core/steps.ts';
import { runIdOf, type ReportStore } from '../adapters/report-store.ts';
import {
  countTwoPhase,
  logUndo,
  runSettings,
  type InvokeContext,
  type JobLogger,
  type JobMetrics,
  type SavableCache,
} from '../lambda-job.ts';
import { runKeys, type RunStore } from './run-store.ts';

export interface WorkflowDeps {
  readonly config: JanitorConfig;
  readonly store: RunStore;
  /** Connects to the registry (reads the credentials) only in the steps that talk to it. */
  readonly registry: () => Promise<RegistryClient>;
  readonly logger: JobLogger;
  readonly metrics: JobMetrics;
  readonly openCache?: () => Promise<SavableCache>;
  readonly reports?: ReportStore;
  /**
   * The untagged-history listing, where the stack configures one: listed once by the probe step and kept in the
   * run's folder for the inventory batches; the apply batches list again for their live re-check.
   */
  readonly history?: () => HistorySource | undefined;
  /**
   * The journal (the construct's bucket, journal/), as in the single run: what an interrupted run left is read
   * by the probe and judged with the plan; the plan step records what this run is about to delete before any
   * apply batch starts, and the collect step keeps only what may still be left over.
   */
  readonly journal?: (warn: (message: string) => void) => JournalStore;
  /** @default () => new Date() */
  readonly now?: () => Date;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly verifyAttempts?: number;
  readonly verifyRetryDelayMs?: number;
  /** Kept back at the end of an inventory or apply invocation: no new repository is started then. @default 60 s */
  readonly deadlineMarginMs?: number;
  /** The Map states' batches. */
  readonly batchTags: number;
  readonly batchRepositories: number;
}

const runId = z.string();
const batch = z.number().int().min(0).max(100_000);
/** The GetCommandInvocation fields the report reads (the state passes the whole answer). */
const invocation = z.looseObject({
  CommandId: z.string().optional(),
  Status: z.string().optional(),
  StatusDetails: z.string().optional(),
  ResponseCode: z.number().optional(),
  StandardOutputContent: z.string().optional(),
  StandardErrorContent: z.string().optional(),
  ExecutionStartDateTime: z.string().optional(),
  ExecutionEndDateTime: z.string().optional(),
});
const eventSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('probe'), runId, input: z.unknown().optional() }),
  z.strictObject({ step: z.literal('inventory'), runId, batch }),
  z.strictObject({ step: z.literal('plan'), runId }),
  z.strictObject({ step: z.literal('apply'), runId, batch }),
  z.strictObject({ step: z.literal('collect'), runId }),
  z.strictObject({ step: z.literal('verify'), runId, batch }),
  z.strictObject({
    step: z.literal('report'),
    runId,
    gc: z.union([z.strictObject({ skipped: z.string() }), invocation]).optional(),
  }),
]);
export type WorkflowEvent = z.infer<typeof eventSchema>;
type GcState = Extract<WorkflowEvent, { step: 'report' }>['gc'];

/** What the probe leaves for the rest of the run. */
interface RunFile {
  readonly startedAt: string;
  readonly trigger: 'schedule' | 'manual';
  readonly dryRun: boolean;
  readonly skipGc: boolean;
  readonly repositories: readonly string[] | null;
  readonly batches: readonly (readonly string[])[];
  readonly catalogError?: string;
  readonly probe: ProbeStep;
  /** Whether history.json holds a listing (absent: none configured, or `historyError`). */
  readonly history?: { readonly source: string; readonly error?: string };
}

/** The journal as the probe read it, and what the plan step recorded before the deletes. */
interface RunJournal {
  readonly previous: readonly JournalEntry[];
  readonly recorded?: readonly JournalEntry[];
  /**
   * Two-phase: the undo records of what the apply batches untag (written to the journal with `recorded` before
   * any batch starts), when, for how long, under which run id, and the manifests whose record could not be made
   * (their tags stay tonight).
   */
  readonly untag?: {
    readonly entries: readonly JournalEntry[];
    readonly untaggedAt: string;
    readonly windowHours: number;
    readonly runId: string;
    readonly unrecorded: readonly (readonly [string, string])[];
  };
}

/**
 * Two-phase, as in the single run: the window when the function has a storage listing and the journal (where
 * the undo records go); otherwise undefined, and the apply batches delete by digest.
 */
function twoPhaseWindow(deps: WorkflowDeps): number | undefined {
  return deps.config.undoWindowHours !== undefined && deps.history?.() !== undefined && deps.journal
    ? deps.config.undoWindowHours
    : undefined;
}

interface PlanPart {
  readonly plan: Plan;
  /** Per repository, the digests an index references that the registry did not have (for verify). */
  readonly missing: Readonly<Record<string, readonly string[]>>;
}

/** JSON.stringify(part) a repository at a time (a batch's part of the plan is MB at 100,000 tags). */
function* planPartPieces(part: PlanPart): Generator<string> {
  yield '{"plan":';
  yield* jsonPieces(part.plan, ['repositories']);
  yield `,"missing":${JSON.stringify(part.missing)}}`;
}

/** Runs one step of the workflow. Throws what went wrong; Step Functions fails the state with it. */
export async function runWorkflowStep(
  deps: WorkflowDeps,
  event: unknown,
  context: InvokeContext,
): Promise<Record<string, unknown>> {
  const parsed = eventSchema.safeParse(event);
  if (!parsed.success) {
    throw new ConfigError(
      `not a workflow step: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ')}. ` +
        `The state machine sends {"step": one of ${WORKFLOW_STEPS.join(', ')}, "runId": …}; run the whole job ` +
        'in one invocation with the main function instead',
    );
  }
  const e = parsed.data;
  const keys = runKeys(e.runId);
  deps.logger.info(`workflow step ${e.step}`, {
    step: e.step,
    runId: e.runId,
    ...('batch' in e ? { batch: e.batch } : {}),
  });
  switch (e.step) {
    case 'probe':
      return probe(deps, keys, e.runId, e.input);
    case 'inventory':
      return inventory(deps, keys, e.batch, context);
    case 'plan':
      return plan(deps, keys, e.runId);
    case 'apply':
      return apply(deps, keys, e.batch, context);
    case 'collect':
      return collect(deps, keys);
    case 'verify':
      return verify(deps, keys, e.batch);
    case 'report':
      return report(deps, keys, e.runId, e.gc);
  }
}

type Keys = ReturnType<typeof runKeys>;

const indices = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

async function readJson<T>(store: RunStore, key: string): Promise<T | undefined> {
  const body = await store.get(key);
  return body === undefined ? undefined : (JSON.parse(body) as T);
}

async function mustRead<T>(store: RunStore, key: string, what: string): Promise<T> {
  const value = await readJson<T>(store, key);
  if (value === undefined) {
    throw new JanitorError(
      `${what} is missing (${key}): the step before did not finish; start a new execution`,
    );
  }
  return value;
}

/**
 * The whole plan, as the report step needs it, from the batches' parts (each a few MB) rather than plan.json at
 * once (tens of MB, whose text and bytes would be held beside the plan as it is parsed): each part carries the
 * plan's header and its batch's repositories, put back in the plan's order.
 */
async function wholePlan(deps: WorkflowDeps, keys: Keys, run: RunFile): Promise<Plan> {
  if (run.batches.length === 0) return mustRead<Plan>(deps.store, keys.plan, 'the plan');
  let header: Plan | undefined;
  const repositories: RepositoryPlan[] = [];
  for (const n of indices(run.batches.length)) {
    const part = await mustRead<PlanPart>(deps.store, keys.planPart(n), `the plan's part for batch ${n}`);
    header ??= part.plan;
    repositories.push(...part.plan.repositories);
  }
  repositories.sort((a, b) => compareStrings(a.name, b.name));
  return { ...header!, repositories };
}

/** Probe: the settings, the catalog in batches, the delete probe (real runs) and the history listing. */
async function probe(deps: WorkflowDeps, keys: Keys, id: string, input: unknown) {
  const now = deps.now ?? (() => new Date());
  const overrides = parseInvokePayload(input ?? {});
  const settings = runSettings(deps.config, overrides);
  const client = await deps.registry();
  const selection = await listSelected(client, settings.repositories ?? undefined);
  let probed: ProbeStep = settings.dryRun
    ? { status: 'skipped', reason: 'dry run: no DELETE is sent' }
    : { status: 'skipped', reason: 'the catalog could not be listed' };
  if (!settings.dryRun && selection.error === undefined) {
    probed = await probeFirstCleanable(client, deps.config.policy, selection.names);
  }
  deps.logger.info('probe', { probe: probed });
  if (probed.status === 'done') assertDeletesWork(probed);

  const batches = batchRepositories(await countTags(client, selection.names), {
    maxTags: deps.batchTags,
    maxRepositories: deps.batchRepositories,
  });
  if (batches.length > MAX_WORKFLOW_BATCHES) {
    throw new ConfigError(
      `the ${selection.names.length} repositories make ${batches.length} batches of at most ${deps.batchTags} ` +
        `tags or ${deps.batchRepositories} repositories, more than the workflow's ${MAX_WORKFLOW_BATCHES} ` +
        '(an execution keeps at most 25,000 events): raise workflowBatchTags or workflowBatchRepositories, or ' +
        'narrow the run with "repositories"; nothing was changed',
    );
  }
  const source = deps.history?.();
  let history: RunFile['history'];
  if (source) {
    try {
      const listing = await source.list();
      await deps.store.put(
        keys.history,
        JSON.stringify({ source: listing.source, repositories: [...listing.repositories] }),
      );
      history = { source: listing.source };
    } catch (err) {
      history = { source: source.source, error: errorMessage(err) };
    }
  }
  const journal = deps.journal?.((message) => deps.logger.warn(message));
  if (journal) {
    const stored: RunJournal = { previous: await journal.load() };
    await deps.store.put(keys.journal, JSON.stringify(stored));
  }
  const run: RunFile = {
    startedAt: now().toISOString(),
    trigger: overrides.trigger,
    dryRun: settings.dryRun,
    skipGc: overrides.skipGc ?? false,
    repositories: settings.repositories,
    batches,
    ...(selection.error !== undefined ? { catalogError: selection.error } : {}),
    probe: probed,
    ...(history ? { history } : {}),
  };
  await deps.store.put(keys.run, JSON.stringify(run));
  deps.logger.info('run started', {
    runId: id,
    trigger: run.trigger,
    dryRun: run.dryRun,
    registry: deps.config.registryUrl,
    repositories: run.repositories,
    batches: batches.length,
  });
  return {
    runId: id,
    dryRun: run.dryRun,
    repositories: selection.names.length,
    batches: indices(batches.length),
  };
}

/** The history listing the probe kept, narrowed to one batch's repositories. */
function storedHistory(store: RunStore, key: string, run: RunFile, names: readonly string[]): HistorySource {
  const source = run.history!.source;
  return {
    source,
    list: async (): Promise<HistoryListing> => {
      if (run.history!.error !== undefined) throw new JanitorError(run.history!.error);
      const raw = await mustRead<{ repositories: [string, Revision[]][] }>(store, key, 'the history listing');
      const only = new Set(names);
      return { source, repositories: new Map(raw.repositories.filter(([name]) => only.has(name))) };
    },
  };
}

/** Abort `margin` before the invocation would time out. */
function deadline(deps: WorkflowDeps, context: InvokeContext): { signal: AbortSignal; clear: () => void } {
  const stop = new AbortController();
  const margin = deps.deadlineMarginMs ?? DEFAULT_DEADLINE_MARGIN_SECONDS * 1000;
  const left = context.getRemainingTimeInMillis() - margin;
  const reason = `the invocation was about to time out (its last ${Math.round(margin / 1000)} s are kept to write its part); lower the batch size`;
  if (left <= 0) {
    stop.abort(reason);
    return { signal: stop.signal, clear: () => undefined };
  }
  const timer = setTimeout(() => stop.abort(reason), left);
  return { signal: stop.signal, clear: () => clearTimeout(timer) };
}

/** Inventory of one batch, written as its part. */
async function inventory(deps: WorkflowDeps, keys: Keys, n: number, context: InvokeContext) {
  const run = await mustRead<RunFile>(deps.store, keys.run, 'the probe step');
  const names = run.batches[n];
  if (names === undefined) throw new ConfigError(`batch ${n} is not one of the run's ${run.batches.length}`);
  const client = await deps.registry();
  const journal = await readJson<RunJournal>(deps.store, keys.journal);
  const cache = deps.openCache ? await deps.openCache() : undefined;
  const stop = deadline(deps, context);
  try {
    const part = await inventoryStep(client, {
      policy: deps.config.policy,
      names,
      ...(cache ? { cache } : {}),
      ...(run.history ? { history: storedHistory(deps.store, keys.history, run, names) } : {}),
      ...(journal ? { journal: journal.previous } : {}),
      signal: stop.signal,
    });
    await deps.store.put(keys.inventory(n), inventoryJsonPieces(part));
    const tags = part.repositories.reduce((t, r) => t + r.tags.length, 0);
    deps.logger.info('inventory batch', {
      batch: n,
      repositories: names.length,
      tags,
      errors: part.errors.length,
    });
    return { batch: n, repositories: names.length, tags, errors: part.errors.length };
  } finally {
    stop.clear();
    if (cache) deps.logger.info('manifest cache saved', { entries: cache.size, saved: await cache.save() });
  }
}

/**
 * Every batch's part as one inventory. Apart, so that what reading took (the parts' own maps, the compactor's
 * index, the last part's text) is garbage before the planner starts.
 */
async function readParts(deps: WorkflowDeps, keys: Keys, run: RunFile): Promise<Inventory> {
  const parts: Inventory[] = [];
  // One for all the parts: a base layer or media type shared across batches is stored once.
  const compactor = new ManifestCompactor();
  const errors: ScanProblem[] = run.catalogError !== undefined ? [{ message: run.catalogError }] : [];
  for (const n of indices(run.batches.length)) {
    const body = await deps.store.get(keys.inventory(n));
    if (body === undefined) {
      // A batch that failed (after its retries) wrote nothing: what it should have read is unknown.
      errors.push(
        ...run.batches[n]!.map((repository) => ({
          repository,
          message: `inventory batch ${n} failed: not read (see the execution's failed Inventory iteration)`,
        })),
      );
      continue;
    }
    parts.push(inventoryFromJson(body, compactor));
  }
  return mergeInventories(deps.config.registryUrl, parts, errors);
}

/**
 * The one planner over every batch's part. Apart from the step, so that the inventory (the largest thing the
 * step holds) is garbage once the plan is made, before the plan and its report are written out.
 */
async function planParts(deps: WorkflowDeps, keys: Keys, run: RunFile) {
  const now = deps.now ?? (() => new Date());
  const merged = await readParts(deps, keys, run);
  const window = twoPhaseWindow(deps);
  const { plan: thePlan, applicable } = planStep(
    merged,
    deps.config.policy,
    now(),
    deps.config.maxDeleteFraction,
    window !== undefined ? { undoWindowHours: window } : {},
  );
  const missing = new Map(merged.repositories.map((r) => [r.name, r.missing]));
  return { thePlan, applicable, missing };
}

/** The one planner over all the parts: the plan and its report to S3, and whether the run goes on. */
async function plan(deps: WorkflowDeps, keys: Keys, id: string) {
  const now = deps.now ?? (() => new Date());
  const run = await mustRead<RunFile>(deps.store, keys.run, 'the probe step');
  const { thePlan, applicable, missing } = await planParts(deps, keys, run);
  await deps.store.put(keys.plan, jsonPieces(thePlan, ['repositories']));
  for (const [n, names] of run.batches.entries()) {
    const part: PlanPart = {
      plan: planFor(thePlan, names),
      missing: Object.fromEntries(names.map((name) => [name, missing.get(name) ?? []])),
    };
    await deps.store.put(keys.planPart(n), planPartPieces(part));
  }
  const reports = deps.reports
    ? await deps.reports.save({
        runId: runIdOf(new Date(run.startedAt), id),
        startedAt: new Date(run.startedAt),
        plan: thePlan,
        maxDeleteFraction: deps.config.maxDeleteFraction,
      })
    : null;
  const summary = {
    complete: thePlan.complete,
    errors: thePlan.errors.length,
    ...thePlan.summary,
    guard: applicable.guard,
  };
  deps.logger.info('plan', {
    plan: summary,
    ...(thePlan.errors.length > 0 ? { errors: thePlan.errors.slice(0, 20) } : {}),
  });
  const base = { runId: id, plan: summary, reports, batches: indices(run.batches.length) };
  if (run.dryRun) {
    if (!thePlan.complete) {
      return { ...base, outcome: PLAN_OUTCOMES.incomplete, reason: refusal(thePlan, applicable)! };
    }
    addZeros(deps);
    deps.metrics.addMetric(METRICS.errors, MetricUnit.Count, 0);
    deps.metrics.publishStoredMetrics();
    return {
      ...base,
      outcome: PLAN_OUTCOMES.dryRun,
      reason: applicable.guard.ok
        ? 'dry run: nothing was deleted'
        : `dry run: nothing was deleted; a real run would refuse this plan: ${applicable.guard.message}`,
    };
  }
  const refused = refusal(thePlan, applicable);
  if (refused !== undefined) {
    deps.metrics.addMetric(METRICS.errors, MetricUnit.Count, 1);
    deps.metrics.publishStoredMetrics();
    return {
      ...base,
      outcome: thePlan.complete ? PLAN_OUTCOMES.refused : PLAN_OUTCOMES.incomplete,
      reason: refused,
    };
  }
  await recordJournal(deps, keys, thePlan, now(), runIdOf(new Date(run.startedAt), id));
  return {
    ...base,
    outcome: PLAN_OUTCOMES.apply,
    reason: 'the plan is complete and within the delete guard',
  };
}

/**
 * Before the first DELETE of any apply batch: what the run is about to delete in dependency order (a child after
 * its index), so that the next run finishes what an interrupted one leaves; a journal that cannot be written
 * stops the run before anything is deleted.
 */
async function recordJournal(
  deps: WorkflowDeps,
  keys: Keys,
  thePlan: Plan,
  now: Date,
  runId: string,
): Promise<void> {
  const stored = await readJson<RunJournal>(deps.store, keys.journal);
  const journal = deps.journal?.((message) => deps.logger.warn(message));
  if (!stored || !journal) return;
  // As the single run: an untag record the journal held of a digest recorded again keeps its bytes.
  const recorded = carryUntag(stored.previous, entriesToRecord(thePlan, now));
  // Two-phase: the exact bytes of what the batches untag, read now, so that every record is in the journal
  // before the first tag goes (one writer; the batches run in parallel).
  const window = thePlan.undo !== undefined ? twoPhaseWindow(deps) : undefined;
  const intent: UntagIntent =
    window !== undefined && changedRepositories(thePlan).length > 0
      ? await untagIntent(await deps.registry(), thePlan, runId, now, {
          repositories: new Set(changedRepositories(thePlan)),
        })
      : { entries: [], unrecorded: new Map() };
  const untag =
    window !== undefined
      ? {
          entries: intent.entries,
          untaggedAt: now.toISOString(),
          windowHours: window,
          runId,
          unrecorded: [...intent.unrecorded],
        }
      : undefined;
  await deps.store.put(
    keys.journal,
    JSON.stringify({ ...stored, recorded, ...(untag ? { untag } : {}) } satisfies RunJournal),
  );
  if (recorded.length === 0 && intent.entries.length === 0) return;
  try {
    await journal.save(
      journalBeforeDeletes(stored.previous, carryUntag(stored.previous, [...recorded, ...intent.entries])),
    );
  } catch (err) {
    throw journalNotWritten(journal.where, err);
  }
}

function addZeros(deps: WorkflowDeps): void {
  deps.metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, 0);
  deps.metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, 0);
  deps.metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, 0);
  if (twoPhaseWindow(deps) !== undefined) countTwoPhase(deps.metrics, undefined, 0);
}

/** One batch's deletes, each repository probed and re-read live first. Safe to retry. */
async function apply(deps: WorkflowDeps, keys: Keys, n: number, context: InvokeContext) {
  const part = await mustRead<PlanPart>(deps.store, keys.planPart(n), 'the plan step');
  if (!part.plan.complete) throw new SafetyError('the plan is incomplete: nothing is deleted');
  const work = changedRepositories(part.plan);
  let outcome: Report;
  if (work.length === 0) {
    outcome = mergeReports(part.plan.registry, [], (deps.now ?? (() => new Date()))().toISOString());
  } else {
    const client = await deps.registry();
    // The probe's answer (tag deletes on v3) from the registry now, not from the run's file.
    const probed = await client.probe(work[0]!);
    assertDeletesWork(probed);
    const source = deps.history?.();
    const journal = await readJson<RunJournal>(deps.store, keys.journal);
    const stop = deadline(deps, context);
    try {
      outcome = (
        await applyStep(client, part.plan, {
          probe: probed,
          ...(source ? { history: source } : {}),
          ...(journal ? { journal: journal.previous } : {}),
          ...(journal?.untag
            ? {
                untag: {
                  untaggedAt: journal.untag.untaggedAt,
                  windowHours: journal.untag.windowHours,
                  runId: journal.untag.runId,
                  unrecorded: new Map(journal.untag.unrecorded),
                },
              }
            : {}),
          signal: stop.signal,
        })
      ).report;
    } finally {
      stop.clear();
    }
  }
  await deps.store.put(keys.apply(n), JSON.stringify(outcome));
  const summary = {
    batch: n,
    tagsDeleted: outcome.tagsDeleted,
    manifestsDeleted: outcome.manifestsDeleted,
    failures: outcome.failures.length,
    skippedRepositories: outcome.skippedRepositories.length,
    ...(outcome.stopped !== undefined ? { stopped: outcome.stopped } : {}),
  };
  deps.logger.info('apply batch', summary);
  for (const entry of outcome.entries.filter((e) => e.outcome === 'failed' || e.outcome === 'skipped'))
    deps.logger.warn('deleted: entry', { entry });
  return summary;
}

/** The deletes of every batch as one report, and what garbage-collect is to run with (or why it is skipped). */
async function collect(deps: WorkflowDeps, keys: Keys) {
  const run = await mustRead<RunFile>(deps.store, keys.run, 'the probe step');
  const reports: Report[] = [];
  for (const n of indices(run.batches.length)) {
    const part = await readJson<Report>(deps.store, keys.apply(n));
    reports.push(part ?? (await failedBatch(deps, keys, n, run.startedAt)));
  }
  const merged = mergeReports(deps.config.registryUrl, reports, run.startedAt);
  await deps.store.put(keys.deletions, JSON.stringify(merged));
  await finishJournal(deps, keys, merged);
  const gc = deps.config.gc;
  const skip = run.skipGc
    ? 'skip-gc'
    : merged.stopped !== undefined
      ? 'out-of-time'
      : merged.manifestsDeleted === 0
        ? 'nothing-deleted'
        : undefined;
  const parameters = Object.fromEntries(
    Object.entries(
      gcParameters({
        containerName: gc.containerName,
        ...(gc.configPath !== undefined ? { configPath: gc.configPath } : {}),
        mode: gc.mode,
        deleteUntagged: gc.deleteUntagged,
      }),
    ).map(([k, v]) => [k, [v]]),
  );
  return {
    tagsDeleted: merged.tagsDeleted,
    manifestsDeleted: merged.manifestsDeleted,
    failures: merged.failures.length,
    skippedRepositories: merged.skippedRepositories.length,
    gc: skip
      ? { run: false, reason: skip }
      : { run: true, parameters: { ...parameters, executionTimeout: [String(gc.timeoutSeconds)] } },
  };
}

/**
 * An apply batch that failed after its retries wrote no report: what it was to change is reported skipped (some of
 * it may have been deleted before it failed; the journal still names that, and the next run finishes it).
 */
async function failedBatch(deps: WorkflowDeps, keys: Keys, n: number, startedAt: string): Promise<Report> {
  const part = await mustRead<PlanPart>(deps.store, keys.planPart(n), 'the plan step');
  const names = changedRepositories(part.plan);
  deps.logger.error(`apply batch ${n} failed after its retries`, { batch: n, repositories: names.length });
  const reason = `apply batch ${n} failed after its retries (the execution's ApplyBatchFailed state has the cause); the next run plans it again`;
  return {
    ...mergeReports(part.plan.registry, [], startedAt),
    skippedRepositories: names.map((name) => ({ name, reason })),
    entries: names.map((name) => ({
      repository: name,
      target: 'repository' as const,
      reference: '*',
      outcome: 'skipped' as const,
      reason,
    })),
  };
}

/**
 * After every apply batch: the journal keeps only what may still be left over (as the single run leaves it). A
 * journal that cannot be updated is a warning: it still holds what this run was about to delete.
 */
async function finishJournal(deps: WorkflowDeps, keys: Keys, deleted: Report): Promise<void> {
  const stored = await readJson<RunJournal>(deps.store, keys.journal);
  const journal = deps.journal?.((message) => deps.logger.warn(message));
  if (!stored || !journal) return;
  const recorded = stored.recorded ?? [];
  const untagged = stored.untag?.entries ?? [];
  if (recorded.length === 0 && untagged.length === 0 && stored.previous.length === 0) return;
  const thePlan = await mustRead<Plan>(deps.store, keys.plan, 'the plan');
  try {
    // As the single run: an undo record stays only for what the batches did untag.
    const kept = carryUntag(stored.previous, [
      ...recorded,
      ...confirmUntagged(untagged, deleted, stored.previous),
    ]);
    await journal.save(journalAfterDeletes(stored.previous, kept, thePlan, deleted));
  } catch (err) {
    deps.logger.warn(journalNotUpdated(journal.where, err));
  }
}

/** Verify one batch's kept images. */
async function verify(deps: WorkflowDeps, keys: Keys, n: number) {
  const part = await mustRead<PlanPart>(deps.store, keys.planPart(n), 'the plan step');
  const client = await deps.registry();
  const names = part.plan.repositories.map((r) => r.name);
  const inventoryOfMissing: Inventory = {
    registry: part.plan.registry,
    repositories: names.map((name) => ({
      name,
      tags: [],
      missing: part.missing[name] ?? [],
      untaggedSubjects: [],
    })),
    manifests: new Map(),
    errors: [],
    warnings: [],
  };
  const checked = await verifyStep(client, part.plan, inventoryOfMissing, {
    repositories: names,
    ...(deps.verifyAttempts !== undefined ? { attempts: deps.verifyAttempts } : {}),
    ...(deps.verifyRetryDelayMs !== undefined ? { retryDelayMs: deps.verifyRetryDelayMs } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    onRetry: (attempt, problems) =>
      deps.logger.warn('verify: problems found, looking again', {
        batch: n,
        attempt,
        problems: problems.slice(0, 10),
      }),
  });
  await deps.store.put(keys.verify(n), JSON.stringify(checked));
  return {
    batch: n,
    status: checked.status,
    problems: checked.problems.length,
    tagsChecked: checked.tagsChecked,
  };
}

/** The run's end: garbage-collect's outcome read, the report written, the metrics published; failures thrown. */
async function report(deps: WorkflowDeps, keys: Keys, id: string, gcState: GcState | undefined) {
  const now = deps.now ?? (() => new Date());
  const run = await mustRead<RunFile>(deps.store, keys.run, 'the probe step');
  const deleted = await mustRead<Report>(deps.store, keys.deletions, 'the collect step');
  const failures: string[] = [];
  const { metrics, logger } = deps;
  metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, deleted.tagsDeleted);
  metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, deleted.manifestsDeleted);
  // Read once, when the page or the two-phase counts need it.
  const twoPhase = twoPhaseWindow(deps) !== undefined;
  const thePlan = deps.reports || twoPhase ? await wholePlan(deps, keys, run) : undefined;
  if (twoPhase && thePlan) {
    countTwoPhase(metrics, deleted.undo, sweptCount(thePlan, deleted));
    if (deleted.undo) logUndo(logger, deleted.undo);
  }
  if (deleted.failures.length > 0) {
    const first = deleted.failures[0]!;
    failures.push(
      `${plural(deleted.failures.length, 'deletion')} failed, e.g. ${first.repository} ${first.reference}: ${first.reason ?? 'unknown'}`,
    );
  }
  if (deleted.skippedRepositories.length > 0) {
    const s = deleted.skippedRepositories;
    failures.push(
      `${s.length} repositor${s.length === 1 ? 'y was' : 'ies were'} skipped, nothing deleted there, e.g. ${s[0]!.name}: ${s[0]!.reason}`,
    );
  }
  if (deleted.stopped !== undefined)
    failures.push(`the deletes stopped before the end of the plan: ${deleted.stopped}`);

  let gc: Record<string, unknown> = { status: 'skipped', reason: 'not run' };
  let bytesFreed = 0;
  if (gcState && 'skipped' in gcState) {
    gc = { status: 'skipped', reason: gcState.skipped };
  } else if (gcState) {
    const result: CommandResult = {
      status: (['Success', 'Failed', 'TimedOut', 'Cancelled'].includes(gcState.Status ?? '')
        ? gcState.Status
        : 'Failed') as CommandResult['status'],
      exitCode: gcState.ResponseCode ?? null,
      stdout: gcState.StandardOutputContent ?? '',
      stderr: gcState.StandardErrorContent ?? '',
      ...(gcState.CommandId !== undefined ? { commandId: gcState.CommandId } : {}),
    };
    const started = Date.parse(gcState.ExecutionStartDateTime ?? '');
    const ended = Date.parse(gcState.ExecutionEndDateTime ?? '');
    if (Number.isFinite(started) && Number.isFinite(ended))
      metrics.addMetric(METRICS.gcDuration, MetricUnit.Seconds, Math.max(0, (ended - started) / 1000));
    try {
      const outcome = gcResultOf(result, deps.config.gc.timeoutSeconds);
      gc = { ...outcome };
      if (outcome.status === 'Success')
        bytesFreed = Math.max(0, outcome.summary.bytesFreed ?? deleted.bytesFreedEstimate);
      metrics.addMetric(METRICS.gcFailures, MetricUnit.Count, 0);
    } catch (err) {
      gc = {
        status: 'failed',
        error: errorMessage(err),
        ...(err instanceof GcCommandError ? { summary: err.summary } : {}),
      };
      metrics.addMetric(METRICS.gcFailures, MetricUnit.Count, 1);
      failures.push(errorMessage(err));
      logger.error('garbage-collect failed', { gc });
    }
  }
  metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, bytesFreed);

  const verified: VerifyOutcome[] = [];
  const unverified: number[] = [];
  for (const n of indices(run.batches.length)) {
    const v = await readJson<VerifyOutcome>(deps.store, keys.verify(n));
    if (v) verified.push(v);
    else unverified.push(n);
  }
  // A verify batch that failed (after its retries) wrote nothing: its kept images were not checked.
  const problems = [
    ...unverified.map(
      (n) =>
        `verify batch ${n} failed: its repositories were not checked (see the execution's failed Verify iteration)`,
    ),
    ...verified.flatMap((v) => v.problems),
  ];
  metrics.addMetric(METRICS.verifyFailures, MetricUnit.Count, problems.length);
  if (problems.length > 0) {
    failures.push(
      `verification found ${plural(problems.length, 'problem')} with images the policy keeps, e.g. ${problems[0]}; check the registry now (the full list is in the log)`,
    );
  }
  if (deps.reports && thePlan) {
    const saved = await deps.reports.save({
      runId: runIdOf(new Date(run.startedAt), id),
      startedAt: new Date(run.startedAt),
      plan: thePlan,
      outcome: deleted,
      maxDeleteFraction: deps.config.maxDeleteFraction,
      // The plan step wrote the plan's JSON beside the page; the page now shows the outcome too.
      planJson: false,
    });
    if (saved.status !== 'written') logger.warn(`report not saved: ${saved.error}`, { reports: saved });
  }
  const totalSeconds = (now().getTime() - Date.parse(run.startedAt)) / 1000;
  metrics.addMetric(METRICS.runDuration, MetricUnit.Seconds, totalSeconds);
  metrics.addMetric(METRICS.errors, MetricUnit.Count, failures.length > 0 ? 1 : 0);
  metrics.publishStoredMetrics();
  const result = {
    registry: deps.config.registryUrl,
    dryRun: run.dryRun,
    startedAt: run.startedAt,
    finishedAt: now().toISOString(),
    deletions: { ...deleted, entries: deleted.entries.length },
    gc,
    verify: {
      status: problems.length === 0 ? 'ok' : 'failed',
      batches: verified.length,
      tagsChecked: verified.reduce((t, v) => t + v.tagsChecked, 0),
      problems: problems.slice(0, 20),
    },
    bytesFreed,
    totalSeconds,
  };
  if (failures.length > 0) {
    logger.error(`run failed: ${failures.join('; ')}`, { report: result });
    throw new JanitorError(
      failures.length === 1
        ? failures[0]!
        : `the run had ${failures.length} failures:\n  - ${failures.join('\n  - ')}`,
    );
  }
  logger.info('run finished', { report: result });
  return result;
}
