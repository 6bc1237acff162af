// One Lambda invocation: probe → inventory → plan → guard → deletes → garbage-collect → verify → report. Every step
// logs structured JSON; metrics are published even when a step fails, and a failure is thrown after it is logged.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as MetricUnitName } from '@aws-lambda-powertools/metrics/types';
import { loadConfig, parseInvokePayload, type InvokeOverrides, type JanitorConfig } from './config.ts';
import { ENV, METRICS } from './core/contract.ts';
import { JanitorError, SafetyError, errorMessage } from './core/errors.ts';
import { GcCommandError, runGc, type GcResult } from './core/gc.ts';
import type { GcSummary } from './core/gc-script.ts';
import type { Applicability } from './core/executor.ts';
import { runJob, type JobResult, type JobStage, type ProbeStep } from './core/job.ts';
import type { HistorySource } from './core/history.ts';
import type { HistoryStatus, Inventory, Plan, PlanSummary, Report, ScanProblem } from './core/model.ts';
import type { CommandRunner, RegistryClient, ManifestCache } from './core/ports.ts';
import { plural } from './core/report.ts';
import type { VerifyResult } from './core/verify.ts';
import { verifyStep as verifyKeptStep } from './core/steps.ts';
import { restoreRunPayload } from './core/undo.ts';
import { sweptCount, untaggedOutcome, type UntaggedOutcome } from './core/untagged-outcome.ts';
import { runIdOf, type ReportStore, type ReportsStep } from './adapters/report-store.ts';
import type { JournalStore } from './core/journal.ts';
import {
  isRestorePayload,
  parseRestorePayload,
  runLambdaRestore,
  type LambdaRestoreResult,
  type RestoreRequest,
} from './lambda-restore.ts';

