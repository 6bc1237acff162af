// The benchmark (`npm run bench -- --mode plan|apply|cache|memory|workflow-memory|history|report|startup`): seeds a local docker-registry once into
// .bench/, puts a delay proxy in front of it, and times the planner (and apply) side by side with a minimal
// client that issues only the requests the work needs. Prints one JSON line per mode. Not part of `npm test`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { startLocalRegistry, type LocalRegistry } from '../../lambda/demo/local-registry.ts';
import { historyBench } from './history-bench.ts';
import { reportMode } from './report-bench.ts';
import { startupMode } from './startup-bench.ts';
import { SEED_VERSION, seedFacts, seedRegistry, seedStorage, type SeedShape } from './seed-bench.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const BENCH_DIR = join(ROOT, '.bench');

const USAGE = `npm run bench -- [--mode plan|apply|cache|memory|workflow-memory|history|report|startup|seed] [options]

  --mode M              plan (default): age-ordered plan vs the minimal client, through the delay proxy
                        apply: apply deleting about 2/3 of the tags vs the same bare DELETEs, on fresh copies;
                        then on a third copy the two-phase apply (untag + journal, with the storage listing)
                        and, apart, the sweep of the night after
                        cache: plan without a cache, with a cold one, with a warm one (tags by GET, then
                        by HEAD first)
                        memory: scan + plan of a synthetic in-process registry (no HTTP), peak RSS
                        workflow-memory: the workflow's probe, inventory batches and plan over that registry,
                        each in its own process under the --lambda-memory-mb heap limits, with a cold then a
                        warm manifest cache (dry runs), then a real run on the warm cache (the registry's
                        DELETEs succeed): also its apply and verify batches, collect and report (no GC):
                        peak RSS of each invocation
                        history: list a synthetic filesystem storage of --repos x --revisions revision links
                        (default 200 x 500 = 100,000), and plan the same registry with and without the listing
                        seed: only seed the storage for --repos x --tags (once; the other modes reuse it)
  --seed-via storage|api   how a missing seed is made: written as distribution's filesystem storage lays it
                        out (default; minutes for 101,000 tags), or pushed through the registry's API (the
                        same files, byte for byte: compared with sha256sum for 10 x 3; half an hour)
  --cpu-prof DIR        run every measured part under node --cpu-prof, its profile written to DIR (open it in
                        Chrome's DevTools; the times measured then include the profiler's own cost)
  --revisions N         history: revisions per repository (default 500)
                        report: the HTML report of the demo registry and of a synthetic one of the shape, in
                        Debian's chromium: size, render, first paint, load, filter, opening a repository
                        startup: the CLI's start (--help, and a plan of a tiny local registry) cold (building
                        its bundle), from the warm bundle, and through tsx; median of --rounds (default 5)
  --repos N             repositories (default 200; memory: 1000)
  --tags N              tags per repository besides latest (default 50; memory: 100)
  --delay-ms D          proxy delay per chunk and direction (default 10, about 20 ms per round trip)
  --concurrency N       the planner's requests in flight (default: the client's default)
  --repo-concurrency N  repositories the scanner (apply: the executor) works on at once (default: theirs)
  --baseline-connections N   the minimal client's connections (default 64)
  --rounds N            baseline/planner pairs to run, best of each reported (default: plan 2, apply 1)
  --keep N              keep.newest of the policy (default 10; apply: 16)
  --delete-concurrency N   apply: DELETEs in flight per repository (default: the executor's)
  --lambda-memory-mb N  memory: also run with the V8 flags the Lambda Node.js runtime gives a function of
                        N MB (semi space N/20, old space N*9/10; default 256)
  --batch-tags N, --batch-repositories N   workflow-memory: the batch sizes (default: the workflow's)
`;

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'plan' },
    repos: { type: 'string' },
    tags: { type: 'string' },
    'delay-ms': { type: 'string', default: '10' },
    concurrency: { type: 'string' },
    'repo-concurrency': { type: 'string' },
    'baseline-connections': { type: 'string', default: '64' },
    rounds: { type: 'string' },
    keep: { type: 'string' },
    'lambda-memory-mb': { type: 'string' },
    'batch-tags': { type: 'string' },
    'batch-repositories': { type: 'string' },
    'delete-concurrency': { type: 'string' },
    revisions: { type: 'string' },
    'seed-via': { type: 'string', default: 'storage' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

function int(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} expects a whole number, got "${v}"`);
  return n;
}

const say = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

function machine(): Record<string, unknown> {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim(),
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Per run, so two runs at once never execute each other's half-written bundle. */
const DIST = join(BENCH_DIR, `dist-${process.pid}`);

/**
 * Bundle the measured parts as the Lambda is bundled (esbuild, ESM), so they run on plain node: no loader
 * in their memory or start-up, and the code measured is the code shipped.
 */
async function bundle(): Promise<void> {
  await build({
    entryPoints: [join(HERE, 'run.ts'), join(HERE, 'delay-proxy.ts')],
    outdir: DIST,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    // Bundled CommonJS (undici, the AWS SDK) calls require() for node built-ins.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
}

/** Run one measured part in its own process; returns its JSON line. */
async function runPart(
  part: string,
  args: Record<string, string | number | undefined>,
  nodeFlags: readonly string[] = [],
): Promise<Result> {
  const argv = [part];
  for (const [k, v] of Object.entries(args)) if (v !== undefined) argv.push(`--${k}`, String(v));
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`] : [];
  const child = spawn(process.execPath, [...nodeFlags, ...profile, join(DIST, 'run.mjs'), ...argv], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{'))
    throw new Error(`bench part ${part} failed (exit ${code}): ${out}`);
  return JSON.parse(last) as Result;
}

type Result = Record<string, unknown> & { ms: number; requests: Record<string, number> };

/** A part's CPU time, and apart its user and system time (system: mostly the sockets' reads and writes). */
const cpu = (r: Result): Record<string, unknown> => ({
  cpuMs: r.cpuMs,
  userCpuMs: r.userCpuMs,
  systemCpuMs: r.systemCpuMs,
});

interface Proxy {
  readonly url: string;
  stop(): Promise<void>;
}

/** The delay proxy in its own process, so its work never shares an event loop with a measured client. */
async function startProxy(targetPort: number, delayMs: number): Promise<Proxy> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(DIST, 'delay-proxy.mjs'), String(targetPort), String(delayMs)],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const first = await new Promise<string>((res, rej) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      res(l);
    });
    child.once('exit', (c) => rej(new Error(`the delay proxy exited (${c}) before listening`)));
  });
  const { port } = JSON.parse(first) as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((res) => child.once('exit', () => res()));
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The seeded storage for this shape, seeding it first when it is missing or from another seed version. */
async function ensureSeed(shape: SeedShape): Promise<string> {
  const dir = join(BENCH_DIR, `seed-${shape.repos}x${shape.tags}`);
  const storage = join(dir, 'storage');
  const marker = join(dir, 'seed.json');
  if (existsSync(marker)) {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { version?: number };
    if (m.version === SEED_VERSION) return storage;
  }
  const viaApi = values['seed-via'] === 'api';
  if (!viaApi && values['seed-via'] !== 'storage') {
    throw new Error(`--seed-via expects api or storage, got "${String(values['seed-via'])}"`);
  }
  say(
    `seeding ${shape.repos} repositories × ${shape.tags} tags into ${storage} ` +
      `(${viaApi ? "through the registry's API" : 'written as the registry stores it'}; once, reused later)`,
  );
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(storage, { recursive: true });
  const start = Date.now();
  const onProgress = (done: number): void => {
    if (done % 50 === 0 || done === shape.repos) say(`seeded ${done}/${shape.repos} repositories`);
  };
  let requests = 0;
  if (viaApi) {
    const registry = await startLocalRegistry({ storageDir: storage });
    try {
      ({ requests } = await seedRegistry(registry.url, shape, { connections: 32, onProgress }));
    } finally {
      await registry.dispose();
    }
  } else {
    await seedStorage(storage, shape, { onProgress });
  }
  writeFileSync(
    marker,
    JSON.stringify({ version: SEED_VERSION, ...shape, seconds: (Date.now() - start) / 1000, requests }) +
      '\n',
  );
  say(`seeded in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  return storage;
}

/** The planner's tuning flags, passed to every planner part. */
function tuning(): Record<string, string | undefined> {
  return {
    concurrency: values.concurrency,
    'repo-concurrency': values['repo-concurrency'],
  };
}

function settings(): Record<string, unknown> {
  return {
    concurrency: values.concurrency ?? 'default',
    repositoryConcurrency: values['repo-concurrency'] ?? 'default',
    ...(values['delete-concurrency'] ? { deleteConcurrency: values['delete-concurrency'] } : {}),
  };
}

const total = (r: Record<string, number>): number =>
  Object.entries(r).reduce((n, [k, v]) => (k === 'retries' ? n : n + v), 0);
const best = (rs: Result[]): Result => rs.reduce((a, b) => (b.ms < a.ms ? b : a));
const round2 = (x: number): number => Math.round(x * 100) / 100;

async function withRegistry<T>(storageDir: string, fn: (r: LocalRegistry) => Promise<T>): Promise<T> {
  const registry = await startLocalRegistry({ storageDir });
  try {
    return await fn(registry);
  } finally {
    await registry.dispose();
  }
}

async function withProxy<T>(
  registry: LocalRegistry,
  delayMs: number,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const proxy = await startProxy(registry.port, delayMs);
  try {
    return await fn(proxy.url);
  } finally {
    await proxy.stop();
  }
}

async function planMode(shape: SeedShape, delayMs: number): Promise<Record<string, unknown>> {
  const storage = await ensureSeed(shape);
  const keep = int(values.keep, '--keep', 10);
  const rounds = Math.max(1, int(values.rounds, '--rounds', 2));
  const connections = int(values['baseline-connections'], '--baseline-connections', 64);
  const baselines: Result[] = [];
  const planners: Result[] = [];
  await withRegistry(storage, (registry) =>
    withProxy(registry, delayMs, async (url) => {
      for (let i = 0; i < rounds; i++) {
        say(`round ${i + 1}/${rounds}: minimal client`);
        baselines.push(await runPart('baseline-plan', { url, concurrency: connections, keep }));
        say(`round ${i + 1}/${rounds}: planner (${baselines.at(-1)!.ms} ms for the minimal client)`);
        planners.push(await runPart('plan', { url, keep, ...tuning() }));
        say(`planner: ${planners.at(-1)!.ms} ms`);
      }
    }),
  );
  const b = best(baselines);
  const p = best(planners);
  const minimum = total(b.requests);
  const issued = total(p.requests);
  const summary = p.summary as { tags: number; repositories: number };
  return {
    mode: 'plan',
    shape,
    facts: seedFacts(shape),
    delayMs,
    roundTripMs: 2 * delayMs,
    tags: summary.tags,
    repositories: summary.repositories,
    complete: p.complete,
    minimumRequests: minimum,
    minimumByKind: b.requests,
    requests: issued,
    requestsByKind: p.requests,
    requestsOverMinimumPct: round2(((issued - minimum) / minimum) * 100),
    planner: {
      ms: p.ms,
      samplesMs: planners.map((r) => r.ms),
      tagsPerSecond: Math.round(summary.tags / (p.ms / 1000)),
      ...cpu(p),
      peakRssMb: p.peakRssMb,
      ...settings(),
    },
    baseline: {
      ms: b.ms,
      samplesMs: baselines.map((r) => r.ms),
      connections,
      ...cpu(b),
      peakRssMb: b.peakRssMb,
    },
    ratio: round2(p.ms / b.ms),
    cpuRatio: round2(Number(p.cpuMs) / Number(b.cpuMs)),
  };
}

function copyStorage(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(dirname(to), { recursive: true });
  const res = spawnSync('cp', ['-a', '--reflink=auto', from, to], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`copying ${from} failed: ${res.stderr}`);
}

async function applyMode(shape: SeedShape, delayMs: number): Promise<Record<string, unknown>> {
  const storage = await ensureSeed(shape);
  const keep = int(values.keep, '--keep', 16);
  const rounds = Math.max(1, int(values.rounds, '--rounds', 1));
  const work = join(BENCH_DIR, `apply-${process.pid}`);
  const planFile = join(work, 'plan.json');
  const connections = int(values['baseline-connections'], '--baseline-connections', 64);
  const baselines: Result[] = [];
  const planners: Result[] = [];
  const twoPhases: Result[] = [];
  const sweeps: Result[] = [];
  let planned: Result | undefined;
  mkdirSync(work, { recursive: true });
  try {
    for (let i = 0; i < rounds; i++) {
      say(`round ${i + 1}/${rounds}: copying the storage three times (a fresh copy for each client)`);
      copyStorage(storage, join(work, 'planner'));
      copyStorage(storage, join(work, 'baseline'));
      copyStorage(storage, join(work, 'two-phase'));
      if (!planned) {
        say('planning (not timed)');
        planned = await withRegistry(join(work, 'planner'), (r) =>
          runPart('plan', { url: r.url, keep, plan: planFile }),
        );
      }
      say('minimal client: DELETEs');
      const b = await withRegistry(join(work, 'baseline'), (r) =>
        withProxy(r, delayMs, (url) =>
          runPart('baseline-delete', { url, concurrency: connections, plan: planFile }),
        ),
      );
      baselines.push(b);
      say(`apply (${b.ms} ms for the minimal client)`);
      const p = await withRegistry(join(work, 'planner'), (r) =>
        withProxy(r, delayMs, (url) =>
          runPart('apply', {
            url,
            plan: planFile,
            ...tuning(),
            'delete-concurrency': values['delete-concurrency'],
          }),
        ),
      );
      planners.push(p);
      say(`apply: ${p.ms} ms; two-phase apply (untag + journal)`);
      const twoPhaseStorage = join(work, 'two-phase');
      const journal = join(work, `journal-${i}.json`);
      const [t, sw] = await withRegistry(twoPhaseStorage, async (r) => {
        const applied = await withProxy(r, delayMs, (url) =>
          runPart('apply-two-phase', { url, plan: planFile, storage: twoPhaseStorage, journal }),
        );
        say(`two-phase apply: ${applied.ms} ms; the sweep a day later`);
        const swept = await withProxy(r, delayMs, (url) =>
          runPart('sweep', { url, keep, storage: twoPhaseStorage, journal }),
        );
        say(`sweep: ${swept.ms} ms (the whole run: ${String(swept.totalMs)} ms)`);
        return [applied, swept];
      });
      twoPhases.push(t);
      sweeps.push(sw);
    }
    const b = best(baselines);
    const p = best(planners);
    return {
      mode: 'apply',
      shape,
      delayMs,
      planned: planned!.summary,
      manifestsDeleted: p.manifestsDeleted,
      failures: p.failures,
      skippedRepositories: p.skipped,
      requests: total(p.requests),
      requestsByKind: p.requests,
      planner: {
        ms: p.ms,
        samplesMs: planners.map((r) => r.ms),
        ...cpu(p),
        peakRssMb: p.peakRssMb,
        ...settings(),
      },
      baseline: {
        ms: b.ms,
        samplesMs: baselines.map((r) => r.ms),
        deleted: b.deleted,
        connections,
        ...cpu(b),
      },
      ratio: round2(p.ms / b.ms),
      twoPhase: twoPhaseSummary(best(twoPhases), best(sweeps), p, twoPhases, sweeps),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The two-phase apply against today's (delete by digest), and the sweep apart. */
function twoPhaseSummary(
  t: Result,
  sw: Result,
  today: Result,
  all: readonly Result[],
  allSweeps: readonly Result[],
): Record<string, unknown> {
  const pick = (r: Result, keys: string[]): Record<string, unknown> =>
    Object.fromEntries(keys.filter((k) => k in r).map((k) => [k, r[k]]));
  const outcome = [
    'outcome',
    'untagged',
    'deleted',
    'manifestsDeleted',
    'tagsDeleted',
    'failures',
    'skipped',
  ];
  return {
    apply: {
      ms: t.ms,
      samplesMs: all.map((r) => r.ms),
      requests: total(t.requests),
      requestsByKind: t.requests,
      ...cpu(t),
      peakRssMb: t.peakRssMb,
      ...pick(t, [...outcome, 'journalProblem']),
    },
    sweep: {
      ms: sw.ms,
      samplesMs: allSweeps.map((r) => r.ms),
      wholeRunMs: sw.totalMs,
      requests: total(sw.requests),
      requestsByKind: sw.requests,
      ...pick(sw, [...outcome, 'sweptPlanned']),
    },
    ratioToTodaysApply: round2(t.ms / today.ms),
    requestsOverTodaysApply: total(t.requests) - total(today.requests),
  };
}

async function cacheMode(shape: SeedShape, delayMs: number): Promise<Record<string, unknown>> {
  const storage = await ensureSeed(shape);
  const keep = int(values.keep, '--keep', 10);
  const cacheFile = join(BENCH_DIR, `cache-${process.pid}.ndjson.gz`);
  rmSync(cacheFile, { force: true });
  const common = { keep, ...tuning() };
  try {
    const [none, cold, warm, warmHead] = await withRegistry(storage, (registry) =>
      withProxy(registry, delayMs, async (url) => {
        say('no cache');
        const a = await runPart('plan', { url, ...common });
        say(`${a.ms} ms; cold cache`);
        const b = await runPart('plan', { url, ...common, cache: cacheFile });
        say(`${b.ms} ms; warm cache`);
        const c = await runPart('plan', { url, ...common, cache: cacheFile });
        say(`${c.ms} ms; warm cache, tags by HEAD first`);
        const d = await runPart('plan', { url, ...common, cache: cacheFile, 'head-first': 'true' });
        say(`${d.ms} ms`);
        return [a, b, c, d];
      }),
    );
    const row = (r: Result): Record<string, unknown> => ({
      ms: r.ms,
      requests: total(r.requests),
      requestsByKind: r.requests,
      ...cpu(r),
      peakRssMb: r.peakRssMb,
      ...(r.cache ? { cache: r.cache } : {}),
    });
    return {
      mode: 'cache',
      shape,
      delayMs,
      tags: (warm.summary as { tags: number }).tags,
      sameSummary: [cold, warm, warmHead].every(
        (r) => JSON.stringify(r.summary) === JSON.stringify(none.summary),
      ),
      cacheFileBytes: statSync(cacheFile).size,
      noCache: row(none),
      coldCache: row(cold),
      warmCache: row(warm),
      warmCacheHeadFirst: row(warmHead),
      warmOverCold: round2(warm.ms / cold.ms),
    };
  } finally {
    rmSync(cacheFile, { force: true });
  }
}

/**
 * The Lambda Node.js runtime starts node with heap limits from the function's memory size (its bootstrap: new
 * space = memory/10, semi space = half that, old space = the rest): a part run under those limits.
 */
function lambdaHeapFlags(memoryMb: number): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return [`--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${memoryMb - newSpace}`];
}

/**
 * The workflow's invocations one by one, each in its own process under the heap limits of a --lambda-memory-mb
 * function: the probe, every inventory batch (default batch sizes, or --batch-tags / --batch-repositories) and
 * the plan (all the parts, the plan and its rendered report), for one execution with a cold manifest cache and
 * then one with the cache it left (warm). Peak RSS of each, and the largest of each step.
 */
async function workflowMemoryMode(shape: SeedShape): Promise<Record<string, unknown>> {
  const keep = int(values.keep, '--keep', 10);
  const lambdaMb = int(values['lambda-memory-mb'], '--lambda-memory-mb', 256);
  const flags = lambdaHeapFlags(lambdaMb);
  const runDir = join(BENCH_DIR, `workflow-runs-${process.pid}`);
  const cacheFile = join(BENCH_DIR, `workflow-cache-${process.pid}.ndjson.gz`);
  const sizes = {
    'batch-tags': values['batch-tags'] ? int(values['batch-tags'], '--batch-tags', 0) : undefined,
    'batch-repositories': values['batch-repositories']
      ? int(values['batch-repositories'], '--batch-repositories', 0)
      : undefined,
  };
  const row = (r: Result): Record<string, unknown> => ({ ms: r.ms, peakRssMb: r.peakRssMb, ...cpu(r) });
  const most = (rows: readonly Result[]): number => Math.max(...rows.map((r) => Number(r.peakRssMb)));
  rmSync(runDir, { recursive: true, force: true });
  rmSync(cacheFile, { force: true });
  try {
    const executions: Record<string, unknown> = {};
    // Two dry runs (cold cache, then the warm cache it left), then a real run on the warm cache.
    for (const runId of ['cold-cache', 'warm-cache', 'real-run']) {
      const apply = runId === 'real-run';
      const step = (name: string, extra: Record<string, string | number> = {}): Promise<Result> =>
        runPart(
          'workflow-step',
          {
            ...shape,
            keep,
            ...sizes,
            'run-dir': runDir,
            'run-id': runId,
            step: name,
            apply: String(apply),
            ...extra,
          },
          flags,
        );
      const probe = await step('probe');
      const batches = (probe.result as { batches: number[] }).batches;
      say(`${runId}: probe ${String(probe.peakRssMb)} MB; ${batches.length} inventory batches`);
      const inventory: Result[] = [];
      for (const batch of batches) inventory.push(await step('inventory', { batch, cache: cacheFile }));
      const plan = await step('plan');
      say(`${runId}: inventory batches up to ${most(inventory)} MB, plan ${String(plan.peakRssMb)} MB`);
      const peakRssMb: Record<string, unknown> = {
        probe: probe.peakRssMb,
        inventory: most(inventory),
        plan: plan.peakRssMb,
      };
      const rows: Record<string, unknown> = {
        probe: row(probe),
        inventory: inventory.map(row),
        plan: { ...row(plan), result: plan.result },
      };
      if (apply) {
        const applied: Result[] = [];
        for (const batch of batches) applied.push(await step('apply', { batch }));
        const collect = await step('collect');
        const verified: Result[] = [];
        for (const batch of batches) verified.push(await step('verify', { batch }));
        const report = await step('report');
        Object.assign(peakRssMb, {
          apply: most(applied),
          collect: collect.peakRssMb,
          verify: most(verified),
          report: report.peakRssMb,
        });
        Object.assign(rows, {
          apply: applied.map((r) => ({ ...row(r), result: r.result })),
          collect: { ...row(collect), result: collect.result },
          verify: verified.map(row),
          report: { ...row(report), result: report.result },
        });
        say(
          `${runId}: apply batches up to ${most(applied)} MB, collect ${String(collect.peakRssMb)} MB, verify ` +
            `batches up to ${most(verified)} MB, report ${String(report.peakRssMb)} MB`,
        );
      }
      executions[runId] = { peakRssMb, ...rows };
    }
    return {
      mode: 'workflow-memory',
      shape,
      lambda: { memoryMb: lambdaMb, nodeFlags: flags },
      batchSizes: sizes,
      ...executions,
      cacheFileBytes: statSync(cacheFile).size,
    };
  } finally {
    rmSync(runDir, { recursive: true, force: true });
    rmSync(cacheFile, { force: true });
  }
}

async function memoryMode(shape: SeedShape): Promise<Record<string, unknown>> {
  const keep = int(values.keep, '--keep', 10);
  const lambdaMb = int(values['lambda-memory-mb'], '--lambda-memory-mb', 256);
  const cacheFile = join(BENCH_DIR, `memory-cache-${process.pid}.ndjson.gz`);
  mkdirSync(BENCH_DIR, { recursive: true });
  rmSync(cacheFile, { force: true });
  const row = (r: Result): Record<string, unknown> => ({
    ms: r.ms,
    peakRssMb: r.peakRssMb,
    rssAtStartMb: r.rssAtStartMb,
    // Peak RSS so far after each stage: the cache loaded, the scan, the plan (the save comes after).
    ...(r.peakRssAfterLoadMb !== undefined ? { peakRssAfterLoadMb: r.peakRssAfterLoadMb } : {}),
    peakRssAfterScanMb: r.peakRssAfterScanMb,
    peakRssBeforeSaveMb: r.peakRssBeforeSaveMb,
    heapUsedAtEndMb: r.heapUsedAtEndMb,
    ...cpu(r),
    requests: r.requests,
  });
  const lambdaCacheFile = join(BENCH_DIR, `memory-cache-lambda-${process.pid}.ndjson.gz`);
  rmSync(lambdaCacheFile, { force: true });
  try {
    say(`synthetic registry of ${shape.repos} × ${shape.tags} tags: no cache`);
    const plain = await runPart('memory', { ...shape, keep });
    say(`${String(plain.peakRssMb)} MB; with a cache file (cold, then warm)`);
    const cold = await runPart('memory', { ...shape, keep, cache: cacheFile });
    const warm = await runPart('memory', { ...shape, keep, cache: cacheFile });
    const flags = lambdaHeapFlags(lambdaMb);
    const underLambda = async (cache: string | undefined): Promise<Record<string, unknown>> => {
      try {
        return row(await runPart('memory', { ...shape, keep, cache }, flags));
      } catch (err) {
        // V8 prints why (usually "JavaScript heap out of memory") on the inherited stderr.
        return { failed: String(err).split('\n')[0] };
      }
    };
    say(`as a ${lambdaMb} MB Lambda runs it (${flags.join(' ')}): no cache, cold cache, warm cache`);
    const lambdaNoCache = await underLambda(undefined);
    const lambdaColdCache = await underLambda(lambdaCacheFile);
    const lambdaWarmCache = await underLambda(lambdaCacheFile);
    return {
      mode: 'memory',
      shape,
      tags: (plain.summary as { tags: number }).tags,
      complete: plain.complete,
      noCache: row(plain),
      coldCache: row(cold),
      warmCache: row(warm),
      lambda: {
        memoryMb: lambdaMb,
        nodeFlags: flags,
        noCache: lambdaNoCache,
        coldCache: lambdaColdCache,
        warmCache: lambdaWarmCache,
      },
      cacheFileBytes: statSync(cacheFile).size,
    };
  } finally {
    rmSync(cacheFile, { force: true });
    rmSync(lambdaCacheFile, { force: true });
  }
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const mode = values.mode;
  const memory = mode === 'memory' || mode === 'workflow-memory';
  const shape: SeedShape = {
    repos: int(values.repos, '--repos', memory ? 1000 : 200),
    tags: int(values.tags, '--tags', memory ? 100 : 50),
  };
  const delayMs = int(values['delay-ms'], '--delay-ms', 10);
  const before = machine();
  await bundle();
  let result: Record<string, unknown>;
  try {
    result = await runMode(mode, shape, delayMs);
  } finally {
    rmSync(DIST, { recursive: true, force: true });
  }
  process.stdout.write(
    JSON.stringify({ ...result, machine: { ...before, loadAverage1mAfter: machine().loadAverage1m } }) + '\n',
  );
}

async function runMode(
  mode: string | undefined,
  shape: SeedShape,
  delayMs: number,
): Promise<Record<string, unknown>> {
  let result: Record<string, unknown>;
  switch (mode) {
    case 'plan':
      result = await planMode(shape, delayMs);
      break;
    case 'seed':
      result = { mode: 'seed', shape, storage: await ensureSeed(shape), facts: seedFacts(shape) };
      break;
    case 'apply':
      result = await applyMode(shape, delayMs);
      break;
    case 'cache':
      result = await cacheMode(shape, delayMs);
      break;
    case 'memory':
      result = await memoryMode(shape);
      break;
    case 'workflow-memory':
      result = await workflowMemoryMode(shape);
      break;
    case 'history':
      result = await historyBench({
        dir: BENCH_DIR,
        repos: int(values.repos, '--repos', 200),
        revisions: int(values.revisions, '--revisions', 500),
        rounds: int(values.rounds, '--rounds', 3),
      });
      break;
    case 'startup':
      result = await startupMode({
        dir: BENCH_DIR,
        rounds: Math.max(1, int(values.rounds, '--rounds', 5)),
        say,
      });
      break;
    case 'report':
      result = await reportMode(
        shape,
        int(values.keep, '--keep', 10),
        Math.max(1, int(values.rounds, '--rounds', 3)),
        say,
      );
      break;
    default:
      throw new Error(`unknown --mode "${String(mode)}"\n\n${USAGE}`);
  }
  return result;
}

await main();
