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
import { errorMessage, SafetyError } from './errors.ts';
import {
  entriesToRecord,
  journalAfterDeletes,
  journalBeforeDeletes,
  type JournalEntry,
  type JournalStore,
} from './journal.ts';
import type { Policy } from './policy.ts';
import type { HistorySource } from './history.ts';
import type { ManifestCache, RegistryClient } from './ports.ts';
import type { ScanProgress } from './scan.ts';
import {
  applyStep,
  inventoryStep,
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
  let probe = options.dryRun ? DRY_RUN : saved ? NOT_YET : await probeCatalog(options as PlanningJob);
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
      ...(o.cache ? { cache: o.cache } : {}),
      ...(o.history ? { history: o.history } : {}),
      ...(o.onScanProgress ? { onProgress: o.onScanProgress } : {}),
      ...(entries ? { journal: entries } : {}),
    });
    ({ plan: thePlan, applicable } = planStep(inventory, o.policy, options.now, options.maxDeleteFraction));
  }
  await options.onPlan?.(thePlan, applicable);
  const result = { probe, ...(inventory ? { inventory } : {}), plan: thePlan, applicable };
  if (options.dryRun) return { ...result, outcome: 'dry-run' };

  options.onStage?.('guard');
  const refused = refusal(thePlan, applicable);
  if (refused !== undefined) throw new SafetyError(refused);
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
  // Before the first DELETE: what this run is about to delete in dependency order, so that the next run
  // finishes a child whose index went (it is untagged then, and nothing else would ever see it again).
  const recorded = journal ? entriesToRecord(thePlan, options.now) : [];
  if (journal && recorded.length > 0) {
    try {
      await journal.save(journalBeforeDeletes(entries ?? [], recorded));
    } catch (err) {
      throw new SafetyError(
        `nothing was deleted: the journal ${journal.where} could not be written (${errorMessage(err)}); a run ` +
          'records there what it is about to delete, so that the next one finishes what an interruption leaves. ' +
          'Fix the cause, or name a journal that can be written',
        { cause: err },
      );
    }
  }
  const { live, report } = await applyStep(client, thePlan, {
    ...(probe.status === 'done' ? { probe } : {}),
    ...(inventory ? { live: inventory } : {}),
    ...(history ? { history } : {}),
    ...(entries ? { journal: entries } : {}),
    ...(options.onApplyProgress ? { onProgress: options.onApplyProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let journalProblem: string | undefined;
  if (journal && (recorded.length > 0 || (entries ?? []).length > 0)) {
    try {
      await journal.save(journalAfterDeletes(entries ?? [], recorded, thePlan, report));
    } catch (err) {
      journalProblem =
        `the journal ${journal.where} could not be updated after the deletes (${errorMessage(err)}); it still ` +
        'holds what this run was about to delete, and the next run sorts it out';
    }
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

function reportProbe(probe: ProbeStep, options: JobBase): void {
  options.onProbe?.(probe);
  if (probe.status === 'done') assertDeletesWork(probe);
}

/** The catalog as the registry lists it, the first repository the run may clean probed. */
async function probeCatalog(options: PlanningJob): Promise<ProbeStep> {
  let names: string[];
  try {
    names = await options.client.listRepositories();
  } catch {
    // The inventory lists the catalog again, records the failure and makes the plan incomplete (refused): no
    // DELETE, the probe's included, is sent to a registry whose catalog cannot be read.
    return { status: 'skipped', reason: 'the catalog could not be listed' };
  }
  return probeFirstCleanable(options.client, options.policy, names, options.repositories);
}
