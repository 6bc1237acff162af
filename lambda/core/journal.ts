// The journal: what a run is about to delete in dependency order (an index, the children and referrers that go
// after it), written before the first DELETE so that the next run finishes what an interrupted one started: a
// child whose index went is untagged, and without the journal no later run would ever see it again.
// A journal is a file anyone with access could edit, so it only ever proposes: the planner finishes an entry
// only when the live registry shows it is garbage (untagged, nothing that stays references it, what had to go
// first is gone, and with a listing not pushed again since it was recorded). What the plan finishes is judged
// there (planner.ts); this module holds the entries, their encoding and what a run records and leaves.
import type { JournalDecision, Plan, Report } from './model.ts';

/** One deletion a run was about to make. */
export interface JournalEntry {
  readonly repository: string;
  readonly digest: string;
  /** The deletions that had to succeed first: the index it is a child of, the subject it refers to. */
  readonly after: readonly string[];
  /** When the run recorded it (ISO 8601). With a listing, a revision pushed after this is someone's again. */
  readonly recordedAt: string;
}

/** Where the journal is kept: a file beside the CLI's cache, an object in the stack's bucket. */
export interface JournalStore {
  /** Names it in messages, e.g. the path or `s3://bucket/journal/host.json`. */
  readonly where: string;
  /**
   * The entries for this registry. Never throws: a missing journal is empty; an unreadable, untrusted or
   * malformed one is empty too, with a warning through the store's own channel, and what it held is lost only
   * for convergence (the live registry decides what is deleted, never the journal).
   */
  load(): Promise<readonly JournalEntry[]>;
  /** Replaces the whole journal at once (a reader sees the old one or the new one). Throws when it cannot. */
  save(entries: readonly JournalEntry[]): Promise<void>;
}

export const JOURNAL_FORMAT = 'registry-janitor-journal';
export const JOURNAL_VERSION = 1;
/** Entries beyond this are dropped on load: a journal only holds what one run was about to delete. */
export const MAX_JOURNAL_ENTRIES = 1_000_000;

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** distribution's repository name grammar, bounded. */
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** The journal as stored: JSON with its format, version and registry, one entry per deletion. */
export function encodeJournal(registry: string, entries: readonly JournalEntry[]): string {
  return (
    JSON.stringify({
      format: JOURNAL_FORMAT,
      version: JOURNAL_VERSION,
      registry,
      entries: entries.map((e) => [e.repository, e.digest, e.after, e.recordedAt]),
    }) + '\n'
  );
}

/**
 * The entries of a stored journal for `registry`; every malformed entry is dropped. `problem` says why nothing
 * could be used (not a journal, another version, another registry).
 */
export function decodeJournal(
  text: string,
  registry: string,
): { entries: JournalEntry[]; rejected: number; problem?: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { entries: [], rejected: 0, problem: `it is not JSON (${(err as Error).message})` };
  }
  const d = doc as { format?: unknown; version?: unknown; registry?: unknown; entries?: unknown };
  if (typeof doc !== 'object' || doc === null || d.format !== JOURNAL_FORMAT || !Array.isArray(d.entries)) {
    return { entries: [], rejected: 0, problem: 'it is not a registry-janitor journal' };
  }
  if (d.version !== JOURNAL_VERSION) {
    return {
      entries: [],
      rejected: 0,
      problem: `it is version ${String(d.version)}, this registry-janitor reads ${JOURNAL_VERSION}`,
    };
  }
  if (d.registry !== registry) {
    return { entries: [], rejected: 0, problem: `it is for ${String(d.registry)}, not ${registry}` };
  }
  const entries: JournalEntry[] = [];
  let rejected = 0;
  for (const raw of d.entries.slice(0, MAX_JOURNAL_ENTRIES)) {
    const entry = validEntry(raw);
    if (entry) entries.push(entry);
    else rejected += 1;
  }
  return { entries, rejected: rejected + Math.max(0, d.entries.length - MAX_JOURNAL_ENTRIES) };
}

