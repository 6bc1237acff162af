// `registry-janitor restore`: put back the tags a two-phase apply removed, from the bytes its journal recorded
// (core/restore.ts). The journal is found as apply finds it; the flags are checked before any request.
import { ConfigError } from '../core/errors.ts';
import {
  formatRestore,
  parseTagReference,
  restoreFromJournal,
  selectionProblem,
  type RestoreReport,
  type RestoreSelection,
} from '../core/restore.ts';
import type { Values } from './args.ts';
import { buildClient } from './connect.ts';
import { EXIT, type CliIo } from './io.ts';
import { journalFrom } from './plan.ts';

/** What --run, --repository or --tag names (exactly one of them), checked; --force only with --tag. */
export function restoreSelection(values: Values): RestoreSelection {
  const given = (['run', 'repository', 'tag'] as const).filter((k) => values[k] !== undefined);
  if (given.length === 0) {
    throw new ConfigError(
      'restore needs what to bring back: --run ID (the run id apply printed), --repository REPO or --tag REPO:TAG',
    );
  }
  if (given.length > 1) {
    throw new ConfigError(
      `give one of --run, --repository and --tag, not ${given.map((k) => `--${k}`).join(' and ')}`,
    );
  }
  let selection: RestoreSelection;
  if (values.tag !== undefined) {
    const ref = parseTagReference(values.tag);
    if (!ref) {
      throw new ConfigError(`--tag expects REPO:TAG, e.g. --tag team1/app:v1, got "${values.tag}"`);
    }
    selection = ref;
  } else if (values.repository !== undefined) {
    selection = { repository: values.repository };
  } else {
    selection = { run: values.run! };
  }
  const problem = selectionProblem(selection, (k) => `--${k}`);
  if (problem !== undefined) throw new ConfigError(problem);
  if (values.force && !('tag' in selection)) {
    throw new ConfigError(
      '--force goes with --tag only: it puts a tag back over an image someone pushed since, so it is given one ' +
        'tag at a time, after looking at what restore --dry-run says that tag points at now',
    );
  }
  return selection;
}

export async function restoreCommand(values: Values, io: CliIo): Promise<number> {
  const selection = restoreSelection(values);
  const client = await buildClient(values, io, true);
  try {
    const journal = journalFrom(values, io, client.baseUrl);
    if (!journal) {
      throw new ConfigError(
        'restore reads the journal apply wrote, and neither --journal, --cache, $XDG_STATE_HOME nor $HOME names ' +
          'a place for it: give the same --journal FILE (or --cache FILE) as the apply that removed the tags',
      );
    }
    const report = await restoreFromJournal(client, journal, selection, {
      dryRun: values['dry-run'] ?? false,
      force: values.force ?? false,
    });
    io.stdout.write(
      values.json
        ? JSON.stringify({ journal: journal.where, selection, ...report }, null, 2) + '\n'
        : formatRestore(report, journal.where, selection),
    );
    return exitOf(report);
  } finally {
    await client.close();
  }
}

/** A tag that could not be put back is a failure; one left alone because it moved is a refusal (--force). */
export function exitOf(report: RestoreReport): number {
  if (report.failed > 0) return EXIT.failed;
  if (report.skipped > 0) return EXIT.refused;
  return EXIT.ok;
}
