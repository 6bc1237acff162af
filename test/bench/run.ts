// One measured part of the benchmark, run in a process of its own so that its wall time, CPU time and peak
// RSS are its own: `tsx test/bench/run.ts <part> --flag value…`. Prints one JSON line.
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { filesystemHistory } from '../../lambda/adapters/history-fs.ts';
import { fileJournal } from '../../lambda/adapters/journal-file.ts';
import { openFileCache, type FileManifestCache } from '../../lambda/adapters/manifest-cache-file.ts';
import { createRegistryClient } from '../../lambda/adapters/registry-client.ts';
import { applyPlan } from '../../lambda/core/executor.ts';
import { runJob, type JobResult } from '../../lambda/core/job.ts';
import type { Plan } from '../../lambda/core/model.ts';
import { plan as makePlan } from '../../lambda/core/planner.ts';
import { validatePolicy, type Policy } from '../../lambda/core/policy.ts';
import { scanRegistry } from '../../lambda/core/scan.ts';
import { baselineDelete, baselinePlan } from './baseline.ts';
import { SyntheticRegistry } from './synthetic-registry.ts';
import { BENCH_WORKFLOW_STEPS, workflowStep } from './workflow-step-part.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    concurrency: { type: 'string' },
    'repo-concurrency': { type: 'string' },
    keep: { type: 'string', default: '10' },
    cache: { type: 'string' },
    'head-first': { type: 'string' },
    'delete-concurrency': { type: 'string' },
    plan: { type: 'string' },
    repos: { type: 'string' },
    tags: { type: 'string' },
    storage: { type: 'string' },
    journal: { type: 'string' },
    'hours-later': { type: 'string' },
    step: { type: 'string' },
    batch: { type: 'string' },
    'run-id': { type: 'string' },
    apply: { type: 'string' },
    'run-dir': { type: 'string' },
    'batch-tags': { type: 'string' },
    'batch-repositories': { type: 'string' },
  },
});

