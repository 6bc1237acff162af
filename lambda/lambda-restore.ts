// The Lambda's restore: a manual invoke `{"restore": {"run": ID} | {"repository": R} | {"tag": "R:T"}, "dryRun"?}`
// puts back what a two-phase run untagged, from the journal in the construct's bucket (journal/<host>.json), as
// `registry-janitor restore` does. It sends no DELETE and does not write the journal; its result says per tag what
// was restored, what was already in place, and what could not be and why.
import { z } from 'zod';
import { ConfigError, errorMessage } from './core/errors.ts';
import { noun } from './core/plural.ts';
import type { JournalStore } from './core/journal.ts';
import {
  parseTagReference,
  restoreFromJournal,
  selectionProblem,
  type RestoreClient,
  type RestoreResult,
  type RestoreSelection,
} from './core/restore.ts';

export const RESTORE_PAYLOAD_EXAMPLE = '{"restore": {"run": "20261202T031500Z-3f9a1c"}, "dryRun": true}';
const SELECTORS = ['run', 'repository', 'tag'] as const;

const text = (what: string) =>
  z.string({ error: `expected ${what} as a string` }).min(1, { error: `expected ${what}, not ""` });

const restorePayloadSchema = z.strictObject({
  restore: z.strictObject(
    {
      run: text('a run id as the run report names it').optional(),
      repository: text('a repository name').optional(),
      tag: text('"repository:tag"').optional(),
    },
    { error: 'expected an object with one of "run", "repository" or "tag"' },
  ),
  dryRun: z.boolean({ error: 'expected true or false' }).optional(),
});

export interface RestoreRequest {
  readonly selection: RestoreSelection;
  readonly dryRun: boolean;
}

/** Whether an invoke payload asks for a restore (then parseRestorePayload reads it, and nothing else runs). */
export function isRestorePayload(event: unknown): boolean {
  return typeof event === 'object' && event !== null && !Array.isArray(event) && 'restore' in event;
}

/**
 * The restore payload, validated: exactly one of run, repository and tag, each well formed.
 * @throws ConfigError naming the key and the fix
 */
export function parseRestorePayload(event: unknown): RestoreRequest {
  const invalid = (lines: string[]): ConfigError =>
    new ConfigError(
      `The restore payload is invalid:\n  - ${lines.join('\n  - ')}\nExpected e.g. ${RESTORE_PAYLOAD_EXAMPLE} ` +
        '(restore takes one of "run", "repository" or "tag": "repository:tag"; dryRun is optional).',
    );
  const parsed = restorePayloadSchema.safeParse(event);
  if (!parsed.success) {
    throw invalid(
      parsed.error.issues.map((issue) => {
        const path = issue.path.map(String).join('.');
        if (issue.code === 'unrecognized_keys') {
          const keys = `${noun(issue.keys.length, 'key')} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
          return path === ''
            ? `unknown ${keys} beside "restore"; the allowed keys are restore, dryRun (a restore runs nothing else)`
            : `${path}: unknown ${keys}; the allowed keys are ${SELECTORS.join(', ')}`;
        }
        return `${path}: ${issue.message}`;
      }),
    );
  }
  const { restore, dryRun } = parsed.data;
  const given = SELECTORS.filter((k) => restore[k] !== undefined);
  if (given.length !== 1) {
    throw invalid([
      given.length === 0
        ? 'restore: give one of "run", "repository" or "tag"'
        : `restore: give one of "run", "repository" and "tag", not ${given.map((k) => `"${k}"`).join(' and ')}`,
    ]);
  }
  let selection: RestoreSelection;
  if (restore.tag !== undefined) {
    const ref = parseTagReference(restore.tag);
    if (!ref)
      throw invalid([`restore.tag: expected "repository:tag", e.g. "team1/app:v1", got "${restore.tag}"`]);
    selection = ref;
  } else if (restore.repository !== undefined) selection = { repository: restore.repository };
  else selection = { run: restore.run! };
  const problem = selectionProblem(selection, (k) => `restore.${k}`);
  if (problem !== undefined) throw invalid([problem]);
  return { selection, dryRun: dryRun ?? false };
}

/** What the function returns for a restore. */
export interface LambdaRestoreResult {
  readonly restore: RestoreSelection;
  readonly registry: string;
  /** Where the journal was read: s3://bucket/journal/<host>.json. */
  readonly journal: string;
  readonly dryRun: boolean;
  readonly restored: number;
  readonly already: number;
  readonly skipped: number;
  readonly failed: number;
  /** Per tag: repository, tag, digest, the run and time that removed it, the outcome, and why when not restored. */
  readonly results: readonly RestoreResult[];
}

export interface RestoreLogger {
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

export interface LambdaRestoreDeps {
  readonly registry: RestoreClient;
  /** The journal in the construct's bucket; absent when the function has none (CACHE_BUCKET unset). */
  readonly journal?: (warn: (message: string) => void) => JournalStore;
  readonly logger: RestoreLogger;
}

/**
 * Run a restore request: the selection among the journal's records (bad input when none matches, with what the
 * journal holds and why it could not be read, if it could not), the live check, the PUTs. A tag that could not be
 * put back is in the result with its reason (and logged as an error); the invocation fails only on bad input or
 * when the registry cannot be read.
 */
export async function runLambdaRestore(
  deps: LambdaRestoreDeps,
  request: RestoreRequest,
): Promise<LambdaRestoreResult> {
  const { logger } = deps;
  if (!deps.journal) {
    throw new ConfigError(
      "restore reads the journal in the construct's bucket (journal/<host>.json), and this function has no " +
        'bucket (CACHE_BUCKET is not set): deploy it with the construct, which sets it',
    );
  }
  const warnings: string[] = [];
  const journal = deps.journal((message) => {
    warnings.push(message);
    logger.warn(message);
  });
  let report;
  try {
    report = await restoreFromJournal(deps.registry, journal, request.selection, { dryRun: request.dryRun });
  } catch (err) {
    if (err instanceof ConfigError && warnings.length > 0) {
      throw new ConfigError(`${errorMessage(err)}. ${warnings.join('; ')}`, { cause: err });
    }
    throw err;
  }
  const result: LambdaRestoreResult = {
    restore: request.selection,
    registry: report.registry,
    journal: journal.where,
    dryRun: report.dryRun,
    restored: report.restored,
    already: report.already,
    skipped: report.skipped,
    failed: report.failed,
    results: report.results,
  };
  const { results: _, ...summary } = result;
  if (report.failed > 0) logger.error('restore: some tags could not be restored', { restore: result });
  else if (report.skipped > 0) logger.warn('restore: tags pushed since were left alone', { restore: result });
  else logger.info('restore', { restore: summary, results: report.results });
  return result;
}
