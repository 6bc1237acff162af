// One Lambda invocation: probe → inventory → plan → guard → deletes → garbage-collect → verify → report. Every step
// logs structured JSON; metrics are published even when a step fails, and a failure is thrown after it is logged.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as MetricUnitName } from '@aws-lambda-powertools/metrics/types';
import { loadConfig, parseInvokePayload, type InvokeOverrides, type JanitorConfig } from './config.ts';
import { JanitorError, SafetyError, errorMessage } from './core/errors.ts';
import { GcCommandError, runGc, type GcResult } from './core/gc.ts';
import type { GcSummary } from './core/gc-script.ts';
import { compileGlob } from './core/glob.ts';
import { runJob } from './core/job.ts';
import type { Inventory, Plan, PlanSummary, Report, ScanProblem } from './core/model.ts';
import { checkGuard } from './core/planner.ts';
import { ruleFor } from './core/policy.ts';
import type { CommandRunner, RegistryClient, ManifestCache } from './core/ports.ts';
import { verifyKept, type VerifyResult } from './core/verify.ts';

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
   * Opens the manifest cache (an S3 object in the Lambda). It never throws: a missing or unreadable cache only
   * means reading everything again, and it cannot change a plan.
   */
  readonly openCache?: () => Promise<SavableCache>;
}

/** A manifest cache that is written back after the inventory. `save` never throws. */
export interface SavableCache extends ManifestCache {
  readonly size: number;
  save(): Promise<boolean>;
}

/** What the delete probe found before the inventory. */
export type ProbeStep =
  | {
      readonly status: 'done';
      readonly repository: string;
      readonly deletesEnabled: boolean;
      readonly tagDelete: boolean;
      readonly problem?: string;
    }
  | { readonly status: 'skipped'; readonly reason: string };

export interface PlanStep extends PlanSummary {
  readonly generatedAt: string;
  readonly complete: boolean;
  readonly errors: readonly ScanProblem[];
  readonly warnings: number;
  /** Whether the delete guard lets this plan through (`MAX_DELETE_FRACTION`). */
  readonly guard: { readonly ok: boolean; readonly message?: string };
}

/** The delete report without its per-manifest entries (those are in the log). */
export type DeletionStep = Omit<Report, 'entries'> & { readonly entries: number };

export type GcStep =
  | { readonly status: 'skipped'; readonly reason: 'dry-run' | 'skip-gc' | 'nothing-deleted' }
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

/** Metric names (EMF, namespace RegistryJanitor, dimension `service`); the stack's alarms use them. */
export const METRICS = {
  tagsDeleted: 'TagsDeleted',
  manifestsDeleted: 'ManifestsDeleted',
  bytesFreed: 'BytesFreed',
  gcDuration: 'GcDurationSeconds',
  errors: 'Errors',
  verifyFailures: 'VerifyFailures',
  gcFailures: 'GcFailures',
  runDuration: 'RunDurationSeconds',
} as const;

type Stage = 'probe' | 'inventory' | 'guard' | 'deletes' | 'gc' | 'verify';

