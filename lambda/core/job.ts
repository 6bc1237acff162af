// The run the Lambda, the CLI and the demo share, as steps with one owner each: probe (real runs only) →
// inventory → plan → guard → confirm → deletes. Garbage-collect and verify are the callers' own.
import type { Inventory, Plan, Report } from './model.ts';
import {
  assertDeletesWork,
  checkApplicable,
  refusal,
  repositoriesToChange,
  type Applicability,
  type DeleteOptions,
} from './executor.ts';
import { SafetyError } from './errors.ts';
import {
  carryUntag,
  entriesToRecord,
  journalAfterDeletes,
  journalBeforeDeletes,
  journalNotUpdated,
  journalNotWritten,
  type JournalEntry,
  type JournalStore,
} from './journal.ts';
import { rereadForCheck } from './live-check.ts';
import { asTwoPhase } from './planner.ts';
import { confirmUntagged, newRunId, untagIntent, type UntagIntent } from './undo.ts';
import { randomBytes } from 'node:crypto';
import type { Policy } from './policy.ts';
import type { HistorySource } from './history.ts';
import type { ManifestCache, RegistryClient } from './ports.ts';
import type { ScanProgress } from './scan.ts';
import {
  applyStep,
  inventoryStep,
  mergeReports,
  planStep,
  probeFirstCleanable,
  probeStepOf,
  type ProbeStep,
} from './steps.ts';

export type { ProbeStep };

/** The step a job is in, for callers that report where a run failed. */
export type JobStage = 'probe' | 'inventory' | 'guard' | 'deletes';

interface JobBase {
  readonly client: RegistryClient;
  /** Used for the plan's date when planning. */
  readonly now: Date;
  /** A dry run plans and checks, and sends no DELETE at all (not even the probe). */
  readonly dryRun: boolean;
  readonly maxDeleteFraction: number;
  readonly onStage?: (stage: JobStage) => void;
  readonly onProbe?: (probe: ProbeStep) => void;
  /** The plan, with the guard's verdict, before anything is deleted. */
  readonly onPlan?: (plan: Plan, applicable: Applicability) => void | Promise<void>;
  /** Asked after the checks, before the first DELETE, when there is something to change; false deletes nothing. */
  readonly confirm?: (plan: Plan) => Promise<boolean>;
  readonly onApplyProgress?: DeleteOptions['onProgress'];
  /** Stops the deletes: no new DELETE once aborted (DeleteOptions.signal). */
  readonly signal?: AbortSignal;
  /**
   * The journal: its entries are judged with the plan (an interrupted run's leftovers are finished when the live
   * registry shows they are garbage), a real run records what it is about to delete before the first DELETE, and
   * keeps what may still be left over afterwards. A dry run only reads it.
   */
  readonly journal?: JournalStore;
  /**
   * Two-phase apply (give it exactly when a storage listing is configured): the tags the plan deletes are removed
   * and their manifests recorded in the journal (which is then required) with their bytes, restorable for this
   * many hours; the sweep deletes what earlier runs untagged once that has passed. 0: swept in the same run,
   * right after the untagging, from a fresh read and listing.
   */
  readonly undoWindowHours?: number;
  /** Names this run in the undo records (restore takes it). @default a timestamp and a random part */
  readonly runId?: string;
}

/** Plan from the policy against the registry as it is now. */
export interface PlanningJob extends JobBase {
  readonly policy: Policy;
  /** Narrow the run to repositories matching these globs. */
  readonly repositories?: readonly string[];
  readonly cache?: ManifestCache;
  /** A storage listing: untagged history is read and judged too. */
  readonly history?: HistorySource;
  readonly onScanProgress?: (p: ScanProgress) => void;
}

/** Apply a plan made earlier (`plan --json`). */
export interface SavedPlanJob extends JobBase {
  readonly savedPlan: Plan;
  /** A storage listing: what the live re-check needs before a saved plan may delete untagged history. */
  readonly history?: HistorySource;
}

export type JobOptions = PlanningJob | SavedPlanJob;

export interface JobResult {
  readonly probe: ProbeStep;
  /** The inventory planned from; for a saved plan, the re-read of the repositories it changes (when it got that far). */
  readonly inventory?: Inventory;
  readonly plan: Plan;
  readonly applicable: Applicability;
  /** 'dry-run': nothing sent; 'declined': confirm said no; 'applied': the deletes ran (report). */
  readonly outcome: 'dry-run' | 'declined' | 'applied';
  /** The deletes' report, when applied. */
  readonly report?: Report;
  /**
   * Why the journal could not be brought up to date after the deletes (what it held before them stays, so the
   * next run still finishes the leftovers); absent when it was, or when there is none.
   */
  readonly journalProblem?: string;
}

const DRY_RUN: ProbeStep = { status: 'skipped', reason: 'dry run: no DELETE is sent' };
const NOT_YET: ProbeStep = { status: 'skipped', reason: 'probed where the plan deletes, after the guard' };

