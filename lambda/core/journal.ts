// The journal: what a run is about to delete in dependency order (an index, the children and referrers that go
// after it), written before the first DELETE so that the next run finishes what an interrupted one started: a
// child whose index went is untagged, and without the journal no later run would ever see it again.
// A journal is a file anyone with access could edit, so it only ever proposes: the planner finishes an entry
// only when the live registry shows it is garbage (untagged, nothing that stays references it, what had to go
// first is gone, and with a listing not pushed again since it was recorded). What the plan finishes is judged
// there (planner.ts); this module holds the entries, their encoding and what a run records and leaves.
// Two-phase apply (with a storage listing) records here too what it untags instead of deleting (`untag`): the
// tags it removed and the manifest's exact bytes, so that restore can put them back within the undo window and
// the sweep deletes it only after (core/undo.ts).
import { createHash } from 'node:crypto';
import { isRepositoryName, isTagName } from './contract.ts';
import { errorMessage, SafetyError } from './errors.ts';
import type { JournalDecision, Plan, Report } from './model.ts';

/** One deletion a run was about to make, or (with `untag`) one manifest it untagged instead. */
export interface JournalEntry {
  readonly repository: string;
  readonly digest: string;
  /** The deletions that had to succeed first: the index it is a child of, the subject it refers to. */
  readonly after: readonly string[];
  /**
   * When the run recorded it (ISO 8601), before its first DELETE. With a listing, a revision pushed after this
   * is someone's again. For an untagged manifest this is its untag time: the undo window runs from it.
   */
  readonly recordedAt: string;
  /** Two-phase: this run untagged the manifest (its tags removed, the manifest left for the sweep). */
  readonly untag?: UntagDetails;
}

/** A manifest's exact bytes as the registry served them, for restore to PUT back. */
export interface StoredManifest {
  readonly digest: string;
  readonly mediaType: string;
  /** Base64 of the exact bytes (sha256 of them is `digest`: checked when the journal is read). */
  readonly bytes: string;
}