/** The part of Powertools' Logger the job uses (so tests can pass a recorder). */
export interface JobLogger {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

/** The part of Powertools' Metrics the job uses. */
export interface JobMetrics {
  addMetric(name: string, unit: MetricUnitName, value: number): void;
  publishStoredMetrics(): void;
}

/** The part of the Lambda context the job uses. */
export interface InvokeContext {
  getRemainingTimeInMillis(): number;
  readonly awsRequestId?: string;
}

export interface LambdaJobDeps {
  readonly registry: RegistryClient;
  /** Runs the garbage-collect script on the registry host (SSM Run Command in the Lambda). */
  readonly runner: CommandRunner;
  readonly logger: JobLogger;
  readonly metrics: JobMetrics;
  /** @default runGc from core/gc.ts */
  readonly runGc?: typeof runGc;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Waits between verification attempts. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Verification passes before giving up: right after garbage-collect the registry is restarting, and the first
   * reads may fail. @default 4
   */
  readonly verifyAttempts?: number;
  /** Wait before the n-th retry is n times this. @default 2000 */
  readonly verifyRetryDelayMs?: number;
  /**
   * Time kept back at the end of the invocation: this long before the function would time out, no new DELETE is
   * sent, garbage-collect is skipped and the partial report is logged. @default 60000 (a DELETE in flight may
   * take the client's whole timeout, and the report and metrics must still go out)
   */
  readonly deadlineMarginMs?: number;
  /**
   * Opens the manifest cache (an S3 object in the Lambda). It never throws: a missing or unreadable cache only
   * means reading everything again, and it cannot change a plan.
   */
  readonly openCache?: () => Promise<SavableCache>;
  /** Keeps each run's HTML report and JSON plan (in the Lambda, the construct's bucket under reports/). */
  readonly reports?: ReportStore;
  /**
   * Lists the registry's storage (HISTORY_STORAGE): untagged history is judged, and nothing a staying untagged
   * manifest references is deleted. A listing that fails makes only the history incomplete.
   */
  readonly history?: HistorySource;
  /**
   * The journal (in the Lambda, the construct's bucket under journal/): what a run is about to delete, so the
   * next one finishes what an interrupted one started. `warn` hears about a journal that cannot be used.
   */
  readonly journal?: (warn: (message: string) => void) => JournalStore;
}

/** A manifest cache that is written back after the inventory. `save` never throws. */
export interface SavableCache extends ManifestCache {
  readonly size: number;
  save(): Promise<boolean>;
}

export type { ProbeStep };

export interface PlanStep extends PlanSummary {
  readonly generatedAt: string;
  readonly complete: boolean;
  readonly errors: readonly ScanProblem[];
  readonly warnings: number;
  /** Whether the delete guard lets this plan through (`MAX_DELETE_FRACTION`). */
  readonly guard: { readonly ok: boolean; readonly message?: string };
  /** Where untagged history was listed from, and whether the run may act on it; absent without a listing. */
  readonly history?: HistoryStatus;
}

/**
 * The delete report without its per-manifest entries (those are in the log); with a complete storage listing,
 * what became of the untagged history the plan deleted, counted apart.
 */
export type DeletionStep = Omit<Report, 'entries'> & {
  readonly entries: number;
  readonly untagged?: UntaggedOutcome;
};

export type GcStep =
  | {
      readonly status: 'skipped';
      readonly reason: 'dry-run' | 'skip-gc' | 'nothing-deleted' | 'out-of-time';
    }
  | { readonly status: 'Success'; readonly commandId?: string; readonly summary: GcSummary }
  | { readonly status: 'InProgress'; readonly commandId?: string }
  | {
      readonly status: 'failed';
      readonly error: string;
      readonly commandId?: string;
      readonly summary?: GcSummary;
    };

export type VerifyStep =
  | { readonly status: 'skipped'; readonly reason: string }
  | (VerifyResult & { readonly status: 'ok' | 'failed'; readonly attempts: number });

/** The invocation's result: logged at the end and returned by the handler. */
export interface LambdaRunReport {
  readonly registry: string;
  readonly trigger: InvokeOverrides['trigger'];
  readonly dryRun: boolean;
  /** The repository globs the run was narrowed to, or null for all. */
  readonly repositories: readonly string[] | null;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly probe: ProbeStep;
  readonly plan: PlanStep | null;
  /** Null on a dry run. */
  readonly deletions: DeletionStep | null;
  readonly gc: GcStep | null;
  readonly verify: VerifyStep | null;
  /** Where the run's HTML report and JSON plan went; null without a reports bucket or before a plan was made. */
  readonly reports: ReportsStep | null;
  /** Measured by garbage-collect (du before and after), else the plan's estimate for what was deleted; 0 without GC. */
  readonly bytesFreed: number;
  readonly durations: {
    readonly totalSeconds: number;
    readonly probeSeconds: number;
    readonly scanAndPlanSeconds: number;
    readonly deleteSeconds: number;
    readonly gcSeconds: number;
    readonly verifySeconds: number;
  };
}

export { METRICS };

type Stage = 'config' | JobStage | 'gc' | 'verify';

/** Log entries stay well under CloudWatch's 256 KB per event. */
const TAGS_PER_LOG_ENTRY = 500;

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The run's record: each step writes its own part, and the report is read from it at any point. */
interface RunRecord {
  stage: Stage;
  probe: ProbeStep;
  plan: PlanStep | null;
  deletions: DeletionStep | null;
  gc: GcStep | null;
  verify: VerifyStep | null;
  reports: ReportsStep | null;
  bytesFreed: number;
  readonly durations: {
    -readonly [K in Exclude<keyof LambdaRunReport['durations'], 'totalSeconds'>]: number;
  };
  /** Failures after the deletes began, reported together at the end. */
  readonly failures: { stage: Stage; error: Error }[];
}

interface RunContext {
  readonly deps: LambdaJobDeps;
  readonly config: JanitorConfig;
  readonly overrides: InvokeOverrides;
  readonly dryRun: boolean;
  readonly repositories: readonly string[] | null;
  readonly now: () => Date;
  readonly record: RunRecord;
  readonly context: InvokeContext;
  /**
   * Two-phase apply: the undo window, when the function lists untagged history and has the journal (absent:
   * delete by digest).
   */
  readonly undoWindowHours?: number;
}

/**
 * Run the configured job once, narrowed or rehearsed by `overrides`. Returns the report; throws (after logging
 * it and publishing the Errors metric) when any step fails, including a verification that finds a kept image
 * broken.
 */
export async function runLambdaJob(
  deps: LambdaJobDeps,
  config: JanitorConfig,
  overrides: InvokeOverrides,
  context: InvokeContext,
): Promise<LambdaRunReport> {
  const { logger, metrics } = deps;
  const settings = runSettings(config, overrides);
  const now = deps.now ?? (() => new Date());
  const started = now();
  const run: RunContext = {
    deps,
    config,
    overrides,
    dryRun: settings.dryRun,
    repositories: settings.repositories,
    now,
    context,
    ...(config.undoWindowHours !== undefined && deps.history && deps.journal
      ? { undoWindowHours: config.undoWindowHours }
      : {}),
    record: {
      stage: 'probe',
      probe: { status: 'skipped', reason: 'not reached' },
      plan: null,
      deletions: null,
      gc: null,
      verify: null,
      reports: null,
      bytesFreed: 0,
      durations: { probeSeconds: 0, scanAndPlanSeconds: 0, deleteSeconds: 0, gcSeconds: 0, verifySeconds: 0 },
      failures: [],
    },
  };
  const report = (): LambdaRunReport => reportOf(run, started);
  if (config.undoWindowHours !== undefined && deps.history && !deps.journal) {
    logger.warn(
      `two-phase apply is off: it records what it untags in the journal in the construct's bucket, and this ` +
        `function has none (${ENV.cacheBucket} is not set), so it deletes by digest. Deploy with the construct (it ` +
        `sets ${ENV.cacheBucket}), or set ${ENV.storage}=none to say so`,
    );
  }

  logger.info('run started', {
    trigger: overrides.trigger,
    dryRun: run.dryRun,
    registry: config.registryUrl,
    repositories: run.repositories,
    skipGc: overrides.skipGc ?? false,
    gcMode: config.gc.mode,
    history: deps.history?.source ?? null,
    undoWindowHours: run.undoWindowHours ?? null,
    maxDeleteFraction: config.maxDeleteFraction,
    requestId: context.awsRequestId,
  });

  try {
    const job = await planAndDelete(run);
    await storeReports(run, job, started, context.awsRequestId);
    if (run.dryRun) {
      endDryRun(run);
    } else {
      recordDeletions(run, job.plan, job.report!);
      if (job.report!.stopped === undefined) {
        await collectGarbageStep(run, job.report!);
        await verifyStep(run, job);
      } else {
        stoppedStep(run, job.report!.stopped);
      }
      metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, run.record.bytesFreed);
      throwFailures(run);
    }
    const result = report();
    metrics.addMetric(METRICS.errors, MetricUnit.Count, 0);
    metrics.addMetric(METRICS.runDuration, MetricUnit.Seconds, result.durations.totalSeconds);
    logger.info('run finished', { report: result });
    return result;
  } catch (err) {
    const partial = report();
    const { stage } = run.record;
    logger.error(`run failed during ${stage}: ${errorMessage(err)}`, { stage, error: err, report: partial });
    metrics.addMetric(METRICS.errors, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.runDuration, MetricUnit.Seconds, partial.durations.totalSeconds);
    throw err;
  } finally {
    metrics.publishStoredMetrics();
  }
}