/** Log entries stay well under CloudWatch's 256 KB per event. */
const TAGS_PER_LOG_ENTRY = 500;

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
  const { logger, metrics, registry } = deps;
  const now = deps.now ?? (() => new Date());
  const started = now();
  const dryRun = overrides.dryRun ?? config.dryRun;
  const repositories = overrides.repositories ?? null;
  const durations = {
    probeSeconds: 0,
    scanAndPlanSeconds: 0,
    deleteSeconds: 0,
    gcSeconds: 0,
    verifySeconds: 0,
  };
  const since = (t: Date): number => (now().getTime() - t.getTime()) / 1000;

  let stage: Stage = 'probe';
  let probe: ProbeStep = { status: 'skipped', reason: 'not reached' };
  let planStep: PlanStep | null = null;
  let deletions: DeletionStep | null = null;
  let gc: GcStep | null = null;
  let verify: VerifyStep | null = null;
  let bytesFreed = 0;
  const report = (): LambdaRunReport => ({
    registry: config.registryUrl,
    trigger: overrides.trigger,
    dryRun,
    repositories,
    startedAt: started.toISOString(),
    finishedAt: now().toISOString(),
    probe,
    plan: planStep,
    deletions,
    gc,
    verify,
    bytesFreed,
    durations: { totalSeconds: since(started), ...durations },
  });

  logger.info('run started', {
    trigger: overrides.trigger,
    dryRun,
    registry: config.registryUrl,
    repositories,
    skipGc: overrides.skipGc ?? false,
    gcMode: config.gc.mode,
    maxDeleteFraction: config.maxDeleteFraction,
    requestId: context.awsRequestId,
  });

  try {
    // Probe: fail before a long inventory when deletes cannot work anyway.
    let t = now();
    probe = await probeDeletes(registry, config, repositories);
    durations.probeSeconds = since(t);
    if (probe.status === 'done' && !probe.deletesEnabled) {
      if (!dryRun) {
        throw new SafetyError(`nothing was deleted: ${probe.problem ?? 'the registry refuses deletes'}`);
      }
      logger.warn('probe: the registry refuses deletes; a real run would stop here', { probe });
    } else {
      logger.info('probe', { probe });
    }

    // Inventory → plan → guard → deletes.
    stage = 'inventory';
    t = now();
    let planned: Date | undefined;
    const cache = deps.openCache ? await deps.openCache() : undefined;
    if (cache) logger.info('manifest cache', { entries: cache.size });
    const saveCache = async (): Promise<void> => {
      if (!cache) return;
      logger.info('manifest cache saved', { entries: cache.size, saved: await cache.save() });
    };
    const job = await (async () => {
      try {
        return await runJob({
          client: registry,
          ...(cache ? { cache } : {}),
          policy: config.policy,
          now: now(),
          dryRun,
          maxDeleteFraction: config.maxDeleteFraction,
          ...(repositories ? { repositories } : {}),
          onPlan: (plan) => {
            planned = now();
            durations.scanAndPlanSeconds = since(t);
            planStep = planStepOf(plan, config.maxDeleteFraction);
            logPlan(logger, plan, planStep);
            // runJob refuses exactly these plans before its first DELETE.
            stage = !dryRun && planStep.complete && planStep.guard.ok ? 'deletes' : 'guard';
          },
        });
      } finally {
        // What the inventory learned is worth keeping whatever happens next.
        await saveCache();
      }
    })();
    if (planned) durations.deleteSeconds = since(planned);
    if (!job.plan.complete) {
      // A dry run never reaches the executor's check; unreadable parts of the registry are still a failure.
      throw new SafetyError(
        `the inventory is incomplete: ${job.plan.errors.length} read(s) failed (see the plan in the log); fix the ` +
          'cause (network, credentials, registry health) and run again',
      );
    }
    if (dryRun) {
      const guard = planStep!.guard;
      if (!guard.ok) logger.warn('dry run: a real run would refuse this plan', { guard: guard.message });
      gc = { status: 'skipped', reason: 'dry-run' };
      verify = { status: 'skipped', reason: 'dry run: nothing changed' };
      // Zeros rather than gaps, so the dashboard shows that the janitor ran.
      metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, 0);
      metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, 0);
      metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, 0);
      return finish(report);
    }

    const deleted = job.report!;
    deletions = deletionStepOf(deleted);
    logDeletions(logger, deleted);
    metrics.addMetric(METRICS.tagsDeleted, MetricUnit.Count, deleted.tagsDeleted);
    metrics.addMetric(METRICS.manifestsDeleted, MetricUnit.Count, deleted.manifestsDeleted);

    // Failures found from here on are reported together at the end: a failed delete or GC must not skip the check
    // of what the run kept.
    const failures: { stage: Stage; error: Error }[] = [];
    if (deleted.failures.length > 0) {
      failures.push({
        stage: 'deletes',
        error: new JanitorError(
          `${deleted.failures.length} deletion(s) failed, e.g. ${deleted.failures[0]!.repository} ` +
            `${deleted.failures[0]!.reference}: ${deleted.failures[0]!.reason ?? 'unknown'}; the rest of the plan ` +
            'was applied; the next run plans them again',
        ),
      });
    }

    stage = 'gc';
    if (overrides.skipGc) gc = { status: 'skipped', reason: 'skip-gc' };
    else if (deleted.manifestsDeleted === 0) gc = { status: 'skipped', reason: 'nothing-deleted' };
    else {
      t = now();
      const outcome = await collectGarbage(deps, config);
      durations.gcSeconds = since(t);
      gc = outcome.step;
      metrics.addMetric(METRICS.gcDuration, MetricUnit.Seconds, durations.gcSeconds);
      metrics.addMetric(METRICS.gcFailures, MetricUnit.Count, outcome.error ? 1 : 0);
      if (outcome.error) {
        logger.error('garbage-collect failed', { gc, error: outcome.error });
        failures.push({ stage: 'gc', error: outcome.error });
      } else {
        logger.info('garbage-collect', { gc });
      }
      if (gc.status === 'Success') {
        bytesFreed = Math.max(0, gc.summary.bytesFreed ?? deleted.bytesFreedEstimate);
      }
    }

    stage = 'verify';
    if (gc.status === 'InProgress') {
      verify = { status: 'skipped', reason: 'garbage-collect is still running on the registry host' };
    } else {
      t = now();
      const checked = await verifyWithRetry(deps, job.plan, job.inventory);
      verify = checked;
      durations.verifySeconds = since(t);
      metrics.addMetric(METRICS.verifyFailures, MetricUnit.Count, checked.problems.length);
      if (checked.status === 'failed') {
        logger.error('verify: kept images are damaged', { verify: checked });
        failures.push({
          stage: 'verify',
          error: new JanitorError(
            `verification found ${checked.problems.length} problem(s) with images the policy keeps, e.g. ` +
              `${checked.problems[0]}; check the registry now (the full list is in the log)`,
          ),
        });
      } else {
        logger.info('verify', { verify: checked });
      }
    }
    metrics.addMetric(METRICS.bytesFreed, MetricUnit.Bytes, bytesFreed);

    if (failures.length > 0) {
      stage = failures[0]!.stage;
      if (failures.length === 1) throw failures[0]!.error;
      throw new JanitorError(
        `the run had ${failures.length} failures:\n  - ${failures.map((f) => errorMessage(f.error)).join('\n  - ')}`,
        { cause: failures[0]!.error },
      );
    }
    return finish(report);
  } catch (err) {
    const partial = report();
    logger.error(`run failed during ${stage}: ${errorMessage(err)}`, { stage, error: err, report: partial });
    metrics.addMetric(METRICS.errors, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.runDuration, MetricUnit.Seconds, partial.durations.totalSeconds);
    throw err;
  } finally {
    metrics.publishStoredMetrics();
  }

  function finish(build: () => LambdaRunReport): LambdaRunReport {
    const result = build();
    metrics.addMetric(METRICS.errors, MetricUnit.Count, 0);
    metrics.addMetric(METRICS.runDuration, MetricUnit.Seconds, result.durations.totalSeconds);
    logger.info('run finished', { report: result });
    return result;
  }
}

