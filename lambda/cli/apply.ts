// `registry-janitor apply`: the job for real: plan (or a saved plan), show it, check it, confirm, delete, report.
import { createInterface } from 'node:readline/promises';
import { repositoriesToChange } from '../core/executor.ts';
import { runJob } from '../core/job.ts';
import type { Plan } from '../core/model.ts';
import { formatPlan, formatReport } from '../core/report.ts';
import type { Values } from './args.ts';
import { buildClient } from './connect.ts';
import { clearProgress, EXIT, progress, type CliIo } from './io.ts';
import { interruptOnSignals } from './interrupt.ts';
import { jobOptionsFrom, readPlanInput } from './plan.ts';

export async function applyCommand(values: Values, io: CliIo): Promise<number> {
  const input = readPlanInput('apply', values);
  const client = await buildClient(values, io, true);
  const interrupt = interruptOnSignals(io);
  try {
    const options = await jobOptionsFrom(input, values, io, client);
    const progressLine = progress(io);
    // Once stopping, the report is printed next: no progress line may be drawn under it.
    const show = progressLine && ((line: string) => void (interrupt.signal.aborted || progressLine(line)));
    let nothingToDelete = false;
    const job = await runJob({
      ...options,
      signal: interrupt.signal,
      onStage: (stage) => {
        if (stage === 'deletes') interrupt.deletesBegin();
      },
      onPlan: async (thePlan, applicable) => {
        await options.onPlan?.(thePlan, applicable);
        if (!values.json) io.stdout.write(formatPlan(thePlan, { verbose: values.verbose ?? false }));
      },
      confirm: async (thePlan) => {
        if (repositoriesToChange(thePlan).length === 0) {
          nothingToDelete = true;
          return false;
        }
        return confirm(thePlan, values, io);
      },
      ...(show
        ? {
            onApplyProgress: (p) =>
              show(
                `deleting: ${p.repositoriesDone}/${p.repositoriesTotal} repositories, ${p.deleted} deleted`,
              ),
          }
        : {}),
    });
    const thePlan = job.plan;
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
    if (show) clearProgress(io);
    io.stdout.write(
      values.json ? JSON.stringify({ plan: thePlan, report }, null, 2) + '\n' : formatReport(report),
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
    if (!values.json) {
      io.stdout.write(
        'Space is freed when garbage-collect runs on the registry host (registry-janitor gc, or the Lambda).\n',
      );
    }
    return report.failures.length > 0 || report.skippedRepositories.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    interrupt.dispose();
    await client.close();
  }
}

async function confirm(thePlan: Plan, values: Values, io: CliIo): Promise<boolean> {
  if (values.yes) return true;
  const s = thePlan.summary;
  if (!io.stdin.isTTY) {
    io.stderr.write(
      `refused: apply deletes ${s.tagsDeleted} tags and ${s.manifestsDeleted} manifests; without a terminal to ask, pass --yes to confirm.\n`,
    );
    return false;
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await rl.question(
      `Delete ${s.tagsDeleted} tags and ${s.manifestsDeleted} manifests from ${thePlan.registry}? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