/**
 * What one invocation runs: the stack's settings, which a manual payload can only make safer (a dry run, no
 * garbage-collect, fewer repositories: its globs select among the repositories the policy judges, so they narrow
 * and never widen). A payload asking for a real run on a dry-run stack is refused, before anything is read,
 * unless the stack allows manual applies (ALLOW_MANUAL_APPLY).
 * @throws SafetyError
 */
export function runSettings(
  config: JanitorConfig,
  overrides: InvokeOverrides,
): { readonly dryRun: boolean; readonly repositories: readonly string[] | null } {
  if (overrides.dryRun === false && config.dryRun && !config.allowManualApply) {
    throw new SafetyError(
      'the payload asks for a real run ("dryRun": false), but this stack is deployed as a dry run ' +
        '(DRY_RUN=true), so nothing was read or deleted. Invoke without "dryRun" to rehearse, deploy with ' +
        'dryRun=false for real runs, or let manual payloads apply with the allowManualApply prop or context key ' +
        '(ALLOW_MANUAL_APPLY=true).',
    );
  }
  return { dryRun: overrides.dryRun ?? config.dryRun, repositories: overrides.repositories ?? null };
}

function reportOf(run: RunContext, started: Date): LambdaRunReport {
  const { record, now } = run;
  return {
    registry: run.config.registryUrl,
    trigger: run.overrides.trigger,
    dryRun: run.dryRun,
    repositories: run.repositories,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    probe: record.probe,
    plan: record.plan,
    deletions: record.deletions,
    gc: record.gc,
    verify: record.verify,
    reports: record.reports,
    bytesFreed: record.bytesFreed,
    durations: { totalSeconds: seconds(now, started), ...record.durations },
  };
}

const seconds = (now: () => Date, since: Date): number => (now().getTime() - since.getTime()) / 1000;