/**
 * DELETE of the zero digest in the first repository the run may clean (a repository protected or matched by no
 * rule is never deleted from, and a token may not grant delete there).
 */
async function probeDeletes(
  registry: RegistryClient,
  config: JanitorConfig,
  repositories: readonly string[] | null,
): Promise<ProbeStep> {
  const filters = repositories?.map((g) => compileGlob(g, true));
  const names = await registry.listRepositories();
  const candidate = names.find((name) => {
    if (filters && !filters.some((f) => f.test(name))) return false;
    const rule = ruleFor(config.policy, name);
    return rule !== undefined && !rule.protect;
  });
  if (candidate === undefined) {
    return { status: 'skipped', reason: 'no repository in the catalog is cleaned by the policy' };
  }
  const result = await registry.probe(candidate);
  return {
    status: 'done',
    repository: candidate,
    deletesEnabled: result.deletesEnabled,
    tagDelete: result.tagDelete,
    ...(result.problem !== undefined ? { problem: result.problem } : {}),
  };
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
  const attempts = Math.max(1, deps.verifyAttempts ?? 4);
  const delayMs = deps.verifyRetryDelayMs ?? 2000;
  const sleep = deps.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt += 1) {
    const result = await verifyKept(plan, inventory, deps.registry);
    if (result.problems.length === 0) return { status: 'ok', attempts: attempt, ...result };
    if (attempt >= attempts) return { status: 'failed', attempts: attempt, ...result };
    // Right after garbage-collect the registry may still be starting: look again before calling it broken.
    deps.logger.warn('verify: problems found, looking again', {
      attempt,
      problems: result.problems.slice(0, 10),
      problemCount: result.problems.length,
    });
    await sleep(delayMs * attempt);
  }
}