const part = positionals[0];
const int = (v: string | undefined, fallback?: number): number => {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number, got ${String(v)}`);
  return n;
};
const url = (): string => {
  if (!values.url) throw new Error('--url is required');
  return values.url;
};
function makeClient(): ReturnType<typeof createRegistryClient> {
  const concurrency = values.concurrency ? int(values.concurrency) : undefined;
  return createRegistryClient({ url: url(), ...(concurrency ? { concurrency } : {}) });
}

const keepNewest = (): Policy =>
  validatePolicy({ rules: [{ repositories: ['**'], keep: { newest: int(values.keep) } }] }, 'bench policy');

function measure(): { cpuMs: number; peakRssMb: number; userCpuMs: number; systemCpuMs: number } {
  const usage = process.resourceUsage();
  return {
    cpuMs: Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000),
    peakRssMb: Math.round(usage.maxRSS / 1024),
    userCpuMs: Math.round(usage.userCPUTime / 1000),
    systemCpuMs: Math.round(usage.systemCPUTime / 1000),
  };
}

const peakRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
const rssAtStartMb = peakRssMb();

async function planPart(): Promise<Record<string, unknown>> {
  const policy = keepNewest();
  const client = makeClient();
  const openStart = performance.now();
  const cache: FileManifestCache | undefined = values.cache ? await openFileCache(values.cache) : undefined;
  const cacheOpenMs = performance.now() - openStart;
  const start = performance.now();
  const inventory = await scanRegistry(client, {
    policy,
    ...(cache ? { cache } : {}),
    ...(values['head-first'] ? { headFirst: values['head-first'] === 'true' } : {}),
    ...(values['repo-concurrency'] ? { repositoryConcurrency: int(values['repo-concurrency']) } : {}),
  });
  const thePlan = makePlan(inventory, policy, new Date());
  const ms = performance.now() - start;
  const saveStart = performance.now();
  if (cache) await cache.save();
  const cacheSaveMs = performance.now() - saveStart;
  await client.close();
  if (values.plan) writeFileSync(values.plan, JSON.stringify(thePlan));
  return {
    ms: Math.round(ms),
    requests: client.stats(),
    complete: thePlan.complete,
    errors: thePlan.errors.slice(0, 3),
    summary: thePlan.summary,
    ...(cache
      ? {
          cache: {
            loaded: cache.loadStats.loaded,
            entries: cache.size,
            openMs: Math.round(cacheOpenMs),
            saveMs: Math.round(cacheSaveMs),
          },
        }
      : {}),
  };
}

function readPlan(): Plan {
  if (!values.plan) throw new Error('--plan FILE is required');
  return JSON.parse(readFileSync(values.plan, 'utf8')) as Plan;
}

async function applyPart(): Promise<Record<string, unknown>> {
  const thePlan = readPlan();
  const client = makeClient();
  const start = performance.now();
  const report = await applyPlan(thePlan, client, {
    maxDeleteFraction: 1,
    ...(values['repo-concurrency'] ? { repositoryConcurrency: int(values['repo-concurrency']) } : {}),
    ...(values['delete-concurrency'] ? { deleteConcurrency: int(values['delete-concurrency']) } : {}),
  });
  const ms = performance.now() - start;
  await client.close();
  return {
    ms: Math.round(ms),
    requests: client.stats(),
    manifestsDeleted: report.manifestsDeleted,
    tagsDeleted: report.tagsDeleted,
    failures: report.failures.length,
    skipped: report.skippedRepositories.length,
  };
}

/** Two-phase: the journal (a file, as the CLI's) and the storage listing, both required. */
function twoPhaseParts(): {
  journal: ReturnType<typeof fileJournal>;
  history: ReturnType<typeof filesystemHistory>;
} {
  if (!values.journal || !values.storage) throw new Error('--journal FILE and --storage DIR are required');
  return {
    // One name for the registry whatever the proxy's port: the sweep runs through another proxy than the apply.
    journal: fileJournal(values.journal, { registry: 'bench', warn: (m) => process.stderr.write(`${m}\n`) }),
    history: filesystemHistory(values.storage),
  };
}

function jobOutcome(job: JobResult): Record<string, unknown> {
  const report = job.report;
  const outcome = (o: string): number => report?.entries.filter((e) => e.outcome === o).length ?? 0;
  return {
    outcome: job.outcome,
    untagged: outcome('untagged'),
    deleted: outcome('deleted'),
    manifestsDeleted: report?.manifestsDeleted ?? 0,
    tagsDeleted: report?.tagsDeleted ?? 0,
    failures: report?.failures.length ?? 0,
    skipped: report?.skippedRepositories.length ?? 0,
    ...(job.journalProblem ? { journalProblem: job.journalProblem } : {}),
  };
}

/**
 * The saved plan applied two-phase, as `apply --plan FILE --storage DIR` does: the repositories it changes read
 * again with the storage listing, the undo records (the manifests' bytes) written to the journal, the tags removed.
 */
async function applyTwoPhasePart(): Promise<Record<string, unknown>> {
  const thePlan = readPlan();
  const client = makeClient();
  const { journal, history } = twoPhaseParts();
  const start = performance.now();
  const job = await runJob({
    client,
    savedPlan: thePlan,
    history,
    journal,
    undoWindowHours: 24,
    now: new Date(),
    dryRun: false,
    maxDeleteFraction: 1,
  });
  const ms = performance.now() - start;
  await client.close();
  return { ms: Math.round(ms), requests: client.stats(), ...jobOutcome(job) };
}

/**
 * The night after (--hours-later, default 25): plan from the policy with the listing and the journal, which sweeps
 * what the two-phase apply untagged. `ms` is the run from its first DELETE on (the sweep); `totalMs` includes the
 * scan and plan a nightly run makes anyway.
 */
async function sweepPart(): Promise<Record<string, unknown>> {
  const client = makeClient();
  const { journal, history } = twoPhaseParts();
  const later = Number(values['hours-later'] ?? 25);
  const start = performance.now();
  let deletesAt: number | undefined;
  let requestsBefore: Record<string, number> = {};
  const job = await runJob({
    client,
    policy: keepNewest(),
    history,
    journal,
    undoWindowHours: 24,
    now: new Date(Date.now() + later * 3_600_000),
    dryRun: false,
    maxDeleteFraction: 1,
    onStage: (stage) => {
      if (stage === 'deletes') {
        deletesAt = performance.now();
        requestsBefore = { ...client.stats() };
      }
    },
  });
  const end = performance.now();
  await client.close();
  const after = client.stats();
  const sweepRequests = Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - (requestsBefore[k] ?? 0)]),
  );
  return {
    ms: Math.round(end - (deletesAt ?? end)),
    totalMs: Math.round(end - start),
    requests: sweepRequests,
    requestsWholeRun: after,
    sweptPlanned: job.plan.summary.manifestsDeleted,
    ...jobOutcome(job),
  };
}

async function baselineDeletePart(): Promise<Record<string, unknown>> {
  const thePlan = readPlan();
  const work = thePlan.repositories
    .filter((r) => r.deleteManifests.length > 0)
    .map((r) => {
      // The same waves the executor uses: a manifest after everything it must follow.
      const level = new Map<string, number>();
      const levels: string[][] = [];
      for (const m of r.deleteManifests) {
        const l = m.after.reduce((max, d) => Math.max(max, (level.get(d) ?? -1) + 1), 0);
        level.set(m.digest, l);
        (levels[l] ??= []).push(m.digest);
      }
      return { repository: r.name, levels };
    });
  const start = performance.now();
  const result = await baselineDelete(url(), int(values.concurrency, 64), work);
  return { ms: Math.round(performance.now() - start), requests: result.counts, deleted: result.deleted };
}

async function baselinePlanPart(): Promise<Record<string, unknown>> {
  const start = performance.now();
  const result = await baselinePlan(url(), int(values.concurrency, 64), int(values.keep));
  return {
    ms: Math.round(performance.now() - start),
    requests: result.counts,
    tags: result.tags,
    repositories: result.repositories,
    deletable: result.deletable,
  };
}

async function memoryPart(): Promise<Record<string, unknown>> {
  const policy = keepNewest();
  const registry = new SyntheticRegistry({ repos: int(values.repos), tags: int(values.tags) });
  const cache = values.cache ? await openFileCache(values.cache) : undefined;
  const peakRssAfterLoadMb = peakRssMb();
  const start = performance.now();
  const inventory = await scanRegistry(registry, { policy, ...(cache ? { cache } : {}) });
  const peakRssAfterScanMb = peakRssMb();
  const thePlan = makePlan(inventory, policy, new Date());
  const ms = performance.now() - start;
  const peakRssBeforeSaveMb = peakRssMb();
  if (cache) await cache.save();
  const heapMb = Math.round(process.memoryUsage().heapUsed / 1024 / 1024);
  return {
    ms: Math.round(ms),
    requests: registry.counts,
    summary: thePlan.summary,
    complete: thePlan.complete,
    heapUsedAtEndMb: heapMb,
    peakRssAfterScanMb,
    peakRssBeforeSaveMb,
    ...(cache ? { cache: { loaded: cache.loadStats.loaded, entries: cache.size }, peakRssAfterLoadMb } : {}),
  };
}

/** One workflow step (the probe, a batch, the plan, collect, the report) as its invocation runs it: see workflow-step-part.ts. */
async function workflowStepPart(): Promise<Record<string, unknown>> {
  const step = BENCH_WORKFLOW_STEPS.find((s) => s === values.step);
  if (step === undefined) throw new Error(`--step ${BENCH_WORKFLOW_STEPS.join('|')} is required`);
  if (!values['run-dir'] || !values['run-id']) throw new Error('--run-dir DIR and --run-id ID are required');
  const start = performance.now();
  const out = await workflowStep({
    step,
    runId: values['run-id'],
    runDir: values['run-dir'],
    repos: int(values.repos),
    tags: int(values.tags),
    keep: int(values.keep),
    ...(values.batch !== undefined ? { batch: int(values.batch) } : {}),
    ...(values.cache ? { cache: values.cache } : {}),
    ...(values['batch-tags'] ? { batchTags: int(values['batch-tags']) } : {}),
    ...(values['batch-repositories'] ? { batchRepositories: int(values['batch-repositories']) } : {}),
    apply: values.apply === 'true',
  });
  return { ms: Math.round(performance.now() - start), ...out };
}

const parts: Record<string, () => Promise<Record<string, unknown>>> = {
  plan: planPart,
  apply: applyPart,
  'apply-two-phase': applyTwoPhasePart,
  sweep: sweepPart,
  'baseline-plan': baselinePlanPart,
  'baseline-delete': baselineDeletePart,
  memory: memoryPart,
  'workflow-step': workflowStepPart,
};

const run = part ? parts[part] : undefined;
if (!run) {
  process.stderr.write(`usage: tsx test/bench/run.ts ${Object.keys(parts).join('|')} [--flags]\n`);
  process.exit(2);
}
const result = await run();
process.stdout.write(JSON.stringify({ part, ...result, ...measure(), rssAtStartMb }) + '\n');