/** Probe → inventory → plan → guard → deletes: the job the CLI runs too, with the cache around the inventory. */
async function planAndDelete(run: RunContext): Promise<JobResult> {
  const { deps, config, record, now } = run;
  const { logger } = deps;
  let t = now();
  let planned: Date | undefined;
  const cache = deps.openCache ? await deps.openCache() : undefined;
  if (cache) logger.info('manifest cache', { entries: cache.size });
  const stop = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  try {
    const job = await runJob({
      client: deps.registry,
      ...(cache ? { cache } : {}),
      policy: config.policy,
      now: now(),
      dryRun: run.dryRun,
      maxDeleteFraction: config.maxDeleteFraction,
      ...(run.repositories ? { repositories: run.repositories } : {}),
      ...(deps.history ? { history: deps.history } : {}),
      ...(run.undoWindowHours !== undefined ? { undoWindowHours: run.undoWindowHours } : {}),
      signal: stop.signal,
      ...(deps.journal ? { journal: deps.journal((message) => logger.warn(message)) } : {}),
      onStage: (stage) => {
        if (stage === 'inventory') {
          record.durations.probeSeconds = seconds(now, t);
          t = now();
        }
        if (stage === 'deletes') deadline = stopNearDeadline(run, stop);
        record.stage = stage;
      },
      onProbe: (probe) => {
        record.probe = probe;
        logger.info('probe', { probe });
      },
      onPlan: (plan, applicable) => {
        planned = now();
        record.durations.scanAndPlanSeconds = seconds(now, t);
        record.plan = planStepOf(plan, applicable);
        logPlan(logger, plan, record.plan);
        countHistory(deps.metrics, plan);
      },
    });
    if (planned) record.durations.deleteSeconds = seconds(now, planned);
    if (job.journalProblem !== undefined) logger.warn(job.journalProblem);
    return job;
  } finally {
    clearTimeout(deadline);
    // What the inventory learned is worth keeping whatever happens next.
    if (cache) logger.info('manifest cache saved', { entries: cache.size, saved: await cache.save() });
  }
}

/** The run's HTML report and JSON plan, kept in the bucket: a failure to write them is a warning, never a failed run. */
async function storeReports(
  run: RunContext,
  job: JobResult,
  started: Date,
  requestId?: string,
): Promise<void> {
  const { deps, config, record } = run;
  if (!deps.reports) return;
  const step = await deps.reports.save({
    runId: runIdOf(started, requestId ?? `local-${started.getTime().toString(36)}`),
    startedAt: started,
    plan: job.plan,
    ...(job.report ? { outcome: job.report } : {}),
    maxDeleteFraction: config.maxDeleteFraction,
  });
  record.reports = step;
  if (step.status === 'written') deps.logger.info('report', { reports: step });
  else deps.logger.warn(`report not saved: ${step.error}`, { reports: step });
}

/** Out of time during the deletes: no garbage-collect (it would not finish either), no verify, and a failed run. */
function stoppedStep(run: RunContext, reason: string): void {
  const { record, deps } = run;
  record.gc = { status: 'skipped', reason: 'out-of-time' };
  record.verify = { status: 'skipped', reason: `stopped before the end of the plan: ${reason}` };
  deps.logger.warn('deletes stopped before the end of the plan', { reason, deletions: record.deletions });
  record.failures.push({
    stage: 'deletes',
    error: new JanitorError(
      `the deletes stopped before the end of the plan (${reason}); what the report lists as deleted was ` +
        'deleted and nothing else; garbage-collect was skipped. The next run plans the rest; if this repeats, ' +
        'raise the function timeout or narrow the run with a "repositories" payload',
    ),
  });
}

/** Abort the deletes `margin` before the invocation would time out (at once when that is already past). */
function stopNearDeadline(run: RunContext, stop: AbortController): NodeJS.Timeout | undefined {
  const margin = run.deps.deadlineMarginMs ?? 60_000;
  const left = run.context.getRemainingTimeInMillis() - margin;
  const reason =
    `the function was about to time out (the last ${Math.round(margin / 1000)} s of the invocation are kept ` +
    'for the report)';
  if (left <= 0) {
    stop.abort(reason);
    return undefined;
  }
  return setTimeout(() => stop.abort(reason), left);
}