function planStepOf(plan: Plan, maxDeleteFraction: number): PlanStep {
  const guard = checkGuard(plan, maxDeleteFraction);
  return {
    generatedAt: plan.generatedAt,
    complete: plan.complete,
    ...plan.summary,
    errors: plan.errors.slice(0, 20),
    warnings: plan.warnings.length,
    guard: guard.ok ? { ok: true } : { ok: false, message: guard.message },
  };
}

function deletionStepOf(report: Report): DeletionStep {
  const { entries, ...rest } = report;
  return { ...rest, entries: entries.length };
}

/** The plan, one entry per repository that loses anything: exactly what will be deleted, before it is. */
function logPlan(logger: JobLogger, plan: Plan, step: PlanStep): void {
  logger.info('plan', {
    plan: step,
    ...(plan.warnings.length > 0 ? { warnings: plan.warnings.slice(0, 50) } : {}),
  });
  for (const repo of plan.repositories) {
    if (repo.deleteTags.length === 0 && repo.warnings.length === 0) continue;
    const tags = repo.deleteTags.map((t) => ({
      tag: t.tag,
      digest: t.digest,
      method: t.method,
      ...(t.created !== undefined ? { created: t.created } : {}),
      ...(t.referrer ? { referrer: true } : {}),
    }));
    const parts = Math.max(1, Math.ceil(tags.length / TAGS_PER_LOG_ENTRY));
    for (let part = 0; part < parts; part += 1) {
      logger.info('plan: repository', {
        repository: repo.name,
        rule: repo.rule,
        action: repo.action,
        kept: repo.kept.length,
        deleteTags: tags.slice(part * TAGS_PER_LOG_ENTRY, (part + 1) * TAGS_PER_LOG_ENTRY),
        ...(parts > 1 ? { part: part + 1, parts } : {}),
        ...(part === 0
          ? {
              deleteManifests: repo.deleteManifests.length,
              childrenAndReferrers: repo.deleteManifests
                .filter((m) => m.role !== 'root')
                .map((m) => ({ digest: m.digest, role: m.role, kind: m.kind })),
              bytesFreed: repo.bytesFreed,
              ...(repo.action === 'cleaned' && repo.dangling ? { danglingTags: repo.dangling } : {}),
              warnings: repo.warnings,
            }
          : {}),
      });
    }
  }
}

function logDeletions(logger: JobLogger, report: Report): void {
  const byRepo = new Map<string, Report['entries'][number][]>();
  for (const e of report.entries) byRepo.set(e.repository, [...(byRepo.get(e.repository) ?? []), e]);
  for (const [repository, entries] of byRepo) {
    const bad = entries.some((e) => e.outcome === 'failed' || e.outcome === 'skipped');
    if (bad) logger.warn('deleted: repository', { repository, entries });
    else logger.info('deleted: repository', { repository, entries });
  }
}

/** What the handler needs besides configuration: clients built once per container. */
export interface LambdaRuntime {
  readonly registry: RegistryClient;
  /** Opens the manifest cache for one invocation, when a cache bucket is configured. */
  readonly openCache?: () => Promise<SavableCache>;
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
  readonly job?: Partial<Omit<LambdaJobDeps, 'registry' | 'runner' | 'logger' | 'metrics'>>;
}

/**
 * The Lambda handler: parses the environment and the payload, connects once per container, and runs the job.
 * A configuration or connection failure is logged and counted in Errors before it is thrown.
 */
export function createLambdaHandler(
  options: LambdaHandlerOptions,
): (event: unknown, context: InvokeContext) => Promise<LambdaRunReport> {
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
    try {
      config = loadConfig(options.env());
      overrides = parseInvokePayload(event);
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
    return runLambdaJob(
      {
        ...options.job,
        registry: connected.registry,
        runner: connected.runner(context),
        ...(connected.openCache ? { openCache: connected.openCache } : {}),
        logger,
        metrics,
      },
      config,
      overrides,
      context,
    );
  };
}