/** What a two-phase run removed from one manifest, and what restore needs to put it back. */
export interface UntagDetails {
  /** The run that untagged it. */
  readonly runId: string;
  /** The tags the run removed from it (sorted). */
  readonly tags: readonly string[];
  /**
   * 'intent': recorded before the tags were removed (a run stopped between the two leaves this; the live
   * registry then tells whether they went); 'untagged': recorded again after, naming the tags that went.
   */
  readonly state: 'intent' | 'untagged';
  /** The manifest first, then (for an index) the children and referrers the sweep deletes with it. */
  readonly manifests: readonly StoredManifest[];
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
export const JOURNAL_VERSION = 2;
/** Versions this registry-janitor reads (1: no untag records). */
const READABLE_VERSIONS: readonly unknown[] = [1, 2];
/** Entries beyond this are dropped on load: a journal only holds what one run was about to delete. */
export const MAX_JOURNAL_ENTRIES = 1_000_000;

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** The journal as stored: JSON with its format, version and registry, one entry per deletion. */
export function encodeJournal(registry: string, entries: readonly JournalEntry[]): string {
  return (
    JSON.stringify({
      format: JOURNAL_FORMAT,
      version: JOURNAL_VERSION,
      registry,
      entries: entries.map((e) =>
        e.untag
          ? [e.repository, e.digest, e.after, e.recordedAt, encodeUntag(e.untag)]
          : [e.repository, e.digest, e.after, e.recordedAt],
      ),
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
  if (!READABLE_VERSIONS.includes(d.version)) {
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
  if (!Array.isArray(raw) || raw.length < 4 || raw.length > 5) return undefined;
  const [repository, digest, after, recordedAt, untagRaw] = raw as unknown[];
  if (typeof repository !== 'string' || !isRepositoryName(repository)) return undefined;
  if (typeof digest !== 'string' || !DIGEST.test(digest)) return undefined;
  if (
    !Array.isArray(after) ||
    after.length > 64 ||
    !after.every((a) => typeof a === 'string' && DIGEST.test(a))
  )
    return undefined;
  if (typeof recordedAt !== 'string' || recordedAt.length > 40 || Number.isNaN(Date.parse(recordedAt)))
    return undefined;
  if (raw.length === 4) return { repository, digest, after: after as string[], recordedAt };
  const untag = validUntag(untagRaw, digest);
  return untag ? { repository, digest, after: after as string[], recordedAt, untag } : undefined;
}

/** distribution's tag grammar. */
/** distribution refuses manifests over 4 MiB. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const MAX_UNTAG_TAGS = 10_000;
const MAX_UNTAG_MANIFESTS = 10_000;

function encodeUntag(u: UntagDetails): unknown {
  return {
    run: u.runId,
    tags: u.tags,
    state: u.state,
    manifests: u.manifests.map((m) => [m.digest, m.mediaType, m.bytes]),
  };
}

/** An untag record as stored; undefined when anything in it is malformed, or bytes do not hash to their digest. */
function validUntag(raw: unknown, digest: string): UntagDetails | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const u = raw as { run?: unknown; tags?: unknown; state?: unknown; manifests?: unknown };
  if (typeof u.run !== 'string' || !RUN_ID.test(u.run)) return undefined;
  if (u.state !== 'intent' && u.state !== 'untagged') return undefined;
  if (
    !Array.isArray(u.tags) ||
    u.tags.length > MAX_UNTAG_TAGS ||
    !u.tags.every((t) => typeof t === 'string' && isTagName(t))
  )
    return undefined;
  if (!Array.isArray(u.manifests) || u.manifests.length === 0 || u.manifests.length > MAX_UNTAG_MANIFESTS)
    return undefined;
  const manifests: StoredManifest[] = [];
  for (const m of u.manifests as unknown[]) {
    if (!Array.isArray(m) || m.length !== 3) return undefined;
    const [d, mediaType, bytes] = m as unknown[];
    if (typeof d !== 'string' || !DIGEST.test(d)) return undefined;
    if (typeof mediaType !== 'string' || !MEDIA_TYPE.test(mediaType)) return undefined;
    if (typeof bytes !== 'string' || bytes.length > (MAX_MANIFEST_BYTES / 3) * 4 + 4) return undefined;
    if (manifestDigest(Buffer.from(bytes, 'base64')) !== d) return undefined;
    manifests.push({ digest: d, mediaType, bytes });
  }
  if (manifests[0]!.digest !== digest) return undefined;
  return { runId: u.run, tags: u.tags as string[], state: u.state, manifests };
}

/** A run id: what the CLI and the Lambda make (a timestamp and a random part), nothing a path could escape with. */
export const RUN_ID = /^[A-Za-z0-9_.:-]{1,80}$/;

/** The content digest of a manifest's bytes. */
export function manifestDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
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
    // Two-phase: what is only untagged tonight is recorded with its bytes instead (core/undo.ts).
    const now = repo.deleteManifests.filter((m) => !m.deferred);
    const first = new Set(now.flatMap((m) => m.after));
    for (const m of now) {
      if (m.after.length === 0 && !first.has(m.digest)) continue;
      out.push({ repository: repo.name, digest: m.digest, after: m.after, recordedAt });
    }
  }
  return out;
}

/**
 * What this run records, with what the journal already held of each digest carried over: an untag record keeps
 * its bytes, its first untag time and the tags an earlier run removed (a sweep that records the manifest again
 * before deleting it, a second run removing the tags an interrupted one left).
 */
export function carryUntag(
  previous: readonly JournalEntry[],
  recorded: readonly JournalEntry[],
): JournalEntry[] {
  const before = new Map<string, UntagDetails & { recordedAt: string }>();
  for (const e of previous) if (e.untag) before.set(key(e), { ...e.untag, recordedAt: e.recordedAt });
  return recorded.map((e) => {
    const old = before.get(key(e));
    if (!old) return e;
    if (!e.untag) {
      const { recordedAt, ...untag } = old;
      return { ...e, recordedAt, untag };
    }
    const tags = [...new Set([...old.tags, ...e.untag.tags])].sort();
    return { ...e, untag: { ...e.untag, tags } };
  });
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

/** Why a run deleted nothing: the journal could not record what it was about to delete. */
export function journalNotWritten(where: string, err: unknown): SafetyError {
  return new SafetyError(
    `nothing was deleted: the journal ${where} could not be written (${errorMessage(err)}); a run ` +
      'records there what it is about to delete, so that the next one finishes what an interruption leaves. ' +
      'Fix the cause, or name a journal that can be written',
    { cause: err },
  );
}

/** A warning, not a failure: the journal still holds what the run was about to delete. */
export function journalNotUpdated(where: string, err: unknown): string {
  return (
    `the journal ${where} could not be updated after the deletes (${errorMessage(err)}); it still ` +
    'holds what this run was about to delete, and the next run sorts it out'
  );
}