/** A dry run ends after the plan; an incomplete inventory still fails it (the registry could not be read). */
function endDryRun(run: RunContext): void {
  const { record, deps } = run;
  const plan = record.plan!;
  if (!plan.complete) {
    record.stage = 'guard';
    throw new SafetyError(
      `the inventory is incomplete: ${plural(plan.errors.length, 'read')} failed (see the plan in the log); fix the ` +
        'cause (network, credentials, registry health) and run again',
    );
  }
  if (!plan.guard.ok)
    deps.logger.warn('dry run: a real run would refuse this plan', { guard: plan.guard.message });
  record.gc = { status: 'skipped', reason: 'dry-run' };
  record.verify = { status: 'skipped', reason: 'dry run: nothing changed' };
  // Zeros rather than gaps, so the dashboard shows that the janitor ran.
  deps.metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, 0);
  deps.metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, 0);
  deps.metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, 0);
  if (plan.history) countUntaggedDeletions(deps.metrics, undefined);
  if (run.undoWindowHours !== undefined) countTwoPhase(deps.metrics, undefined, 0);
}

/**
 * Two-phase: what tonight untagged (restorable, its bytes reclaimed after the window: the report's `undo`, as the
 * CLI's apply report has it) and what the sweep of earlier runs' untagging deleted; zeros on a dry run.
 */
export function countTwoPhase(metrics: JobMetrics, undo: Report['undo'], swept: number): void {
  metrics.addMetric(METRICS.manifestsUntagged, MetricUnit.Count, undo?.manifests ?? 0);
  metrics.addMetric(METRICS.bytesPending, MetricUnit.Bytes, undo?.bytesPending ?? 0);
  metrics.addMetric(METRICS.manifestsSwept, MetricUnit.Count, swept);
}

/** Two-phase: the run id, until when its untagging can be undone, and the manual invoke payload that does it. */
export function logUndo(logger: JobLogger, undo: NonNullable<Report['undo']>): void {
  logger.info(`untagged ${plural(undo.manifests, 'manifest')}: restorable until ${undo.undoUntil}`, {
    undo: {
      ...(undo.runId !== undefined ? { runId: undo.runId } : {}),
      undoUntil: undo.undoUntil,
      manifests: undo.manifests,
      bytesPending: undo.bytesPending,
      ...(undo.runId !== undefined ? { restorePayload: restoreRunPayload(undo.runId) } : {}),
    },
  });
}

/**
 * The plan's side of untagged history, whenever a listing is configured (a dry run's too): whether the listing
 * worked, and how many untagged manifests the plan deletes (0 when it could not judge them).
 */
function countHistory(metrics: JobMetrics, plan: Plan): void {
  if (!plan.history) return;
  metrics.addMetric(METRICS.historyListingFailures, MetricUnit.Count, plan.history.complete ? 0 : 1);
  metrics.addMetric(METRICS.untaggedPlanned, MetricUnit.Count, untaggedOutcome(plan)?.planned ?? 0);
}

/** What the deletes did to untagged history, apart from the tags; zeros on a dry run or without a judged listing. */
function countUntaggedDeletions(metrics: JobMetrics, untagged: UntaggedOutcome | undefined): void {
  metrics.addMetric(METRICS.untaggedDeleted, MetricUnit.Count, untagged?.deleted ?? 0);
  metrics.addMetric(METRICS.untaggedFailures, MetricUnit.Count, untagged?.failed ?? 0);
  metrics.addMetric(METRICS.untaggedBytesFreed, MetricUnit.Bytes, untagged?.bytesFreedEstimate ?? 0);
}

/** The deletes' report: logged per repository, counted, and a failed delete remembered for the end. */
function recordDeletions(run: RunContext, plan: Plan, deleted: Report): void {
  const { record, deps } = run;
  const untagged = untaggedOutcome(plan, deleted);
  record.deletions = deletionStepOf(deleted, untagged);
  logDeletions(deps.logger, plan, deleted);
  deps.metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, deleted.tagsDeleted);
  deps.metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, deleted.manifestsDeleted);
  if (plan.history) countUntaggedDeletions(deps.metrics, untagged);
  if (run.undoWindowHours !== undefined) countTwoPhase(deps.metrics, deleted.undo, sweptCount(plan, deleted));
  if (deleted.undo) logUndo(deps.logger, deleted.undo);
  // A failed delete must not skip GC or the check of what the run kept: it fails the run at the end.
  const first = deleted.failures[0];
  if (first) {
    record.failures.push({
      stage: 'deletes',
      error: new JanitorError(
        `${plural(deleted.failures.length, 'deletion')} failed, e.g. ${first.repository} ${first.reference}: ` +
          `${first.reason ?? 'unknown'}; the rest of the plan was applied; the next run plans them again`,
      ),
    });
  }
  // A skipped repository is one the re-check before deleting refused (it changed, or the plan would delete
  // what stays): nothing was deleted there, and the run says so by failing.
  const skipped = deleted.skippedRepositories;
  if (skipped.length > 0 && deleted.stopped === undefined) {
    record.failures.push({
      stage: 'deletes',
      error: new JanitorError(
        `${skipped.length} ${skipped.length === 1 ? 'repository was' : 'repositories were'} skipped, nothing ` +
          `deleted there, e.g. ${skipped[0]!.name}: ${skipped[0]!.reason}`,
      ),
    });
  }
}