function validEntry(raw: unknown): JournalEntry | undefined {
  if (!Array.isArray(raw) || raw.length !== 4) return undefined;
  const [repository, digest, after, recordedAt] = raw as unknown[];
  if (typeof repository !== 'string' || repository.length > 255 || !REPOSITORY.test(repository))
    return undefined;
  if (typeof digest !== 'string' || !DIGEST.test(digest)) return undefined;
  if (
    !Array.isArray(after) ||
    after.length > 64 ||
    !after.every((a) => typeof a === 'string' && DIGEST.test(a))
  )
    return undefined;
  if (typeof recordedAt !== 'string' || recordedAt.length > 40 || Number.isNaN(Date.parse(recordedAt)))
    return undefined;
  return { repository, digest, after: after as string[], recordedAt };
}

/** The entries of one repository, by digest (the last one recorded wins). */
export function entriesByRepository(
  entries: readonly JournalEntry[],
): Map<string, Map<string, JournalEntry>> {
  const out = new Map<string, Map<string, JournalEntry>>();
  for (const e of entries) {
    let repo = out.get(e.repository);
    if (!repo) out.set(e.repository, (repo = new Map<string, JournalEntry>()));
    repo.set(e.digest, e);
  }
  return out;
}

/**
 * What a run records before its first DELETE: in each repository it changes, every deletion that has to wait for
 * another (a child after its index, a referrer after its subject) and every deletion another waits for. A
 * deletion in no such relation leaves nothing behind when it fails.
 */
export function entriesToRecord(plan: Plan, now: Date): JournalEntry[] {
  const recordedAt = now.toISOString();
  const out: JournalEntry[] = [];
  for (const repo of plan.repositories) {
    const first = new Set(repo.deleteManifests.flatMap((m) => m.after));
    for (const m of repo.deleteManifests) {
      if (m.after.length === 0 && !first.has(m.digest)) continue;
      out.push({ repository: repo.name, digest: m.digest, after: m.after, recordedAt });
    }
  }
  return out;
}

/** The journal while the deletes run: what was there before and what this run records, one entry per digest. */
export function journalBeforeDeletes(
  previous: readonly JournalEntry[],
  recorded: readonly JournalEntry[],
): JournalEntry[] {
  const fresh = new Set(recorded.map(key));
  return [...previous.filter((e) => !fresh.has(key(e))), ...recorded];
}

/**
 * The journal after the deletes: an entry stays while its manifest may still be left over. It goes when it was
 * deleted (or found gone), when the plan dropped it (gone, referenced, pushed again, its repository no longer
 * cleaned), or when its repository was skipped before anything there was deleted (what it named is still
 * tagged). An entry whose repository this run did not read waits for a run that does.
 */
export function journalAfterDeletes(
  previous: readonly JournalEntry[],
  recorded: readonly JournalEntry[],
  plan: Plan,
  report: Report,
): JournalEntry[] {
  const decisions = new Map<string, JournalDecision>();
  for (const repo of plan.repositories)
    for (const d of repo.journal ?? []) decisions.set(`${repo.name}@${d.digest}`, d);
  const gone = new Set(
    report.entries
      .filter((e) => e.target === 'manifest' && (e.outcome === 'deleted' || e.outcome === 'already-gone'))
      .map((e) => `${e.repository}@${e.reference}`),
  );
  const skipped = new Set(report.skippedRepositories.map((s) => s.name));
  const fresh = new Set(recorded.map(key));
  const kept: JournalEntry[] = [];
  for (const e of previous) {
    const k = key(e);
    if (fresh.has(k) || gone.has(k)) continue;
    if (decisions.get(k)?.outcome === 'drop') continue;
    kept.push(e);
  }
  for (const e of recorded) {
    if (gone.has(key(e)) || skipped.has(e.repository)) continue;
    kept.push(e);
  }
  return kept;
}

const key = (e: JournalEntry): string => `${e.repository}@${e.digest}`;
