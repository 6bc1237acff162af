// `registry-janitor plan`: the job as a dry run (no DELETE is sent), printed; and what plan and apply share:
// the policy or saved plan the flags name, the manifest cache, the scan's progress line, the files written.
import { writeFileSync } from 'node:fs';
import { defaultJournalPath, fileJournal, journalBesideCache } from '../adapters/journal-file.ts';
import { openFileCache } from '../adapters/manifest-cache-file.ts';
import type { RegistryHttpClient } from '../adapters/registry-client.ts';
import {
  DEFAULT_MAX_DELETE_FRACTION,
  DEFAULT_UNDO_WINDOW_HOURS,
  parseUndoWindowHours,
  UNDO_WINDOW_FORM,
} from '../core/contract.ts';
import { ConfigError, errorMessage } from '../core/errors.ts';
import { compileGlob, GlobSyntaxError } from '../core/glob.ts';
import type { JobOptions } from '../core/job.ts';
import type { JournalStore } from '../core/journal.ts';
import { runJob } from '../core/job.ts';
import type { Plan, Report } from '../core/model.ts';
import { parsePolicy, type Policy } from '../core/policy.ts';
import { renderHtmlReport } from '../core/report-html.ts';
import { formatPlan, formatPlanErrors, plural } from '../core/report.ts';
import { number, readText, type Values } from './args.ts';
import { buildClient } from './connect.ts';
import { interruptOnSignals } from './interrupt.ts';
import { EXIT, progress, userPath, type CliIo } from './io.ts';
import { storageHistory } from './storage.ts';

/** The job's options from the flags: a policy to plan from, or a saved plan to apply. */
export async function jobOptionsFrom(
  input: PlanInput,
  values: Values,
  io: CliIo,
  client: RegistryHttpClient,
): Promise<JobOptions> {
  const base = {
    client,
    now: new Date(),
    dryRun: input.command === 'plan',
    maxDeleteFraction: input.maxDeleteFraction,
    ...(input.undoWindowHours !== undefined ? { undoWindowHours: input.undoWindowHours } : {}),
  };
  const maxEntries =
    values['max-history-entries'] === undefined
      ? undefined
      : number(values['max-history-entries'], '--max-history-entries', 1, Number.MAX_SAFE_INTEGER, 0, true);
  const history = values.storage ? await storageHistory(values.storage, io.env, maxEntries) : undefined;
  const journal = journalFrom(values, io, client.baseUrl);
  if (!input.policy) {
    // The listing lets the live re-check see the untagged history that stays before a saved plan deletes any.
    const savedPlan = loadSavedPlan(userPath(io, values.plan!), client.baseUrl);
    return {
      ...base,
      savedPlan,
      ...(history ? { history } : {}),
      ...(journal ? { journal } : {}),
      onPlan: (thePlan) => writeOut(thePlan, values, io),
    };
  }
  const scanning = progress(io, 'scanning', 'repositories');
  const cache = values.cache
    ? await openFileCache(userPath(io, values.cache), {
        warn: (m) => void io.stderr.write(`warning: ${m}\n`),
      })
    : undefined;
  return {
    ...base,
    policy: input.policy,
    ...(cache ? { cache } : {}),
    ...(history ? { history } : {}),
    ...(journal ? { journal } : {}),
    ...(values.repositories ? { repositories: values.repositories } : {}),
    onScanProgress: (p) =>
      scanning.update(p.repositoriesDone, p.repositoriesTotal, plural(p.tagsSeen, 'tag')),
    onPlan: async (thePlan) => {
      scanning.finish();
      checkRepositoriesMatched(thePlan, values.repositories, io);
      // What the inventory learned is kept whatever apply does next.
      await cache?.save();
      writeOut(thePlan, values, io);
    },
  };
}

/**
 * The journal: `--journal FILE`, else beside `--cache FILE`, else the user's state folder (one file per registry
 * host). `plan` and `restore` only read it; `apply` writes it before its first DELETE and after its last.
 */
export function journalFrom(values: Values, io: CliIo, registry: string): JournalStore | undefined {
  const path = values.journal
    ? userPath(io, values.journal)
    : values.cache
      ? journalBesideCache(userPath(io, values.cache))
      : defaultJournalPath(registry, io.env);
  if (path === undefined) return undefined;
  return fileJournal(path, { registry, warn: (m) => void io.stderr.write(`warning: ${m}\n`) });
}

/** `--out FILE`: the plan as JSON, for `apply --plan FILE`. */
function writeOut(thePlan: Plan, values: Values, io: CliIo): void {
  if (!values.out) return;
  const path = userPath(io, values.out);
  writeFile(path, JSON.stringify(thePlan, null, 2) + '\n', 'the plan');
  io.stderr.write(`Wrote the plan (JSON) to ${path}\n`);
}

/** `--html FILE`: the plan, and after apply its outcome, as one self-contained page. */
export function writeHtml(
  thePlan: Plan,
  report: Report | undefined,
  input: PlanInput,
  values: Values,
  io: CliIo,
): void {
  if (!values.html) return;
  const path = userPath(io, values.html);
  const html = renderHtmlReport(thePlan, {
    maxDeleteFraction: input.maxDeleteFraction,
    ...(report ? { report } : {}),
  });
  writeFile(path, html, 'the HTML report');
  io.stderr.write(`Wrote the HTML ${report ? 'report' : 'plan'} to ${path}\n`);
}