export async function runJob(options: JobOptions): Promise<JobResult> {
  const { client } = options;
  const saved = 'savedPlan' in options ? options.savedPlan : undefined;

  // Probe first when planning: a real run fails before a long inventory when deletes cannot work anyway. A dry
  // run sends no DELETE at all, the probe's included.
  options.onStage?.('probe');
  const probed = options.dryRun || saved ? undefined : await probeCatalog(options as PlanningJob);
  let probe = options.dryRun ? DRY_RUN : saved ? NOT_YET : probed!.probe;
  reportProbe(probe, options);

  const journal = options.journal;
  const entries: readonly JournalEntry[] | undefined = journal ? await journal.load() : undefined;

  let inventory: Inventory | undefined;
  let thePlan: Plan;
  let applicable: Applicability;
  if (saved) {
    thePlan = saved;
    applicable = checkApplicable(saved, options.maxDeleteFraction);
  } else {
    options.onStage?.('inventory');
    const o = options as PlanningJob;
    inventory = await inventoryStep(client, {
      policy: o.policy,
      ...(o.repositories ? { repositories: o.repositories } : {}),
      // The catalog the probe listed moments ago, so it is read once a run.
      ...(probed?.names ? { names: probed.names } : {}),
      ...(o.cache ? { cache: o.cache } : {}),
      ...(o.history ? { history: o.history } : {}),
      ...(o.onScanProgress ? { onProgress: o.onScanProgress } : {}),
      ...(entries ? { journal: entries } : {}),
    });
    ({ plan: thePlan, applicable } = planStep(
      inventory,
      o.policy,
      options.now,
      options.maxDeleteFraction,
      options.undoWindowHours !== undefined ? { undoWindowHours: options.undoWindowHours } : {},
    ));
  }
  const twoPhase = options.undoWindowHours;
  if (saved && twoPhase !== undefined && saved.undo === undefined) {
    // A plan made without a listing, applied with one: untag what it deletes, like any two-phase run.
    thePlan = asTwoPhase(saved, twoPhase, options.now);
  }
  await options.onPlan?.(thePlan, applicable);
  const result = { probe, ...(inventory ? { inventory } : {}), plan: thePlan, applicable };
  if (options.dryRun) return { ...result, outcome: 'dry-run' };

  options.onStage?.('guard');
  const refused = refusal(thePlan, applicable);
  if (refused !== undefined) throw new SafetyError(refused);
  if (thePlan.undo !== undefined && twoPhase === undefined) {
    throw new SafetyError(
      'nothing was deleted: the plan was made to untag (two-phase, with a storage listing), but this run has no ' +
        'listing and would delete by digest instead. Apply it with the same --storage it was planned with',
    );
  }
  // Only what is untagged needs its record; history and the sweep go by digest, as without two-phase.
  const untags = thePlan.repositories.some((r) => r.deleteManifests.some((m) => m.deferred));
  if (twoPhase !== undefined && !journal && untags) {
    throw new SafetyError(
      'nothing was deleted: two-phase apply records what it untags in the journal (so that restore can bring it ' +
        'back and the sweep deletes it later), and this run has none. Name one with --journal FILE',
    );
  }
  const work = repositoriesToChange(thePlan);
  if (work.length > 0 && probe.status === 'skipped') {
    // A saved plan, or a repository the catalog did not list when the run began: probe where deletes go.
    options.onStage?.('probe');
    probe = probeStepOf(work[0]!.name, await client.probe(work[0]!.name));
    reportProbe(probe, options);
  }
  if (work.length > 0 && options.confirm && !(await options.confirm(thePlan))) {
    return { ...result, probe, outcome: 'declined' };
  }

  // Safety is derived again from the registry before anything is deleted, whatever a saved plan says: a saved
  // plan's repositories are read again now (a plan made in this run has its inventory, read moments ago).
  const history = saved ? (options as SavedPlanJob).history : undefined;
  options.onStage?.('deletes');
  // One id for the run's undo records and its report, so that what apply prints is what restore --run takes.
  const runId = options.runId ?? defaultRunId(options.now);
  const first = await deletePass({ ...options, runId }, thePlan, entries ?? [], probe, {
    ...(inventory ? { live: inventory } : {}),
    ...(history ? { history } : {}),
  });
  let report = first.report;
  let live = first.live;
  let journalProblem = first.journalProblem;
  let journalNow = first.journal;
  // Window 0: the sweep of what this run untagged, in this run: a fresh read of the repositories it changed and a
  // fresh listing (a promotion since shows there), planned again; only the sweep is applied.
  const o = options as PlanningJob;
  if (
    twoPhase === 0 &&
    !saved &&
    o.history &&
    journalNow !== undefined &&
    report.undo !== undefined &&
    report.stopped === undefined &&
    !options.signal?.aborted
  ) {
    const again = await rereadForCheck(client, thePlan, o.history, journalNow);
    const { plan: sweepPlan } = planStep(again, o.policy, new Date(), options.maxDeleteFraction, {
      undoWindowHours: 0,
    });
    const second = await deletePass({ ...options, runId }, sweepOnly(sweepPlan), journalNow, probe, {
      live: again,
    });
    report = mergeReports(thePlan.registry, [report, second.report], report.startedAt);
    report = { ...report, ...(first.report.undo ? { undo: first.report.undo } : {}) };
    live = first.live;
    journalProblem = journalProblem ?? second.journalProblem;
    journalNow = second.journal;
  }
  return {
    ...result,
    inventory: live,
    probe,
    outcome: 'applied',
    report,
    ...(journalProblem !== undefined ? { journalProblem } : {}),
  };
}