async function collectGarbageStep(run: RunContext, deleted: Report): Promise<void> {
  const { record, deps, now } = run;
  record.stage = 'gc';
  if (run.overrides.skipGc) {
    record.gc = { status: 'skipped', reason: 'skip-gc' };
    return;
  }
  if (deleted.manifestsDeleted === 0) {
    record.gc = { status: 'skipped', reason: 'nothing-deleted' };
    return;
  }
  const t = now();
  const outcome = await collectGarbage(deps, run.config);
  record.durations.gcSeconds = seconds(now, t);
  const gc = (record.gc = outcome.step);
  deps.metrics.addMetric(METRICS.gcDuration, MetricUnit.Seconds, record.durations.gcSeconds);
  deps.metrics.addMetric(METRICS.gcFailures, MetricUnit.Count, outcome.error ? 1 : 0);
  if (outcome.error) {
    deps.logger.error('garbage-collect failed', { gc, error: outcome.error });
    record.failures.push({ stage: 'gc', error: outcome.error });
  } else {
    deps.logger.info('garbage-collect', { gc });
  }
  if (gc.status === 'Success') {
    record.bytesFreed = Math.max(0, gc.summary.bytesFreed ?? deleted.bytesFreedEstimate);
  }
}

async function verifyStep(run: RunContext, job: JobResult): Promise<void> {
  const { record, deps, now } = run;
  record.stage = 'verify';
  if (record.gc?.status === 'InProgress') {
    record.verify = { status: 'skipped', reason: 'garbage-collect is still running on the registry host' };
    return;
  }
  const t = now();
  const checked = await verifyWithRetry(deps, job.plan, job.inventory!);
  record.verify = checked;
  record.durations.verifySeconds = seconds(now, t);
  deps.metrics.addMetric(METRICS.verifyFailures, MetricUnit.Count, checked.problems.length);
  if (checked.status === 'failed') {
    deps.logger.error('verify: kept images are damaged', { verify: checked });
    record.failures.push({
      stage: 'verify',
      error: new JanitorError(
        `verification found ${plural(checked.problems.length, 'problem')} with images the policy keeps, e.g. ` +
          `${checked.problems[0]}; check the registry now (the full list is in the log)`,
      ),
    });
  } else {
    deps.logger.info('verify', { verify: checked });
  }
}

function throwFailures(run: RunContext): void {
  const { failures } = run.record;
  const first = failures[0];
  if (!first) return;
  run.record.stage = first.stage;
  if (failures.length === 1) throw first.error;
  throw new JanitorError(
    `the run had ${failures.length} failures:\n  - ${failures.map((f) => errorMessage(f.error)).join('\n  - ')}`,
    { cause: first.error },
  );
}

async function collectGarbage(
  deps: LambdaJobDeps,
  config: JanitorConfig,
): Promise<{ step: GcStep; error?: Error }> {
  const gcRun = deps.runGc ?? runGc;
  let result: GcResult;
  try {
    result = await gcRun(deps.runner, {
      containerName: config.gc.containerName,
      ...(config.gc.configPath !== undefined ? { configPath: config.gc.configPath } : {}),
      mode: config.gc.mode,
      deleteUntagged: config.gc.deleteUntagged,
      timeoutSeconds: config.gc.timeoutSeconds,
    });
  } catch (err) {
    const error = err instanceof Error ? err : new JanitorError(errorMessage(err));
    return {
      step: {
        status: 'failed',
        error: errorMessage(err),
        ...(err instanceof GcCommandError
          ? { summary: err.summary, ...(err.commandId !== undefined ? { commandId: err.commandId } : {}) }
          : {}),
      },
      error,
    };
  }
  if (result.status === 'InProgress') {
    return {
      step: result,
      error: new JanitorError(
        `garbage-collect was still running on the registry host when the function ran out of time (SSM command ` +
          `${result.commandId ?? 'unknown'}); the kept images were not verified. Follow the command in the Systems ` +
          'Manager console: the script brings the registry back read-write when it ends, and the next run verifies',
      ),
    };
  }
  return { step: result };
}