function writeFile(path: string, text: string, what: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new ConfigError(`cannot write ${what} to ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * A --repositories glob that matched nothing is almost always a namespace written without its `/**`. Said
 * before anything is deleted; when no glob matched at all there is nothing to do and the run stops.
 */
function checkRepositoriesMatched(thePlan: Plan, globs: readonly string[] | undefined, io: CliIo): void {
  if (!globs || !thePlan.complete) return;
  const names = thePlan.repositories.map((r) => r.name);
  const unmatched = globs.filter((g) => !names.some((n) => compileGlob(g, true).test(n)));
  if (unmatched.length === 0) return;
  const hint = (g: string): string =>
    /[*?[]/.test(g)
      ? ''
      : `; for the repositories under it, use --repositories '${g.replace(/\/+$/, '')}/**'`;
  const lines = unmatched.map((g) => `--repositories ${g} matched no repository in the catalog${hint(g)}`);
  if (unmatched.length === globs.length) throw new ConfigError(lines.join('\n'));
  for (const line of lines) io.stderr.write(`warning: ${line}\n`);
}

/** What plan and apply read before any request: the guard, and the policy (absent: a saved plan). */
export interface PlanInput {
  readonly command: 'plan' | 'apply';
  readonly maxDeleteFraction: number;
  readonly policy?: Policy;
  /** Two-phase (with --storage): the undo window in hours; absent without a listing (delete by digest). */
  readonly undoWindowHours?: number;
}

/** Check the flags and read the policy before any request: each mistake is named with its fix. */
export function readPlanInput(command: 'plan' | 'apply', values: Values, io: CliIo): PlanInput {
  const maxDeleteFraction = number(
    values['max-delete-fraction'],
    '--max-delete-fraction',
    0,
    1,
    DEFAULT_MAX_DELETE_FRACTION,
  );
  if (command === 'plan' && values.plan)
    throw new ConfigError('--plan goes with apply; plan makes a new plan from --policy');
  if (!values.plan && !values.policy)
    throw new ConfigError('--policy FILE is required (see the README for the format)');
  for (const glob of values.repositories ?? []) {
    try {
      compileGlob(glob, true);
    } catch (err) {
      if (!(err instanceof GlobSyntaxError)) throw err;
      throw new ConfigError(`--repositories ${glob}: not a valid glob: ${err.message}`, { cause: err });
    }
  }
  const policy = values.policy
    ? parsePolicy(readText(userPath(io, values.policy), 'the policy file'), values.policy)
    : undefined;
  const undoWindowHours = undoWindowFrom(values);
  // A saved plan is applied as saved; a policy given with it is only checked.
  return {
    command,
    maxDeleteFraction,
    ...(policy && !values.plan ? { policy } : {}),
    ...(undoWindowHours !== undefined ? { undoWindowHours } : {}),
  };
}

/**
 * Two-phase is the default with a storage listing: only the listing lets the sweep see the manifests a run
 * untagged. Without one the window means nothing, so the flag is refused rather than ignored.
 */
function undoWindowFrom(values: Values): number | undefined {
  const text = values['undo-window-hours'];
  if (!values.storage) {
    if (text === undefined) return undefined;
    throw new ConfigError(
      '--undo-window-hours needs --storage PATH: two-phase apply leaves the manifests it untags for a later ' +
        "sweep, and only a storage listing lets the sweep see untagged manifests. Add --storage (the registry's " +
        'storage root or s3://BUCKET/ROOTDIRECTORY), or drop --undo-window-hours to delete by digest',
    );
  }
  if (text === undefined) return DEFAULT_UNDO_WINDOW_HOURS;
  const hours = parseUndoWindowHours(text);
  if (hours === undefined)
    throw new ConfigError(`--undo-window-hours expects ${UNDO_WINDOW_FORM}, got "${text}"`);
  return hours;
}

/** The plan as text on stdout, its errors on stderr. */
export function printPlan(thePlan: Plan, values: Values, io: CliIo, withErrors = true): void {
  io.stdout.write(formatPlan(thePlan, { verbose: values.verbose ?? false, errors: false }));
  if (withErrors) io.stderr.write(formatPlanErrors(thePlan));
}

export async function planCommand(values: Values, io: CliIo): Promise<number> {
  const input = readPlanInput('plan', values, io);
  const client = await buildClient(values, io, false);
  // Ctrl-C ends the progress line and exits 130 (plan deletes nothing, so at once).
  const interrupt = interruptOnSignals(io);
  try {
    const { plan: thePlan, applicable } = await runJob(await jobOptionsFrom(input, values, io, client));
    if (values.json) io.stdout.write(JSON.stringify(thePlan, null, 2) + '\n');
    else printPlan(thePlan, values, io);
    writeHtml(thePlan, undefined, input, values, io);
    if (!thePlan.complete) return EXIT.failed;
    // Said before anyone runs apply, with the same exit code apply would give.
    if (!applicable.guard.ok) {
      io.stderr.write(`warning: apply will refuse this plan (delete guard): ${applicable.guard.message}\n`);
      return EXIT.refused;
    }
    return EXIT.ok;
  } finally {
    interrupt.dispose();
    await client.close();
  }
}

function loadSavedPlan(path: string, registry: string): Plan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path, 'the plan file'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${path} is not a plan: ${errorMessage(err)}. Make one with: plan --out ${path}`);
  }
  const p = parsed as Partial<Plan>;
  if (
    typeof p !== 'object' ||
    p === null ||
    !Array.isArray(p.repositories) ||
    typeof p.summary !== 'object' ||
    typeof p.complete !== 'boolean'
  ) {
    throw new ConfigError(`${path} is not a plan made by registry-janitor plan --out FILE`);
  }
  if (p.registry !== registry) {
    throw new ConfigError(
      `${path} was made for ${String(p.registry)}, not ${registry}; plan again against this registry`,
    );
  }
  return p as Plan;
}
