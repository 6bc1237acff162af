// `registry-janitor apply`: the job for real: plan (or a saved plan), show it, check it, confirm, delete, report.
import { createInterface } from 'node:readline/promises';
import { SafetyError } from '../core/errors.ts';
import { repositoriesToChange, type Applicability } from '../core/executor.ts';
import { runJob } from '../core/job.ts';
import type { Plan, Report } from '../core/model.ts';
import { formatReport, plural } from '../core/report.ts';
import { restoreRunCommand } from '../core/undo.ts';
import type { Values } from './args.ts';
import { buildClient } from './connect.ts';
import { EXIT, progress, type CliIo } from './io.ts';
import { interruptOnSignals } from './interrupt.ts';
import { jobOptionsFrom, printPlan, readPlanInput, writeHtml } from './plan.ts';

export async function applyCommand(values: Values, io: CliIo): Promise<number> {
  const input = readPlanInput('apply', values, io);
  const client = await buildClient(values, io, true);
  // The plan as checked: what --html shows when the run stops before deleting.
  let planned: { plan: Plan; applicable: Applicability } | undefined;
  const deleting = progress(io, 'deleting', 'repositories');
  const interrupt = interruptOnSignals(io);
  try {
    const options = await jobOptionsFrom(input, values, io, client);
    let nothingToDelete = false;
    let job;
    try {
      job = await runJob({
        ...options,
        signal: interrupt.signal,
        onStage: (stage) => {
          if (stage === 'deletes') interrupt.deletesBegin();
        },
        onPlan: async (thePlan, applicable) => {
          await options.onPlan?.(thePlan, applicable);
          planned = { plan: thePlan, applicable };
          // An incomplete plan's errors come once, in the refusal below.
          if (!values.json) printPlan(thePlan, values, io, applicable.complete);
        },
        confirm: async (thePlan) => {
          if (repositoriesToChange(thePlan).length === 0) {
            nothingToDelete = true;
            return false;
          }
          return confirm(thePlan, values, io);
        },
        // Once stopping, the report is printed next: the line is ended and not drawn again.
        onApplyProgress: (p) =>
          interrupt.signal.aborted
            ? deleting.finish()
            : deleting.update(p.repositoriesDone, p.repositoriesTotal, `${p.deleted} deleted`),
      });
    } catch (err) {
      if (planned) writeHtml(planned.plan, undefined, input, values, io);
      // An incomplete plan is a failed read, as `plan` says with exit 1; the guard's refusal stays exit 3.
      if (err instanceof SafetyError && planned && !planned.applicable.complete) {
        io.stderr.write(`error: ${err.message}\n`);
        return EXIT.failed;
      }
      throw err;
    }
    deleting.finish();
    const thePlan = job.plan;
    writeHtml(thePlan, job.report, input, values, io);
    if (nothingToDelete || (job.outcome === 'applied' && repositoriesToChange(thePlan).length === 0)) {
      if (values.json) io.stdout.write(JSON.stringify({ plan: thePlan, report: null }, null, 2) + '\n');
      else io.stdout.write('Nothing to delete.\n');
      return EXIT.ok;
    }
    if (job.outcome !== 'applied') {
      io.stderr.write('Nothing was deleted.\n');
      return values.yes || io.stdin.isTTY ? EXIT.ok : EXIT.refused;
    }
    const report = job.report!;
    if (job.journalProblem !== undefined) io.stderr.write(`warning: ${job.journalProblem}\n`);
    io.stdout.write(
      values.json ? JSON.stringify({ plan: thePlan, report }, null, 2) + '\n' : formatReport(report, thePlan),
    );
    if (report.stopped !== undefined) {
      io.stderr.write(
        `Stopped (${report.stopped}): what is reported deleted was deleted, nothing else was. To finish, ` +
          (values.plan
            ? 'make a new plan and apply it (the saved plan no longer matches the registry).\n'
            : 'run apply again.\n'),
      );
      return EXIT.interrupted;
    }
    const undo = report.undo;
    if (!values.json && undo?.runId !== undefined)
      io.stdout.write(undoHint({ ...undo, runId: undo.runId }, values));
    if (!values.json) {
      io.stdout.write(
        'Space is freed when garbage-collect runs on the registry host (registry-janitor gc, or the Lambda).\n',
      );
    }
    return report.failures.length > 0 || report.skippedRepositories.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    deleting.finish();
    interrupt.dispose();
    await client.close();
  }
}

/** The run id and until when restore brings back what this run untagged, with the command that does it. */
export function undoHint(
  undo: NonNullable<Report['undo']> & { readonly runId: string },
  values: Values,
): string {
  const journal = values.journal
    ? ` --journal ${values.journal}`
    : values.cache
      ? ` --cache ${values.cache}`
      : '';
  return (
    `Run ${undo.runId}: ${plural(undo.manifests, 'manifest')} untagged, restorable until ${undo.undoUntil} with
` +
    `  ${restoreRunCommand(values.registry ?? '$REGISTRY_URL', undo.runId, journal)}
`
  );
}

async function confirm(thePlan: Plan, values: Values, io: CliIo): Promise<boolean> {
  if (values.yes) return true;
  const s = thePlan.summary;
  const what = `${plural(s.tagsDeleted, 'tag')} and ${plural(s.manifestsDeleted, 'manifest')}`;
  if (!io.stdin.isTTY) {
    io.stderr.write(`refused: apply deletes ${what}; without a terminal to ask, pass --yes to confirm.\n`);
    return false;
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await rl.question(`Delete ${what} from ${thePlan.registry}? [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