async function verifyWithRetry(
  deps: LambdaJobDeps,
  plan: Plan,
  inventory: Inventory,
): Promise<Extract<VerifyStep, { attempts: number }>> {
  return verifyKeptStep(deps.registry, plan, inventory, {
    ...(deps.verifyAttempts !== undefined ? { attempts: deps.verifyAttempts } : {}),
    ...(deps.verifyRetryDelayMs !== undefined ? { retryDelayMs: deps.verifyRetryDelayMs } : {}),
    sleep: deps.sleep ?? defaultSleep,
    // Right after garbage-collect the registry may still be starting: look again before calling it broken.
    onRetry: (attempt, problems) =>
      deps.logger.warn('verify: problems found, looking again', {
        attempt,
        problems: problems.slice(0, 10),
        problemCount: problems.length,
      }),
  });
}

function planStepOf(plan: Plan, applicable: Applicability): PlanStep {
  const { guard } = applicable;
  return {
    generatedAt: plan.generatedAt,
    complete: plan.complete,
    ...plan.summary,
    errors: plan.errors.slice(0, 20),
    warnings: plan.warnings.length,
    guard: guard.ok ? { ok: true } : { ok: false, message: guard.message },
    ...(plan.history ? { history: plan.history } : {}),
  };
}

function deletionStepOf(report: Report, untagged: UntaggedOutcome | undefined): DeletionStep {
  const { entries, ...rest } = report;
  return { ...rest, entries: entries.length, ...(untagged ? { untagged } : {}) };
}

/** The plan, one entry per repository that loses anything: exactly what will be deleted, before it is. */
function logPlan(logger: JobLogger, plan: Plan, step: PlanStep): void {
  logger.info('plan', {
    plan: step,
    ...(plan.warnings.length > 0 ? { warnings: plan.warnings.slice(0, 50) } : {}),
  });
  for (const repo of plan.repositories) {
    const history = repo.untagged?.deleted ?? [];
    if (repo.deleteTags.length === 0 && history.length === 0 && repo.warnings.length === 0) continue;
    const tags = repo.deleteTags.map((t) => ({
      tag: t.tag,
      digest: t.digest,
      method: t.method,
      ...(t.created !== undefined ? { created: t.created } : {}),
      ...(t.referrer ? { referrer: true } : {}),
    }));
    // Untagged history apart from the tags: each deletion with its push time (the age the policy judged).
    const untagged = history.map((u) => ({ digest: u.digest, kind: u.kind, pushedAt: u.pushedAt }));
    const parts = Math.max(
      1,
      Math.ceil(tags.length / TAGS_PER_LOG_ENTRY),
      Math.ceil(untagged.length / TAGS_PER_LOG_ENTRY),
    );
    const slice = <T>(list: readonly T[], part: number): T[] =>
      list.slice(part * TAGS_PER_LOG_ENTRY, (part + 1) * TAGS_PER_LOG_ENTRY);
    for (let part = 0; part < parts; part += 1) {
      logger.info('plan: repository', {
        repository: repo.name,
        rule: repo.rule,
        action: repo.action,
        kept: repo.kept.length,
        deleteTags: slice(tags, part),
        ...(repo.untagged ? { deleteUntagged: slice(untagged, part) } : {}),
        ...(parts > 1 ? { part: part + 1, parts } : {}),
        ...(part === 0
          ? {
              deleteManifests: repo.deleteManifests.length,
              childrenAndReferrers: repo.deleteManifests
                .filter((m) => m.role === 'child' || m.role === 'referrer')
                .map((m) => ({ digest: m.digest, role: m.role, kind: m.kind })),
              bytesFreed: repo.bytesFreed,
              ...(repo.untagged
                ? {
                    untagged: {
                      deleted: history.length,
                      kept: repo.untagged.kept.length,
                      bytesFreed: repo.untagged.bytesFreed,
                    },
                  }
                : {}),
              ...(repo.action === 'cleaned' && repo.dangling ? { danglingTags: repo.dangling } : {}),
              warnings: repo.warnings,
            }
          : {}),
      });
    }
  }
}