/**
 * One pass of deletes with its journal: what it is about to delete in dependency order and (two-phase) what it
 * untags, with the bytes, written before the first request that changes anything; the deletes; then the journal
 * brought up to date. Returns the journal as saved (undefined when it could not be).
 */
async function deletePass(
  options: JobOptions,
  thePlan: Plan,
  entries: readonly JournalEntry[],
  probe: ProbeStep,
  read: { readonly live?: Inventory; readonly history?: HistorySource },
): Promise<{ live: Inventory; report: Report; journal?: JournalEntry[]; journalProblem?: string }> {
  const { client, journal } = options;
  const twoPhase = options.undoWindowHours;
  // Before the first DELETE: what this run is about to delete in dependency order, so that the next run
  // finishes a child whose index went (it is untagged then, and nothing else would ever see it again).
  const recorded = journal ? entriesToRecord(thePlan, options.now) : [];
  // Two-phase: what it untags, with the exact bytes, before the first tag goes.
  const intent: UntagIntent =
    journal && twoPhase !== undefined
      ? await untagIntent(client, thePlan, options.runId ?? defaultRunId(options.now), options.now, {
          repositories: new Set(repositoriesToChange(thePlan).map((r) => r.name)),
        })
      : { entries: [], unrecorded: new Map() };
  if (journal && (recorded.length > 0 || intent.entries.length > 0)) {
    try {
      await journal.save(
        journalBeforeDeletes(entries, carryUntag(entries, [...recorded, ...intent.entries])),
      );
    } catch (err) {
      throw journalNotWritten(journal.where, err);
    }
  }
  // Right before each DELETE by digest of an untagged revision, its link is looked up again (executor.ts).
  const lookup = options.history?.revisionTime;
  const { live, report } = await applyStep(client, thePlan, {
    ...(probe.status === 'done' ? { probe } : {}),
    ...(read.live ? { live: read.live } : {}),
    ...(read.history ? { history: read.history } : {}),
    ...(lookup ? { revisionTime: lookup } : {}),
    journal: entries,
    ...(options.onApplyProgress ? { onProgress: options.onApplyProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(twoPhase !== undefined
      ? {
          untag: {
            untaggedAt: options.now.toISOString(),
            windowHours: twoPhase,
            ...(options.runId !== undefined ? { runId: options.runId } : {}),
            unrecorded: intent.unrecorded,
          },
        }
      : {}),
  });
  if (!journal || (recorded.length === 0 && intent.entries.length === 0 && entries.length === 0))
    return { live, report, ...(journal ? { journal: [...entries] } : {}) };
  const after = journalAfterDeletes(
    entries,
    carryUntag(entries, [...recorded, ...confirmUntagged(intent.entries, report, entries)]),
    thePlan,
    report,
  );
  try {
    await journal.save(after);
    return { live, report, journal: after };
  } catch (err) {
    return {
      live,
      report,
      journalProblem: journalNotUpdated(journal.where, err),
    };
  }
}

/** Of a plan, only what goes by digest tonight (the sweep): its tag deletions become kept, so the re-check holds them. */
function sweepOnly(p: Plan): Plan {
  return {
    ...p,
    repositories: p.repositories.map(({ dangling: _, ...r }) => ({
      ...r,
      kept: [...r.kept, ...r.deleteTags.map((t) => ({ tag: t.tag, digest: t.digest, reasons: [] }))],
      deleteTags: [],
      deleteManifests: r.deleteManifests.filter((m) => !m.deferred),
    })),
  };
}

function defaultRunId(now: Date): string {
  return newRunId(now, randomBytes(3).toString('hex'));
}

function reportProbe(probe: ProbeStep, options: JobBase): void {
  options.onProbe?.(probe);
  if (probe.status === 'done') assertDeletesWork(probe);
}

/**
 * The catalog as the registry lists it (handed to the inventory, which then lists nothing), the first repository
 * the run may clean probed.
 */
async function probeCatalog(options: PlanningJob): Promise<{ probe: ProbeStep; names?: readonly string[] }> {
  let names: string[];
  try {
    names = await options.client.listRepositories();
  } catch {
    // The inventory lists the catalog again, records the failure and makes the plan incomplete (refused): no
    // DELETE, the probe's included, is sent to a registry whose catalog cannot be read.
    return { probe: { status: 'skipped', reason: 'the catalog could not be listed' } };
  }
  return {
    probe: await probeFirstCleanable(options.client, options.policy, names, options.repositories),
    names,
  };
}