function logDeletions(logger: JobLogger, plan: Plan, report: Report): void {
  const byRepo = new Map<string, Report['entries'][number][]>();
  for (const e of report.entries) byRepo.set(e.repository, [...(byRepo.get(e.repository) ?? []), e]);
  const history = new Map(
    plan.repositories.map((r) => [r.name, new Set((r.untagged?.deleted ?? []).map((u) => u.digest))]),
  );
  for (const [repository, entries] of byRepo) {
    const bad = entries.some((e) => e.outcome === 'failed' || e.outcome === 'skipped');
    // Which of the entries were untagged history, so a reader can tell them from the tags' manifests.
    const untagged = history.get(repository);
    const marked =
      untagged && untagged.size > 0
        ? entries.map((e) =>
            e.target === 'manifest' && untagged.has(e.reference) ? { ...e, untagged: true } : e,
          )
        : entries;
    if (bad) logger.warn('deleted: repository', { repository, entries: marked });
    else logger.info('deleted: repository', { repository, entries: marked });
  }
}

/** What the handler needs besides configuration: clients built once per container. */
export interface LambdaRuntime {
  readonly registry: RegistryClient;
  /** Opens the manifest cache for one invocation, when a cache bucket is configured. */
  readonly openCache?: () => Promise<SavableCache>;
  /** Keeps each run's report, when a reports bucket is configured. */
  readonly reports?: ReportStore;
  /** The journal, when the construct's bucket is configured. */
  readonly journal?: LambdaJobDeps['journal'];
  /** The storage listing for one invocation (its SSM command stops waiting before the invocation's time runs out). */
  history?(context: InvokeContext): HistorySource;
  /** A command runner for one invocation (it stops waiting before the invocation's time runs out). */
  runner(context: InvokeContext): CommandRunner;
}

export interface LambdaHandlerOptions {
  /** Read on every invocation (never at import time). */
  readonly env: () => Readonly<Record<string, string | undefined>>;
  /** Built on the first invocation. */
  readonly logger: () => JobLogger & { addContext?(context: never): void };
  readonly metrics: () => JobMetrics;
  /** Builds the clients (reads credentials); once per container, again after it failed. */
  readonly connect: (config: JanitorConfig) => Promise<LambdaRuntime>;
  /** Passed to runLambdaJob (tests shorten the verification waits). */
  readonly job?: Partial<Omit<LambdaJobDeps, 'registry' | 'runner' | 'logger' | 'metrics' | 'history'>>;
}

/**
 * The Lambda handler: parses the environment and the payload, connects once per container, and runs the job.
 * A configuration or connection failure is logged and counted in Errors before it is thrown.
 */
export function createLambdaHandler(
  options: LambdaHandlerOptions,
): (event: unknown, context: InvokeContext) => Promise<LambdaRunReport | LambdaRestoreResult> {
  let logger: ReturnType<LambdaHandlerOptions['logger']> | undefined;
  let metrics: JobMetrics | undefined;
  let runtime: Promise<LambdaRuntime> | undefined;
  return async (event, context) => {
    logger ??= options.logger();
    metrics ??= options.metrics();
    logger.addContext?.(context as never);
    let config: JanitorConfig;
    let overrides: InvokeOverrides;
    let connected: LambdaRuntime;
    let restore: RestoreRequest | undefined;
    try {
      config = loadConfig(options.env());
      // A restore payload runs the restore only (lambda-restore.ts): no plan, no DELETE, no garbage-collect.
      restore = isRestorePayload(event) ? parseRestorePayload(event) : undefined;
      overrides = restore ? { trigger: 'manual' } : parseInvokePayload(event);
      runSettings(config, overrides);
      const pending = (runtime ??= options.connect(config).catch((err: unknown) => {
        runtime = undefined;
        throw err;
      }));
      connected = await pending;
    } catch (err) {
      logger.error(`run failed before it started: ${errorMessage(err)}`, { stage: 'config', error: err });
      metrics.addMetric(METRICS.errors, MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
      throw err;
    }
    if (restore) {
      try {
        return await runLambdaRestore(
          {
            registry: connected.registry,
            ...(connected.journal ? { journal: connected.journal } : {}),
            logger,
          },
          restore,
        );
      } catch (err) {
        logger.error(`restore failed: ${errorMessage(err)}`, { stage: 'restore', error: err });
        metrics.addMetric(METRICS.errors, MetricUnit.Count, 1);
        metrics.publishStoredMetrics();
        throw err;
      }
    }
    return runLambdaJob(
      {
        ...options.job,
        registry: connected.registry,
        runner: connected.runner(context),
        ...(connected.openCache ? { openCache: connected.openCache } : {}),
        ...(connected.reports ? { reports: connected.reports } : {}),
        ...(connected.journal ? { journal: connected.journal } : {}),
        ...(connected.history ? { history: connected.history(context) } : {}),
        logger,
        metrics,
      },
      config,
      overrides,
      context,
    );
  };
}
